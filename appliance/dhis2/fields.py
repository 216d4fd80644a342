"""DHIS2 ``fields=`` filter: parse once into a :class:`FieldSpec`, project many documents.

Syntax (DHIS2 "Metadata field filter"):

- ``id,name,categoryCombo[id,name],dataSetElements(dataElement[id])``: nesting with
  ``[...]`` or ``(...)``, to any depth;
- ``*`` / ``:all``, ``:owner``, ``:persisted``, ``:simple``, ``:identifiable``,
  ``:nameable``, ``:id``, ``:code``, ``:idName``: presets;
- ``!code``: exclusion at its own level (``group[!code]`` inside a block); exclusions win
  over inclusions and presets, whatever their order;
- ``name~rename(n)``, ``items~size``, ``items~isEmpty``, ``items~isNotEmpty``,
  ``items~pluck`` / ``~pluck(code)``, ``items~keyBy(code)``: transformers, chained, introduced
  by ``~``, ``|`` or ``::``; parameters are separated by ``;``.

Documents are plain JSON mappings whose references are ``{"id": uid}`` stubs. A nested
spec that needs more than ``id`` resolves such stubs through ``lookup(uid)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache

from appliance.errors import BadRequest

Lookup = Callable[[str], Mapping[str, object] | None]

__all__ = [
    "DEFAULT_FIELDS",
    "Field",
    "FieldSpec",
    "Lookup",
    "Transformer",
    "get_prop",
    "translated",
    "DISPLAY_LOCALE",
    "parse_fields",
    "project",
    "project_all",
]

DEFAULT_FIELDS = "id,displayName"

# Nesting deeper than this is never a real request, and bounds recursion on hostile input.
MAX_DEPTH = 32

# DHIS2 computes display* properties from the (translated) base property; the hub has no
# translations, so a stored doc without ``displayName`` still answers with its ``name``.
_DISPLAY_FALLBACK: dict[str, tuple[str, ...]] = {
    "displayName": ("name",),
    "displayShortName": ("shortName",),
    "displayDescription": ("description",),
    "displayFormName": ("formName", "name"),
    # a program's and a program stage's date labels, a rule action's message
    "displayEnrollmentDateLabel": ("enrollmentDateLabel",),
    "displayIncidentDateLabel": ("incidentDateLabel",),
    "displayExecutionDateLabel": ("executionDateLabel",),
    "displayDueDateLabel": ("dueDateLabel",),
    "displayContent": ("content",),
}

# Computed or per-user properties that DHIS2 never lists as owner/persisted properties:
# the translated display* variants (not every display* property: displayOptions,
# displayInList, displayFrontPageList... are stored) and per-request ones.
_NON_OWNER = frozenset({
    "access", "href", "favorite", "dimensionItem", "dimensionItemType",
    "displayName", "displayShortName", "displayDescription", "displayFormName",
    "displayNumeratorDescription", "displayDenominatorDescription", "displayInstructions",
    "displayEnrollmentDateLabel", "displayIncidentDateLabel", "displayExecutionDateLabel",
    "displayDueDateLabel", "displayProgramStageLabel", "displayEventLabel", "displayTitle",
    "displayContent",
    "displaySubtitle", "displayRelationshipFromToName", "displayRelationshipToFromName",
})

_IDENTIFIABLE = ("id", "name", "displayName", "code", "created", "lastUpdated", "lastUpdatedBy")
_NAMEABLE = (*_IDENTIFIABLE, "shortName", "displayShortName", "description", "displayDescription")

# Presets that name a fixed list of properties.
_FIXED_PRESETS: dict[str, tuple[str, ...]] = {
    "identifiable": _IDENTIFIABLE,
    "nameable": _NAMEABLE,
    "id": ("id",),
    "code": ("code",),
    "idName": ("id", "displayName"),
}
# Presets that select from whatever properties the document has.
_OPEN_PRESETS = frozenset({"all", "owner", "persisted", "simple"})
# Lower-case spelling -> canonical name; DHIS2 ignores presets it does not know, and so do we.
_PRESETS = {p.lower(): p for p in (*_FIXED_PRESETS, *_OPEN_PRESETS)}

# Lower-case spelling -> canonical name; DHIS2 silently ignores unknown transformers.
_TRANSFORMERS = {t.lower(): t for t in ("rename", "size", "isEmpty", "isNotEmpty", "pluck", "keyBy")}

_WS = " \t\r\n"
_PARAM_STOP = "()[],"  # `;` separates parameters


# The locale display* properties are translated to (DHIS2's keyDbLocale or ``?locale=``), set
# per request by the server; None: the stored names. A doc's ``translations`` are DHIS2's
# ``[{property: NAME|SHORT_NAME|FORM_NAME|DESCRIPTION|..., locale, value}]``.
DISPLAY_LOCALE: ContextVar[str | None] = ContextVar("display_locale", default=None)
_TRANSLATED: dict[str, str] = {
    "displayName": "NAME", "displayShortName": "SHORT_NAME", "displayDescription": "DESCRIPTION",
    "displayFormName": "FORM_NAME", "displayInstruction": "INSTRUCTION",
    "displayEnrollmentDateLabel": "ENROLLMENT_DATE_LABEL",
    "displayIncidentDateLabel": "INCIDENT_DATE_LABEL",
    "displayExecutionDateLabel": "EXECUTION_DATE_LABEL", "displayDueDateLabel": "DUE_DATE_LABEL",
    "displayContent": "CONTENT",
}


def translated(obj: Mapping[str, object], key: str, locale: str | None) -> str | None:
    """The ``locale`` translation of display property ``key`` (``displayName``...), if the
    doc has one; ``displayFormName`` of a doc without a form name is its name's."""
    prop = _TRANSLATED.get(key)
    trs = obj.get("translations")
    if prop is None or not locale or not isinstance(trs, list) or not trs:
        return None
    if prop == "FORM_NAME" and not obj.get("formName"):
        prop = "NAME"
    lang = locale.replace("-", "_").split("_")[0]
    for t in trs:
        if isinstance(t, Mapping) and t.get("property") == prop and isinstance(
                t.get("locale"), str) and str(t["locale"]).split("_")[0] == lang and t.get("value"):
            return str(t["value"])
    return None


def get_prop(obj: Mapping[str, object], key: str) -> object | None:
    """``obj[key]``, with DHIS2's display* fallbacks and translations; ``None`` when absent."""
    if key in _TRANSLATED:
        loc = DISPLAY_LOCALE.get()
        if loc is not None:
            text = translated(obj, key, loc)
            if text is not None:
                return text
    value = obj.get(key)
    if value is None:
        fallback = _DISPLAY_FALLBACK.get(key)
        if fallback is not None:
            for alt in fallback:
                value = obj.get(alt)
                if value is not None:
                    return value
    return value


# ---------------------------------------------------------------------------------------------
# Compiled spec


@dataclass(frozen=True, slots=True)
class Transformer:
    name: str  # canonical: rename, size, isEmpty, isNotEmpty, pluck, keyBy
    params: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    children: FieldSpec | None = None
    transformers: tuple[Transformer, ...] = ()


class FieldSpec:
    """One level of a parsed ``fields=`` expression (immutable, shareable between requests)."""

    __slots__ = ("fields", "presets", "excludes", "needs_resolution", "_names")

    def __init__(self, fields: Sequence[Field], presets: Sequence[str] = (),
                 excludes: frozenset[str] = frozenset()) -> None:
        self.fields: tuple[Field, ...] = tuple(f for f in fields if f.name not in excludes)
        self.presets: tuple[str, ...] = tuple(dict.fromkeys(presets))
        self.excludes = excludes
        self._names = frozenset(f.name for f in self.fields)
        # A reference stub {"id"} only needs its full document when more than id is asked for.
        self.needs_resolution = any(p != "id" for p in self.presets) or any(
            n != "id" for n in self._names)

    def satisfied_by(self, obj: Mapping[str, object]) -> bool:
        """True when ``obj`` already holds every property asked for (so no lookup is needed)."""
        if not self.needs_resolution:
            return True
        if self.presets:
            return False
        # a stub's name is not its translation: a display* name in a language needs the
        # document's translations (/api/me's org units carry only id, path and name)
        if DISPLAY_LOCALE.get() is not None and "translations" not in obj and \
                not self._names.isdisjoint(_TRANSLATED):
            return False
        return all(get_prop(obj, n) is not None for n in self._names)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldSpec):
            return NotImplemented
        return (self.fields, self.presets, self.excludes) == (
            other.fields, other.presets, other.excludes)

    def __hash__(self) -> int:
        return hash((self.fields, self.presets, self.excludes))

    def __repr__(self) -> str:
        return (f"FieldSpec(fields={list(self.fields)!r}, presets={list(self.presets)!r}, "
                f"excludes={sorted(self.excludes)!r})")


# ---------------------------------------------------------------------------------------------
# Parser


@dataclass(slots=True)
class _RawField:
    name: str
    exclude: bool
    children: list[_RawItem] | None
    transformers: list[tuple[str, tuple[str, ...]]]


@dataclass(slots=True)
class _RawPreset:
    name: str


_RawItem = _RawField | _RawPreset


def _is_name_char(c: str) -> bool:
    return c.isalnum() or c == "_"


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.n = len(text)
        self.i = 0

    def fail(self, what: str) -> BadRequest:
        shown = self.s if len(self.s) <= 200 else self.s[:200] + "..."
        return BadRequest(f"Invalid field filter `{shown}`: {what} at position {self.i}")

    def ws(self) -> None:
        while self.i < self.n and self.s[self.i] in _WS:
            self.i += 1

    def parse(self) -> list[_RawItem]:
        return self.block(0, None)

    def block(self, depth: int, closer: str | None) -> list[_RawItem]:
        items: list[_RawItem] = []
        while True:
            self.ws()
            if self.i >= self.n:
                if closer is not None:
                    raise self.fail(f"missing closing '{closer}'")
                return items
            c = self.s[self.i]
            if c == ",":  # empty items (``id,,name``, trailing comma) are ignored, as in DHIS2
                self.i += 1
                continue
            if c in "])":
                if closer is None:
                    raise self.fail(f"unbalanced '{c}'")
                if c != closer:
                    raise self.fail(f"expected '{closer}' but found '{c}'")
                self.i += 1
                return items
            items.append(self.item(depth))
            self.ws()
            if self.i < self.n and self.s[self.i] not in ",])":
                raise self.fail(f"unexpected '{self.s[self.i]}'")

    def name(self, what: str) -> str:
        start = self.i
        while self.i < self.n and _is_name_char(self.s[self.i]):
            self.i += 1
        if self.i == start:
            found = repr(self.s[self.i]) if self.i < self.n else "end of input"
            raise self.fail(f"expected a {what} name but found {found}")
        return self.s[start:self.i]

    def item(self, depth: int) -> _RawItem:
        exclude = False
        if self.s[self.i] == "!":
            exclude = True
            self.i += 1
            self.ws()
            if self.i >= self.n:
                raise self.fail("expected a field name after '!'")
        c = self.s[self.i]
        if c == "*" or c == ":":
            if exclude:
                raise self.fail("a preset cannot be excluded")
            self.i += 1
            preset = "all" if c == "*" else self.name("preset")
            self.ws()
            if self.i < self.n and self.s[self.i] in "[(~|:":
                raise self.fail("a preset takes no sub-fields or transformers")
            return _RawPreset(preset)
        name = self.name("field")
        transformers = self.transformers()
        children: list[_RawItem] | None = None
        self.ws()
        if self.i < self.n and self.s[self.i] in "[(":
            closer = "]" if self.s[self.i] == "[" else ")"
            if depth + 1 > MAX_DEPTH:
                raise self.fail(f"fields nested deeper than {MAX_DEPTH} levels")
            self.i += 1
            children = self.block(depth + 1, closer)
            # ``a[b]~size`` is accepted as well as DHIS2's ``a~size[b]``.
            transformers += self.transformers()
        return _RawField(name, exclude, children, transformers)

    def transformers(self) -> list[tuple[str, tuple[str, ...]]]:
        out: list[tuple[str, tuple[str, ...]]] = []
        while True:
            self.ws()
            if self.i < self.n and self.s[self.i] in "~|":
                self.i += 1
            elif self.s.startswith("::", self.i):
                self.i += 2
            else:
                return out
            self.ws()
            tname = self.name("transformer")
            params: tuple[str, ...] = ()
            self.ws()
            if self.i < self.n and self.s[self.i] == "(":
                self.i += 1
                start = self.i
                while self.i < self.n and self.s[self.i] not in _PARAM_STOP:
                    self.i += 1
                if self.i >= self.n or self.s[self.i] != ")":
                    raise self.fail(f"unterminated parameters of transformer '{tname}'")
                params = tuple(p.strip() for p in self.s[start:self.i].split(";"))
                self.i += 1
            out.append((tname, params))


def _compile_transformers(raw: list[tuple[str, tuple[str, ...]]], field: str
                          ) -> tuple[Transformer, ...]:
    out: list[Transformer] = []
    for tname, params in raw:
        canonical = _TRANSFORMERS.get(tname.lower())
        if canonical is None:
            continue  # DHIS2 ignores transformers it does not know
        if canonical == "rename" and (len(params) != 1 or not params[0]):
            raise BadRequest(f"Invalid field filter: `{field}~rename(...)` needs exactly one "
                             "new name, e.g. `name~rename(title)`")
        out.append(Transformer(canonical, tuple(p for p in params if p)))
    return tuple(out)


def _compile(items: list[_RawItem]) -> FieldSpec:
    # Repeated mentions of one field merge (``group[id],group[name]`` = ``group[id,name]``).
    order: dict[str, tuple[list[_RawItem] | None, list[Transformer]]] = {}
    presets: list[str] = []
    excludes: set[str] = set()
    for item in items:
        if isinstance(item, _RawPreset):
            canonical = _PRESETS.get(item.name.lower())
            if canonical is not None:
                presets.append(canonical)
            continue
        if item.exclude:
            # DHIS2 drops the whole property for ``!a[...]``; nested exclusion is ``a[!b]``.
            excludes.add(item.name)
            continue
        ts = list(_compile_transformers(item.transformers, item.name))
        prev = order.get(item.name)
        if prev is None:
            order[item.name] = (list(item.children) if item.children else None, ts)
        else:
            kids, prev_ts = prev
            if item.children:
                kids = (kids or []) + item.children
            order[item.name] = (kids, ts or prev_ts)
    fields = [Field(name, _compile(kids) if kids else None, tuple(ts))
              for name, (kids, ts) in order.items()]
    return FieldSpec(fields, presets, frozenset(excludes))


@lru_cache(maxsize=512)
def _parse_cached(expr: str) -> FieldSpec:
    return _compile(_Parser(expr).parse())


def parse_fields(expr: str | None, default: str = DEFAULT_FIELDS) -> FieldSpec:
    """Parse a ``fields=`` expression; ``None``/blank means ``default``.

    Raises :class:`BadRequest` for malformed input (unbalanced or mismatched brackets,
    stray characters, ``rename`` without a name...).
    """
    if expr is not None and not isinstance(expr, str):
        raise BadRequest("Invalid field filter: expected a string")
    if expr is None or not expr.strip():
        expr = default
    return _parse_cached(expr)


# ---------------------------------------------------------------------------------------------
# Projection


def _preset_items(obj: Mapping[str, object], presets: tuple[str, ...]
                  ) -> list[tuple[str, object]]:
    out: dict[str, object] = {}
    for preset in presets:
        fixed = _FIXED_PRESETS.get(preset)
        if fixed is not None:
            for key in fixed:
                if key not in out:
                    value = get_prop(obj, key)
                    if value is not None:
                        out[key] = value
        elif preset == "all":
            for key, value in obj.items():
                if value is not None:
                    out[key] = value
            # DHIS2 renders display* next to their base property; add them when not stored.
            for key, sources in _DISPLAY_FALLBACK.items():
                if key not in out:
                    value = obj.get(sources[0])
                    if value is not None:
                        out[key] = value
            loc = DISPLAY_LOCALE.get()
            if loc is not None and obj.get("translations"):
                for key in _TRANSLATED:
                    text = translated(obj, key, loc)
                    if text is not None:
                        out[key] = text
        elif preset == "simple":
            for key, value in obj.items():
                if value is not None and not isinstance(value, (Mapping, list)):
                    out[key] = value
        else:  # owner / persisted: the document's own stored properties
            for key, value in obj.items():
                if value is not None and key not in _NON_OWNER:
                    out[key] = value
    return list(out.items())


def _resolve(obj: Mapping[str, object], spec: FieldSpec, lookup: Lookup | None
             ) -> Mapping[str, object]:
    """Merge the full document over a ``{"id"}`` reference stub when ``spec`` needs it."""
    if lookup is None or spec.satisfied_by(obj):
        return obj
    uid = obj.get("id")
    if not isinstance(uid, str):
        return obj
    full = lookup(uid)
    if full is None:
        return obj  # dangling reference: show what we have
    return full if len(obj) == 1 else {**obj, **full}


def _project_value(value: object, spec: FieldSpec, lookup: Lookup | None) -> object:
    if isinstance(value, Mapping):
        return project(_resolve(value, spec, lookup), spec, lookup)
    if isinstance(value, list):
        return [project(_resolve(v, spec, lookup), spec, lookup) if isinstance(v, Mapping) else v
                for v in value]
    return value  # a scalar has no sub-fields: DHIS2 shows it as is


def _pluck_one(item: object, key: str, lookup: Lookup | None) -> object:
    if not isinstance(item, Mapping):
        return item
    value = get_prop(item, key)
    if value is None and lookup is not None and isinstance(item.get("id"), str):
        full = lookup(item["id"])  # type: ignore[arg-type]
        if full is not None:
            value = get_prop(full, key)
    return item if value is None else value


def _apply(t: Transformer, value: object, lookup: Lookup | None) -> object:
    name = t.name
    if name == "size":
        if isinstance(value, (list, str, Mapping)):
            return len(value)
        return value
    if name == "isEmpty":
        return len(value) == 0 if isinstance(value, list) else value
    if name == "isNotEmpty":
        return len(value) > 0 if isinstance(value, list) else value
    if name == "pluck":
        key = t.params[0] if t.params else "id"
        if isinstance(value, list):
            return [_pluck_one(v, key, lookup) for v in value]
        return value
    if name == "keyBy":
        key = t.params[0] if t.params else "id"
        if isinstance(value, list):
            keyed: dict[str, object] = {}
            for v in value:
                k = get_prop(v, key) if isinstance(v, Mapping) else None
                if k is not None and not isinstance(k, (Mapping, list)):
                    keyed[str(k)] = v
            return keyed
        return value
    return value


def project(obj: Mapping[str, object], spec: FieldSpec, lookup: Lookup | None = None
            ) -> dict[str, object]:
    """Project one document through ``spec``.

    Missing and null properties are omitted (DHIS2 never renders nulls). Values are not
    copied: the result may share nested lists/dicts with ``obj``, so treat it as read-only.
    """
    out: dict[str, object] = {}
    if spec.presets:
        excludes = spec.excludes
        for key, value in _preset_items(obj, spec.presets):
            if key not in excludes:
                out[key] = value
    for f in spec.fields:
        value = get_prop(obj, f.name)
        if value is None:
            continue
        if f.children is not None:
            value = _project_value(value, f.children, lookup)
        key = f.name
        for t in f.transformers:
            if t.name == "rename":
                key = t.params[0]
            else:
                value = _apply(t, value, lookup)
        if key != f.name:
            out.pop(f.name, None)  # renamed: do not also keep the preset's copy
        out[key] = value
    return out


def project_all(objs: Sequence[Mapping[str, object]], spec: FieldSpec,
                lookup: Lookup | None = None) -> list[dict[str, object]]:
    return [project(o, spec, lookup) for o in objs]
