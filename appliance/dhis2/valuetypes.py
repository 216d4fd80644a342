"""DHIS2 value-type validation for aggregate data values, as DHIS2 2.41 imports them.

Mirrors dhis2-core ``ValidationUtils.valueIsValid`` / ``normalizeBoolean`` / ``MathUtils`` and
the importer's E7619 / E7621 conflicts (``DataValueSetImportValidator``). The rule of thumb is
"accept exactly what national accepts": a value the hub acknowledges and national later
rejects becomes a sync rejection the CHCP has to fix days later.

Messages are DHIS2's: E7619 is ``Value must match value type of data element `<de>`: `<why>```
where ``<why>`` is DHIS2's English i18n text, or the bare i18n key where DHIS2 has no
translation (e.g. ``value_not_zero_or_positive_integer``), exactly as a 2.41 server renders it.
"""

from __future__ import annotations

import ipaddress
import math
import re
import struct
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date

__all__ = [
    "VALUE_TYPES",
    "NUMERIC_TYPES",
    "MAX_VALUE_LENGTH",
    "ValueConflict",
    "validate_value",
    "check_value",
    "is_zero",
    "is_numeric",
]

MAX_VALUE_LENGTH = 50_000

INTEGER_TYPES = frozenset({"INTEGER", "INTEGER_POSITIVE", "INTEGER_NEGATIVE",
                           "INTEGER_ZERO_OR_POSITIVE"})
NUMERIC_TYPES = INTEGER_TYPES | {"NUMBER", "UNIT_INTERVAL", "PERCENTAGE"}
VALUE_TYPES = NUMERIC_TYPES | {
    "TEXT", "LONG_TEXT", "MULTI_TEXT", "LETTER", "PHONE_NUMBER", "EMAIL", "BOOLEAN",
    "TRUE_ONLY", "DATE", "DATETIME", "TIME", "TRACKER_ASSOCIATE", "USERNAME", "COORDINATE",
    "ORGANISATION_UNIT", "REFERENCE", "AGE", "URL", "FILE_RESOURCE", "IMAGE", "GEOJSON",
}

# DHIS2 i18n_global.properties (2.41). Keys missing here are rendered as the key itself.
_I18N = {
    "data_element_or_type_null_or_empty": "Data element or type is null or empty",
    "data_element_lacks_option_set":
        "Data elements with value type MULTI_TEXT must have an option set",
    "value_length_greater_than_max_length": "Data value is greater than max length",
    "value_not_numeric": "Data value is not numeric",
    "value_not_unit_interval": "Data value is not a unit interval",
    "value_not_percentage": "Data value is not a percentage",
    "value_not_integer": "Data value is not an integer",
    "value_not_positive_integer": "Data value is not a positive integer",
    "value_not_negative_integer": "Data value is not a negative integer",
    "value_not_bool": "Data value is not a boolean",
    "value_not_true_only": "Data value is not true",
    "value_not_valid_date": "Data value is not a valid date",
    "value_not_valid_letter": "Data value is not a valid letter",
}


@dataclass(frozen=True)
class ValueConflict:
    """Why a value was refused: DHIS2 error code, i18n key and English detail."""

    error_code: str  # "E7619" (value type) or "E7621" (not an option)
    key: str
    detail: str

    def message(self, data_element: str = "dataElement") -> str:
        if self.error_code == "E7621":
            return (
                "Data value is not a valid option of the data element option set: "
                f"`{data_element}`"
            )
        return f"Value must match value type of data element `{data_element}`: `{self.detail}`"


def _conflict(key: str, code: str = "E7619") -> ValueConflict:
    return ValueConflict(code, key, _I18N.get(key, key))


def _rx(pattern: str) -> re.Pattern[str]:
    # Java regexes are ASCII unless told otherwise (\d, \s, \w); keep Python in step.
    return re.compile(pattern, re.ASCII)


_NUMBER_RE = _rx(r"(-?0|-?[1-9]\d*)(\.\d+)?")
_INT_RE = _rx(r"0|-?[1-9]\d*")
_POS_INT_RE = _rx(r"[1-9]\d*")
_ZERO_OR_POS_INT_RE = _rx(r"0|[1-9]\d*")
_NEG_INT_RE = _rx(r"-[1-9]\d*")
_ZERO_RE = _rx(r"0(\.0*)?")
_TIME_RE = _rx(r"([0-9]|0[0-9]|1[0-9]|2[0-3]):[0-5][0-9]")
_PHONE_RE = _rx(r"[0-9+()#.\s/ext-]{6,50}")
_USERNAME_RE = _rx(r"(?=.{4,255}$)(?![-_.@])(?!.*[-_.@]{2})[-_.@a-zA-Z0-9]+(?<![-_.@])")
_UID_RE = _rx(r"[a-zA-Z][a-zA-Z0-9]{10}")
# DHIS2 DateUtils DEFAULT_DATE_REGEX: yyyy-MM-dd, then ANY tail that ends on a word boundary
# (so "2024-01-05T10:00" is a valid DATE in 2.41, "2024-01-05 " is not).
_DATE_RE = _rx(r"\b(\d{4})-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-2])(.*)\b")
_ZONE = r"(Z|[+-]\d{2}(?::?\d{2})?)"
_DATETIME_T_RE = _rx(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?)?" + _ZONE + "?"
)
_DATETIME_SPACE_RE = _rx(r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})" + _ZONE)
_JAVA_FLOAT_RE = _rx(r"[+-]?(NaN|Infinity|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[fFdD]?)")
_JAVA_HEX_FLOAT_RE = _rx(
    r"[+-]?0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?\d+[fFdD]?"
)

_BOOL_TRUE = frozenset({"true", "True", "TRUE", "t", "T", "1"})
_BOOL_FALSE = frozenset({"false", "False", "FALSE", "f", "F", "0"})
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1  # Apache IntegerValidator: a Java int


def is_numeric(value_type: str) -> bool:
    """DHIS2 ``ValueType.isNumeric()``: the integer types, NUMBER, UNIT_INTERVAL, PERCENTAGE."""
    return value_type in NUMERIC_TYPES


def is_zero(value_type: str, value: str) -> bool:
    """DHIS2 ``MathUtils.isZero`` on a numeric type: ``0``, ``0.``, ``0.000`` (not ``-0``).

    For ``zeroIsSignificant=false`` handling. DHIS2 also keeps zeros of elements whose
    aggregationType is AVERAGE or AVERAGE_SUM_ORG_UNIT; that check is the caller's.
    """
    return is_numeric(value_type) and isinstance(value, str) and bool(_ZERO_RE.fullmatch(value))


def _java_len(s: str) -> int:
    # Java measures strings in UTF-16 code units; astral characters count twice.
    if len(s) * 2 <= MAX_VALUE_LENGTH:
        return len(s)
    return len(s) + sum(1 for c in s if ord(c) > 0xFFFF)


def _java_trim(s: str) -> str:
    # String.trim() removes every char <= U+0020 from both ends (not Unicode spaces).
    start, end = 0, len(s)
    while start < end and s[start] <= " ":
        start += 1
    while end > start and s[end - 1] <= " ":
        end -= 1
    return s[start:end]


def _is_number(v: str) -> bool:
    return len(v) < 250 and _NUMBER_RE.fullmatch(v) is not None


def _is_int(v: str, pattern: re.Pattern[str]) -> bool:
    # Length first: a Java int has at most 11 characters, and int() refuses > 4300 digits.
    return len(v) <= 11 and pattern.fullmatch(v) is not None and _INT_MIN <= int(v) <= _INT_MAX


def _real_date(y: str, m: str, d: str) -> bool:
    try:
        date(int(y), int(m), int(d))
    except ValueError:
        return False
    return True


def _is_date(v: str) -> bool:
    m = _DATE_RE.fullmatch(v)
    return m is not None and _real_date(m.group(1), m.group(2), m.group(3))


def _is_datetime(v: str) -> bool:
    # Union of the Joda patterns in DHIS2 DateUtils.SUPPORTED_DATE_TIME_FORMAT_PARSERS.
    m = _DATETIME_T_RE.fullmatch(v) or _DATETIME_SPACE_RE.fullmatch(v)
    if m is None or not _real_date(m.group(1), m.group(2), m.group(3)):
        return False
    hour, minute, second = (int(g) if g else 0 for g in m.group(4, 5, 6))
    if hour > 23 or minute > 59 or second > 59:
        return False
    zone = m.group(7)
    if zone and zone != "Z":
        digits = zone[1:].replace(":", "")
        if int(digits[:2]) > 23 or (len(digits) > 2 and int(digits[2:]) > 59):
            return False
    return True


def _java_float(text: str) -> float | None:
    """Float.parseFloat, rounded to float32 like Java; None if Java would throw."""
    if _JAVA_FLOAT_RE.fullmatch(text):
        x = float(text.rstrip("fFdD"))
    elif _JAVA_HEX_FLOAT_RE.fullmatch(text):
        x = float.fromhex(text.rstrip("fFdD"))
    else:
        return None
    try:
        return float(struct.unpack("f", struct.pack("f", x))[0])
    except OverflowError:
        return math.copysign(math.inf, x)


def _is_coordinate(v: str) -> bool:
    # MathUtils.isCoordinate: "[lng,lat]" with whitespace ignored, parsed as Java floats.
    v = re.sub(r"\s+", "", v, flags=re.ASCII)
    if len(v) < 5 or v.find("[") != 0 or v.find("]") != len(v) - 1:
        return False
    parts = v[1:-1].split(",")
    while parts and parts[-1] == "":  # Java's split() drops trailing empty strings
        parts.pop()
    if len(parts) < 2:
        return False
    lng, lat = _java_float(parts[0]), _java_float(parts[1])
    return lng is not None and lat is not None and -180 <= lng <= 180 and -90 <= lat <= 90


def _is_letter(v: str) -> bool:
    return len(v) == 1 and ord(v) <= 0xFFFF and v.isalpha()


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN_RE = _rx(rf"(?:{_LABEL}\.)+(?:[A-Za-z]{{2,63}}|xn--[A-Za-z0-9-]{{1,59}})\.?")


def _ascii_host(host: str) -> str | None:
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except (UnicodeError, ValueError):
        return None


def _is_domain(host: str) -> bool:
    # Apache DomainValidator (no local names). We cannot ship IANA's TLD list, so any
    # alphabetic or punycode TLD passes: slightly laxer than DHIS2.
    ascii_host = _ascii_host(host)
    return ascii_host is not None and len(ascii_host) <= 253 and bool(
        _DOMAIN_RE.fullmatch(ascii_host)
    )


def _is_ipv4(host: str) -> bool:
    parts = host.split(".")
    if len(parts) != 4:
        return False
    for part in parts:
        if not part.isdigit() or not part.isascii() or len(part) > 3:
            return False
        if int(part) > 255 or (len(part) > 1 and part[0] == "0"):
            return False
    return True


def _is_ipv6(host: str) -> bool:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


_URL_RE = re.compile(r"(?:([^:/?#]+):)?(?://([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?")
_AUTHORITY_RE = _rx(
    r"(?:\[([0-9A-Fa-f:.]+)\]|(?:[A-Za-z0-9:\-._~!$&'()*+,;=%]+@)?([A-Za-z0-9\-.]*))"
    r"(?::(\d*))?(.*)"
)
_PATH_RE = _rx(r"/[-\w:@&?=+,.!/~*'%$;()]*")


def _is_url(v: str) -> bool:
    """Apache commons UrlValidator() defaults: http/https/ftp, a real host, sane path."""
    m = _URL_RE.fullmatch(v)
    if m is None:
        return False
    scheme, authority, path, query, _fragment = m.groups()
    if scheme is None or scheme.lower() not in {"http", "https", "ftp"}:
        return False
    if not authority:
        return False
    ascii_authority = _ascii_host(authority)
    if ascii_authority is None:
        return False
    a = _AUTHORITY_RE.fullmatch(ascii_authority)
    if a is None or a.group(4):
        return False
    ipv6, host, port = a.group(1), a.group(2), a.group(3)
    if ipv6 is not None:
        if not _is_ipv6(ipv6):
            return False
    elif not host or not (_is_ipv4(host) or _is_domain(host)):
        return False
    if port and (len(port) > 5 or int(port) > 65535):
        return False
    if path:
        if not _PATH_RE.fullmatch(path) or "//" in path:
            return False
        depth = 0
        for segment in path.split("/")[1:]:
            depth += -1 if segment == ".." else (0 if segment in ("", ".") else 1)
            if depth < 0:  # climbs above the root
                return False
    return query is None or re.search(r"\s", query, re.ASCII) is None


_EMAIL_ATOM = r"[^\s\x00-\x1f\x7f()<>@,;:'\\\".\[\]]+"
_EMAIL_USER_RE = re.compile(
    rf"(?:{_EMAIL_ATOM}|\"(?:\\.|[^\"\\])*\")(?:\.(?:{_EMAIL_ATOM}|\"(?:\\.|[^\"\\])*\"))*"
)


def _is_email(v: str) -> bool:
    """Approximates Apache commons EmailValidator.getInstance() (no local or bare-TLD hosts)."""
    if v.endswith("."):
        return False
    # Apache splits "user@domain" at the LAST "@" and ignores trailing whitespace. Done by
    # hand: the equivalent regex is quadratic on long whitespace runs.
    user, at, domain = v.rpartition("@")
    domain = domain.rstrip(" \t\n\r\f\v")
    if not at or not user or not domain:
        return False
    if len(user) > 64 or _EMAIL_USER_RE.fullmatch(user) is None:
        return False
    literal = re.fullmatch(r"\[(.*)\]", domain)
    if literal is not None:
        return _is_ipv4(literal.group(1)) or _is_ipv6(literal.group(1))
    return _is_domain(domain)


def _split_multi_text(value: str) -> list[str]:
    parts = value.split(",")
    while parts and parts[-1] == "":  # Java String.split drops trailing empty strings
        parts.pop()
    return parts


def _normalise_boolean(value: str, value_type: str) -> str:
    # ValidationUtils.normalizeBoolean: exact variants only; TRUE_ONLY keeps false forms.
    if value in _BOOL_FALSE and value_type == "BOOLEAN":
        return "false"
    if value in _BOOL_TRUE:
        return "true"
    return value


_UNCHECKED = frozenset({"TEXT", "LONG_TEXT", "MULTI_TEXT", "TRACKER_ASSOCIATE", "REFERENCE",
                        "GEOJSON"})

# value type -> (validity test, DHIS2 i18n key when it fails); ValidationUtils.valueIsValid.
_CHECKS: dict[str, tuple[Callable[[str], bool], str]] = {
    "LETTER": (_is_letter, "value_not_valid_letter"),
    "NUMBER": (_is_number, "value_not_numeric"),
    "UNIT_INTERVAL": (lambda v: _is_number(v) and 0 <= float(v) <= 1, "value_not_unit_interval"),
    "PERCENTAGE": (lambda v: _is_number(v) and 0 <= float(v) <= 100, "value_not_percentage"),
    "INTEGER": (lambda v: _is_int(v, _INT_RE), "value_not_integer"),
    "INTEGER_POSITIVE": (lambda v: _is_int(v, _POS_INT_RE), "value_not_positive_integer"),
    "INTEGER_NEGATIVE": (lambda v: _is_int(v, _NEG_INT_RE), "value_not_negative_integer"),
    "INTEGER_ZERO_OR_POSITIVE": (
        lambda v: _is_int(v, _ZERO_OR_POS_INT_RE), "value_not_zero_or_positive_integer"
    ),
    "PHONE_NUMBER": (lambda v: _PHONE_RE.fullmatch(v) is not None, "value_not_phone_number"),
    "EMAIL": (_is_email, "value_not_valid_email"),
    "BOOLEAN": (lambda v: v.lower() in ("true", "false"), "value_not_bool"),
    "TRUE_ONLY": (lambda v: v.lower() == "true", "value_not_true_only"),
    "DATE": (_is_date, "value_not_valid_date"),
    "AGE": (_is_date, "value_not_valid_age"),
    "DATETIME": (_is_datetime, "value_not_valid_datetime"),
    "COORDINATE": (_is_coordinate, "value_not_coordinate"),
    "URL": (_is_url, "value_not_url"),
    "FILE_RESOURCE": (
        lambda v: _UID_RE.fullmatch(v) is not None, "value_not_valid_file_resource_uid"
    ),
    "IMAGE": (lambda v: _UID_RE.fullmatch(v) is not None, "value_not_valid_file_resource_uid"),
    "TIME": (lambda v: _TIME_RE.fullmatch(v) is not None, "value_not_valid_time"),
    "USERNAME": (lambda v: _USERNAME_RE.fullmatch(v) is not None, "value_not_valid_username"),
    "ORGANISATION_UNIT": (
        lambda v: _UID_RE.fullmatch(v) is not None, "value_not_valid_org_unit_uid"
    ),
}


def _type_error(value_type: str, v: str) -> str | None:
    """The DHIS2 i18n key of what is wrong with ``v`` for ``value_type``, or None."""
    if value_type in _UNCHECKED:
        return None
    check = _CHECKS.get(value_type)
    if check is None:
        return "data_element_or_type_null_or_empty"
    test, key = check
    return None if test(v) else key


def _as_text(value: object) -> str | None:
    # Jackson turns JSON numbers/booleans in the "value" field into their text.
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    raise TypeError


def validate_value(
    value_type: str, value: str, options: Collection[str] | None = None
) -> tuple[str | None, ValueConflict | None]:
    """Check one data value like DHIS2's importer; ``(stored value, None)`` or ``(None, why)``.

    The stored value is what DHIS2 writes: booleans normalised to ``true``/``false``, then
    trimmed (Java ``trim``). A blank value is not a type error (it means "delete" or E7618,
    which is the caller's business) and yields ``""``. ``options`` are the option codes of
    the element's option set, if it has one (E7621; for MULTI_TEXT every comma-separated
    code must be an option).
    """
    try:
        text = _as_text(value)
    except TypeError:
        return None, _conflict("value_not_valid_type")
    if value_type == "MULTI_TEXT" and options is None:
        return None, _conflict("data_element_lacks_option_set")
    if text is None or not _java_trim(text):
        return "", None
    if value_type in ("BOOLEAN", "TRUE_ONLY"):
        text = _normalise_boolean(text, value_type)
    if _java_len(text) > MAX_VALUE_LENGTH:
        return None, _conflict("value_length_greater_than_max_length")
    key = _type_error(value_type, text)
    if key is not None:
        return None, _conflict(key)
    if value_type in ("BOOLEAN", "TRUE_ONLY"):
        text = text.lower()  # DHIS2 would keep e.g. "tRuE"; storing the canonical form is safer
    if options is not None:
        raw = _as_text(value) or ""
        codes = _split_multi_text(raw) if value_type == "MULTI_TEXT" else [raw]
        allowed = options if isinstance(options, set | frozenset) else frozenset(options)
        if not codes or any(code not in allowed for code in codes):
            return None, _conflict("value_not_valid_option", "E7621")
    return _java_trim(text), None


def check_value(
    value_type: str,
    value: str,
    options: Collection[str] | None = None,
    *,
    data_element: str = "dataElement",
) -> tuple[str | None, str | None]:
    """``(normalised value, None)`` if valid, else ``(None, DHIS2 conflict message)``.

    E.g. ``check_value("INTEGER", "1.5", data_element="fbfJHSPpUQD")`` gives
    ``(None, "Value must match value type of data element `fbfJHSPpUQD`: "
    "`Data value is not an integer`")``. Use :func:`validate_value` to get the error code.
    """
    normalised, conflict = validate_value(value_type, value, options)
    if conflict is not None:
        return None, conflict.message(data_element)
    return normalised, None
