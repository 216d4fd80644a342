"""DHIS2 value types: what the 2.41 importer accepts, normalises and how it words refusals."""

from __future__ import annotations

import random
import string

import pytest

from appliance.dhis2.valuetypes import (
    NUMERIC_TYPES,
    VALUE_TYPES,
    ValueConflict,
    check_value,
    is_numeric,
    is_zero,
    validate_value,
)

VALID: dict[str, list[str]] = {
    "NUMBER": ["0", "-0", "1", "-1", "12.5", "-0.5", "0.0", "100000", "3.14159", "1" * 249],
    "INTEGER": ["0", "1", "-1", "42", "2147483647", "-2147483648"],
    "INTEGER_POSITIVE": ["1", "7", "2147483647"],
    "INTEGER_ZERO_OR_POSITIVE": ["0", "1", "99"],
    "INTEGER_NEGATIVE": ["-1", "-99", "-2147483648"],
    "PERCENTAGE": ["0", "100", "55.5", "0.001", "-0"],
    "UNIT_INTERVAL": ["0", "1", "0.5", "1.0", "0.999"],
    "DATE": ["2024-01-31", "2024-02-29", "2024-01-05T10:00", "2024-01-05T"],
    "AGE": ["2020-06-15", "1950-01-01"],
    "DATETIME": ["2024-01-05T10:00:00.000", "2024-01-05T10:00:00", "2024-01-05T10:00",
                 "2024-01-05T10", "2024-01-05T10:00:00.000Z", "2024-01-05T10:00:00+06:00",
                 "2024-01-05T10:00:00.123456789", "2024-01-05 10:00:00+0600",
                 "2024-01-05T23:59:59.9-0530", "2024-02-29T00:00Z"],
    "TIME": ["00:00", "9:30", "09:30", "23:59"],
    "COORDINATE": ["[90.4,23.7]", "[ 92.0 , 21.4 ]", "[-180,-90]", "[180,90]", "[1e2,1]",
                   "[180.000001,0]", "[1,2,3]"],
    "URL": ["http://example.com", "https://dhis2.org/path/to?x=1#top", "ftp://1.2.3.4:21/f",
            "HTTPS://EXAMPLE.COM", "http://[::1]/", "http://user:pw@sub.example.co.uk:8080"],
    "EMAIL": ["chcp@example.com", "a.b+c@sub.example.org", "x@[10.0.0.1]"],
    "PHONE_NUMBER": ["+8801711000000", "01711-000000", "(02) 555 1234", "123456",
                     "+880 1711 000000 ext 12"],
    "LETTER": ["a", "Z", "ক", "é"],
    "USERNAME": ["admin", "chcp.ramu", "user_1@x.org", "abcd"],
    "ORGANISATION_UNIT": ["ImspTQPwCqd"],
    "FILE_RESOURCE": ["ImspTQPwCqd"],
    "IMAGE": ["a1234567890"],
    "TEXT": ["anything at all", "ক খ গ", "x" * 50000],
    "LONG_TEXT": ["multi\nline"],
    "GEOJSON": ['{"type":"Point"}'],
}

INVALID: dict[str, list[str]] = {
    "NUMBER": ["01", "1.", ".5", "1e5", "+1", "1,5", "abc", "--1", "0x10", "NaN", "Infinity",
               "1 ", " 1", "１", "1" * 250, "1.5.5"],
    "INTEGER": ["1.5", "01", "-0", "+3", "2147483648", "-2147483649", "1e3", "١٢", "9" * 5000],
    "INTEGER_POSITIVE": ["0", "-1", "01", "1.0", "2147483648"],
    "INTEGER_ZERO_OR_POSITIVE": ["-1", "00", "-0", "0.0"],
    "INTEGER_NEGATIVE": ["0", "-0", "1", "-01"],
    "PERCENTAGE": ["100.01", "-1", "101", "abc", "-0.1"],
    "UNIT_INTERVAL": ["1.01", "-0.1", "2"],
    "DATE": ["2024-02-30", "2023-02-29", "2024-13-01", "2024-1-5", "05-01-2024", "2024/01/05",
             "2024-01-05 ", "2024-01-05.", "20240105", "2024-01-32"],
    "AGE": ["yesterday", "2024-02-30"],
    "DATETIME": ["2024-01-05", "2024-01-05T24:00", "2024-01-05T10:60", "2024-02-30T10:00",
                 "2024-01-05 10:00:00", "2024-01-05T10:00:00.", "2024-01-05T10:00:00+25:00",
                 "2024-01-05T10:00:00.1234567890", "now"],
    "TIME": ["24:00", "12:60", "1230", "12:3", "12:30:00", "-1:00"],
    "COORDINATE": ["90.4,23.7", "[181,0]", "[0,91]", "[1,]", "[,1]", "[NaN,1]", "[a,b]",
                   "[180.00002,0]", "[1,2]]", "x[1,2]", "[1]"],
    "URL": ["example.com", "http://", "mailto:a@b.com", "file:///etc/passwd", "http://localhost",
            "http://exa mple.com", "http://example.com:99999", "http://example.com//a",
            "http://example.com/../a", "javascript:alert(1)", "http://-bad-.com",
            "http://example.com/a b", "http://1.2.3.999/"],
    "EMAIL": ["no-at-sign", "a@b", "a@localhost", "@example.com", "a@example.com.",
              "a..b@example.com", "a b@example.com", "a@exa_mple.com"],
    "PHONE_NUMBER": ["12345", "phone", "+880 1711 abc", "1" * 51],
    "LETTER": ["ab", "1", "-", "😀", "\u00a0"],
    "USERNAME": ["abc", ".admin", "admin.", "ad..min", "ad min", "a" * 256, "admin!"],
    "ORGANISATION_UNIT": ["1mspTQPwCqd", "ImspTQPwCq", "ImspTQPwCqdX", "Imsp-QPwCqd"],
    "FILE_RESOURCE": ["not-a-uid"],
    "IMAGE": ["12345678901"],
    "TEXT": ["x" * 50001, "😀" * 25001],
}


@pytest.mark.parametrize(("vtype", "value"), [(t, v) for t, vs in VALID.items() for v in vs])
def test_valid_values(vtype: str, value: str) -> None:
    normalised, message = check_value(vtype, value)
    assert message is None, (vtype, value, message)
    assert normalised == value.strip(" \t\n")


@pytest.mark.parametrize(("vtype", "value"), [(t, v) for t, vs in INVALID.items() for v in vs])
def test_invalid_values(vtype: str, value: str) -> None:
    normalised, message = check_value(vtype, value)
    assert normalised is None
    assert message is not None
    assert message.startswith("Value must match value type of data element `dataElement`: `")


@pytest.mark.parametrize(
    ("vtype", "value", "detail"),
    [
        ("INTEGER", "1.5", "Data value is not an integer"),
        ("NUMBER", "x", "Data value is not numeric"),
        ("INTEGER_POSITIVE", "0", "Data value is not a positive integer"),
        ("INTEGER_NEGATIVE", "0", "Data value is not a negative integer"),
        # DHIS2 2.41 has no English text for these keys and prints the key itself
        ("INTEGER_ZERO_OR_POSITIVE", "-1", "value_not_zero_or_positive_integer"),
        ("DATETIME", "x", "value_not_valid_datetime"),
        ("PERCENTAGE", "101", "Data value is not a percentage"),
        ("UNIT_INTERVAL", "2", "Data value is not a unit interval"),
        ("BOOLEAN", "yes", "Data value is not a boolean"),
        ("TRUE_ONLY", "false", "Data value is not true"),
        ("DATE", "x", "Data value is not a valid date"),
        ("LETTER", "ab", "Data value is not a valid letter"),
        ("TEXT", "x" * 50001, "Data value is greater than max length"),
        ("NOT_A_TYPE", "1", "Data element or type is null or empty"),
    ],
)
def test_messages_are_dhis2_words(vtype: str, value: str, detail: str) -> None:
    _, message = check_value(vtype, value, data_element="fbfJHSPpUQD")
    assert message == f"Value must match value type of data element `fbfJHSPpUQD`: `{detail}`"
    _, conflict = validate_value(vtype, value)
    assert conflict is not None
    assert conflict == ValueConflict("E7619", conflict.key, detail)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", "true"), ("True", "true"), ("TRUE", "true"), ("t", "true"), ("T", "true"),
     ("1", "true"), ("tRuE", "true"), ("false", "false"), ("False", "false"),
     ("FALSE", "false"), ("f", "false"), ("F", "false"), ("0", "false")],
)
def test_boolean_normalisation(value: str, expected: str) -> None:
    assert check_value("BOOLEAN", value) == (expected, None)


@pytest.mark.parametrize("value", ["yes", "no", "2", "-1", "tru", "y", "on", "0.0"])
def test_boolean_rejects(value: str) -> None:
    assert check_value("BOOLEAN", value)[0] is None


def test_true_only() -> None:
    for value in ("true", "True", "TRUE", "t", "T", "1"):
        assert check_value("TRUE_ONLY", value) == ("true", None)
    for value in ("false", "False", "f", "0", "no"):
        normalised, message = check_value("TRUE_ONLY", value)
        assert normalised is None and message is not None and "Data value is not true" in message


def test_blank_values_are_not_type_errors() -> None:
    # Empty means "delete" (or E7618) in DHIS2; that is decided by the importer, not here.
    for vtype in ("INTEGER", "DATE", "TEXT", "BOOLEAN"):
        assert check_value(vtype, "") == ("", None)
        assert check_value(vtype, "   ") == ("", None)
        assert check_value(vtype, None) == ("", None)  # type: ignore[arg-type]
    # a no-break space is not blank in Java, so it is an invalid integer
    assert check_value("INTEGER", "\u00a0")[0] is None


def test_text_is_trimmed_like_dhis2_stores_it() -> None:
    assert check_value("TEXT", "  hello \n") == ("hello", None)
    assert check_value("TEXT", "\u00a0x\u00a0") == ("\u00a0x\u00a0", None)


def test_json_scalars_are_coerced() -> None:
    assert check_value("INTEGER", 5) == ("5", None)  # type: ignore[arg-type]
    assert check_value("BOOLEAN", True) == ("true", None)  # type: ignore[arg-type]
    assert check_value("NUMBER", 2.5) == ("2.5", None)  # type: ignore[arg-type]
    assert check_value("NUMBER", {"x": 1})[0] is None  # type: ignore[arg-type]


def test_option_sets() -> None:
    options = {"MALE", "FEMALE"}
    assert check_value("TEXT", "MALE", options) == ("MALE", None)
    normalised, message = check_value("TEXT", "male", options, data_element="de1")
    assert normalised is None
    assert message == "Data value is not a valid option of the data element option set: `de1`"
    assert validate_value("TEXT", "OTHER", options)[1].error_code == "E7621"  # type: ignore
    # type checks come first (E7619 before E7621), as in DHIS2
    assert validate_value("INTEGER", "x", ["1", "2"])[1].error_code == "E7619"  # type: ignore
    assert check_value("INTEGER", "2", ["1", "2"]) == ("2", None)
    assert check_value("INTEGER", "3", ["1", "2"])[0] is None
    assert check_value("TEXT", "MALE", [])[0] is None


def test_multi_text() -> None:
    options = ["A", "B", "C"]
    assert check_value("MULTI_TEXT", "A,C", options) == ("A,C", None)
    assert check_value("MULTI_TEXT", "A", options) == ("A", None)
    assert check_value("MULTI_TEXT", "A,B,", options) == ("A,B,", None)  # Java split()
    for bad in ("A,D", "A,,B", ",A", "a"):
        assert validate_value("MULTI_TEXT", bad, options)[1].error_code == "E7621"  # type: ignore
    _, message = check_value("MULTI_TEXT", "A")
    assert message is not None and "must have an option set" in message


@pytest.mark.parametrize(
    ("vtype", "value", "zero"),
    [("NUMBER", "0", True), ("NUMBER", "0.0", True), ("NUMBER", "0.000", True),
     ("INTEGER", "0", True), ("PERCENTAGE", "0", True), ("INTEGER_ZERO_OR_POSITIVE", "0", True),
     ("NUMBER", "-0", False), ("NUMBER", "-0.0", False), ("NUMBER", "0.01", False),
     ("NUMBER", "00", False), ("NUMBER", "", False), ("TEXT", "0", False),
     ("BOOLEAN", "0", False), ("INTEGER", "10", False)],
)
def test_is_zero(vtype: str, value: str, zero: bool) -> None:
    assert is_zero(vtype, value) is zero


def test_is_numeric() -> None:
    expected = {"NUMBER", "INTEGER", "INTEGER_POSITIVE", "INTEGER_NEGATIVE",
                "INTEGER_ZERO_OR_POSITIVE", "PERCENTAGE", "UNIT_INTERVAL"}
    assert expected == NUMERIC_TYPES
    for vtype in VALUE_TYPES:
        assert is_numeric(vtype) is (vtype in NUMERIC_TYPES)
    assert not is_numeric("BOOLEAN") and not is_numeric("nonsense")


def test_fuzz_check_value_never_raises() -> None:
    rng = random.Random(99)
    alphabet = string.printable + "০১২৩ক😀\u00a0-.,:[]{}@/+#eET"
    types = sorted(VALUE_TYPES) + ["BOGUS"]
    for _ in range(800):
        vtype = rng.choice(types)
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        options = rng.choice([None, ["a", "b"], {value}])
        normalised, message = check_value(vtype, value, options)
        assert (normalised is None) != (message is None)
