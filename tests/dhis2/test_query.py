"""DHIS2 metadata query language over in-memory documents: fields, filters, order, paging.

The documents are small DHIS2-shaped fixtures (after the SDK's category_combos.json,
organisation_units.json, data_sets.json and user_role.json): references are {"id"} stubs
that a lookup callback resolves.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import pytest

from appliance.dhis2.fields import DISPLAY_LOCALE
from appliance.dhis2.query import (
    FieldSpec,
    OrderKey,
    Predicate,
    paginate,
    parse_fields,
    parse_filters,
    parse_order,
    project,
    project_all,
    sort,
)
from appliance.errors import BadRequest

Doc = dict[str, object]

# ---------------------------------------------------------------------------------------------
# Fixtures

CATEGORY_COMBOS: list[Doc] = [
    {
        "id": "m2jTvAj5kkm",
        "code": "BIRTHS",
        "name": "Births",
        "displayName": "Births",
        "created": "2011-12-24T12:24:25.203",
        "lastUpdated": "2016-04-18T16:04:34.745",
        "isDefault": False,
        "dataDimensionType": "DISAGGREGATION",
        "categories": [{"id": "KfdsGBcoiCa"}, {"id": "cX5k9anHEHd"}],
        "access": {"read": True, "data": {"read": True, "write": True}},
    },
    {
        "id": "p0KPaWEg3cf",
        "name": "default",
        "created": "2011-12-24T12:24:25.203",
        "lastUpdated": "2016-04-12T20:37:49.126",
        "isDefault": True,
        "dataDimensionType": "DISAGGREGATION",
        "categories": [{"id": "vGs6omsRekv"}],
    },
]

CATEGORIES: list[Doc] = [
    {"id": "KfdsGBcoiCa", "name": "Births attended by", "code": "BIRTHS_ATTENDED",
     "shortName": "Births attended", "categoryOptions": [{"id": "uZUnebiT5DI"}]},
    {"id": "cX5k9anHEHd", "name": "Gender", "shortName": "Gender",
     "categoryOptions": [{"id": "Fp4gVHbRvEV"}, {"id": "as6ygGvUGNg"}]},
    {"id": "vGs6omsRekv", "name": "default", "shortName": "default", "categoryOptions": []},
]

ORG_UNITS: list[Doc] = [
    {"id": "ImspTQPwCqd", "code": "OU_525", "name": "Sierra Leone", "shortName": "Sierra Leone",
     "level": 1, "path": "/ImspTQPwCqd", "openingDate": "1994-01-01T00:00:00.000",
     "dataSets": [], "programs": []},
    {"id": "O6uvpzGd5pu", "code": "OU_264", "name": "Bo", "shortName": "Bo", "level": 2,
     "path": "/ImspTQPwCqd/O6uvpzGd5pu", "parent": {"id": "ImspTQPwCqd"},
     "openingDate": "1970-01-01T00:00:00.000", "dataSets": [{"id": "lyLU2wR22tC"}]},
    {"id": "YuQRtpLP10I", "code": "OU_539", "name": "Badjia", "shortName": "Badjia", "level": 3,
     "path": "/ImspTQPwCqd/O6uvpzGd5pu/YuQRtpLP10I", "parent": {"id": "O6uvpzGd5pu"},
     "openingDate": "1970-01-01T00:00:00.000", "dataSets": [], "programs": [],
     "geometry": {"type": "Point", "coordinates": [-11.618041992187502, 9.508486893003065]}},
    {"id": "DiszpKrYNg8", "code": "OU_559", "name": "Ngelehun CHC", "shortName": "Ngelehun CHC",
     "displayName": "Ngelehun CHC", "level": 4,
     "path": "/ImspTQPwCqd/O6uvpzGd5pu/YuQRtpLP10I/DiszpKrYNg8", "parent": {"id": "YuQRtpLP10I"},
     "openingDate": "1968-01-01T00:00:00.000", "closedDate": "2025-05-22T15:21:48.516",
     "dataSets": [{"id": "lyLU2wR22tC"}, {"id": "BfMAe6Itzgt"}],
     "programs": [{"id": "lxAQ7Zs9VYR"}, {"id": "IpHINAT79UW"}, {"id": "TpRIN3TE9UW"}],
     "comment": None},
]

DATA_SETS: list[Doc] = [
    {"id": "lyLU2wR22tC", "code": "DS_394131", "name": "ART monthly summary",
     "shortName": "ART 2010", "periodType": "Monthly", "expiryDays": 1, "timelyDays": 3.5,
     "categoryCombo": {"id": "p0KPaWEg3cf"},
     "dataSetElements": [
         {"dataSet": {"id": "lyLU2wR22tC"}, "dataElement": {"id": "g9eOBujte1U"},
          "categoryCombo": {"id": "m2jTvAj5kkm"}},
         {"dataSet": {"id": "lyLU2wR22tC"}, "dataElement": {"id": "bx6fsa0t90x"}},
     ],
     "access": {"read": True, "data": {"read": True, "write": True}}},
    {"id": "BfMAe6Itzgt", "name": "Child Health", "shortName": "Child Health",
     "periodType": "Monthly", "categoryCombo": {"id": "p0KPaWEg3cf"}, "dataSetElements": [],
     "access": {"read": True, "data": {"read": False, "write": False}}},
]

DATA_ELEMENTS: list[Doc] = [
    {"id": "g9eOBujte1U", "name": "Live births", "shortName": "Live births",
     "valueType": "NUMBER", "categoryCombo": {"id": "m2jTvAj5kkm"}},
    {"id": "bx6fsa0t90x", "name": "ART enrolled", "shortName": "ART enrolled",
     "valueType": "INTEGER_ZERO_OR_POSITIVE", "categoryCombo": {"id": "p0KPaWEg3cf"}},
]

USER_ROLES: list[Doc] = [
    {"id": "Ufph3mGRmMo", "name": "Superuser", "authorities": ["ALL"]},
    {"id": "Euq3XfEIEbx", "name": "Data entry clerk",
     "authorities": ["F_DATAVALUE_ADD", "M_dhis-web-dataentry"]},
]

USERS: list[Doc] = [
    {"id": "xE7jOejl9FI", "username": "admin", "name": "John Traore",
     "userRoles": [{"id": "Ufph3mGRmMo"}], "organisationUnits": [{"id": "ImspTQPwCqd"}]},
    {"id": "DXyJmlo9rge", "username": "chcp", "name": "Ruma Akter",
     "userRoles": [{"id": "Euq3XfEIEbx"}], "organisationUnits": [{"id": "DiszpKrYNg8"}]},
]

ALL_DOCS = [*CATEGORY_COMBOS, *CATEGORIES, *ORG_UNITS, *DATA_SETS, *DATA_ELEMENTS, *USER_ROLES,
            *USERS]
INDEX: dict[str, Doc] = {d["id"]: d for d in ALL_DOCS}  # type: ignore[misc]


def lookup(uid: str) -> Mapping[str, object] | None:
    return INDEX.get(uid)


def by_id(uid: str) -> Doc:
    return INDEX[uid]


def fields(doc: Mapping[str, object], expr: str | None, with_lookup: bool = True) -> dict:
    return project(doc, parse_fields(expr), lookup if with_lookup else None)


def ids(docs: Sequence[Mapping[str, object]], *filters: str, junction: str = "AND"
        ) -> list[str]:
    pred = parse_filters(list(filters), junction)
    return [str(d["id"]) for d in docs if pred(d, lookup)]


# ---------------------------------------------------------------------------------------------
# fields=: plain, default, missing


def test_default_fields_are_id_and_display_name() -> None:
    assert fields(by_id("DiszpKrYNg8"), None) == {"id": "DiszpKrYNg8",
                                                  "displayName": "Ngelehun CHC"}
    assert fields(by_id("DiszpKrYNg8"), "  ") == fields(by_id("DiszpKrYNg8"), None)
    # a caller may choose another default, e.g. `*` for a single object
    assert parse_fields(None, default="*") == parse_fields("*")


def test_display_name_falls_back_to_name() -> None:
    # DHIS2 computes displayName from the (translated) name; Bo stores no displayName.
    assert fields(by_id("O6uvpzGd5pu"), "displayName,displayShortName") == {
        "displayName": "Bo", "displayShortName": "Bo"}


def test_plain_fields_in_request_order_and_missing_or_null_omitted() -> None:
    out = fields(by_id("DiszpKrYNg8"), "level,name,nonexistent,comment,id")
    assert out == {"level": 4, "name": "Ngelehun CHC", "id": "DiszpKrYNg8"}
    assert list(out) == ["level", "name", "id"]


def test_whitespace_and_empty_items_are_tolerated() -> None:
    assert fields(by_id("O6uvpzGd5pu"), " id , name ,, level, ") == {
        "id": "O6uvpzGd5pu", "name": "Bo", "level": 2}
    assert fields(by_id("O6uvpzGd5pu"), "parent [ id , name ]")["parent"] == {
        "id": "ImspTQPwCqd", "name": "Sierra Leone"}


def test_reference_without_nested_spec_is_returned_as_stored() -> None:
    out = fields(by_id("DiszpKrYNg8"), "parent,dataSets")
    assert out == {"parent": {"id": "YuQRtpLP10I"},
                   "dataSets": [{"id": "lyLU2wR22tC"}, {"id": "BfMAe6Itzgt"}]}


# ---------------------------------------------------------------------------------------------
# fields=: nesting and reference resolution


def test_nested_reference_resolves_through_lookup() -> None:
    out = fields(by_id("lyLU2wR22tC"), "id,categoryCombo[id,name,isDefault]")
    assert out == {"id": "lyLU2wR22tC",
                   "categoryCombo": {"id": "p0KPaWEg3cf", "name": "default", "isDefault": True}}


def test_nested_reference_of_only_id_needs_no_lookup() -> None:
    calls: list[str] = []

    def counting(uid: str) -> Mapping[str, object] | None:
        calls.append(uid)
        return lookup(uid)

    spec = parse_fields("parent[id],dataSets[id]")
    assert project(by_id("DiszpKrYNg8"), spec, counting) == {
        "parent": {"id": "YuQRtpLP10I"},
        "dataSets": [{"id": "lyLU2wR22tC"}, {"id": "BfMAe6Itzgt"}]}
    assert calls == []


def test_nested_reference_without_lookup_shows_the_stub_only() -> None:
    assert fields(by_id("lyLU2wR22tC"), "categoryCombo[id,name]", with_lookup=False) == {
        "categoryCombo": {"id": "p0KPaWEg3cf"}}


def test_dangling_reference_shows_what_is_stored() -> None:
    doc = {"id": "a1234567890", "parent": {"id": "nothere0000"}}
    assert fields(doc, "parent[id,name]") == {"parent": {"id": "nothere0000"}}


def test_list_of_references_resolves_each_element() -> None:
    out = fields(by_id("m2jTvAj5kkm"), "categories[id,name,categoryOptions]")
    assert out == {"categories": [
        {"id": "KfdsGBcoiCa", "name": "Births attended by",
         "categoryOptions": [{"id": "uZUnebiT5DI"}]},
        {"id": "cX5k9anHEHd", "name": "Gender",
         "categoryOptions": [{"id": "Fp4gVHbRvEV"}, {"id": "as6ygGvUGNg"}]},
    ]}


def test_references_inside_embedded_objects_inside_lists() -> None:
    out = fields(by_id("lyLU2wR22tC"), "dataSetElements[dataElement[id,valueType]]")
    assert out == {"dataSetElements": [
        {"dataElement": {"id": "g9eOBujte1U", "valueType": "NUMBER"}},
        {"dataElement": {"id": "bx6fsa0t90x", "valueType": "INTEGER_ZERO_OR_POSITIVE"}},
    ]}


def test_deep_nesting_through_several_lookups() -> None:
    out = fields(by_id("lyLU2wR22tC"),
                 "dataSetElements[dataElement[categoryCombo[categories[name]]]]")
    first = out["dataSetElements"][0]["dataElement"]["categoryCombo"]["categories"]
    assert first == [{"name": "Births attended by"}, {"name": "Gender"}]


def test_parentheses_nest_like_brackets() -> None:
    assert fields(by_id("lyLU2wR22tC"), "dataSetElements(dataElement(id,valueType))") == \
        fields(by_id("lyLU2wR22tC"), "dataSetElements[dataElement[id,valueType]]")


def test_parent_chain() -> None:
    out = fields(by_id("DiszpKrYNg8"), "id,parent[id,name,parent[id,name,level]]")
    assert out["parent"] == {"id": "YuQRtpLP10I", "name": "Badjia",
                             "parent": {"id": "O6uvpzGd5pu", "name": "Bo", "level": 2}}


def test_repeated_nested_field_merges() -> None:
    assert fields(by_id("O6uvpzGd5pu"), "parent[id],parent[name],parent") == {
        "parent": {"id": "ImspTQPwCqd", "name": "Sierra Leone"}}


def test_nested_spec_on_embedded_object_and_scalar() -> None:
    doc = by_id("lyLU2wR22tC")
    assert fields(doc, "access[data[read]]") == {"access": {"data": {"read": True}}}
    # a scalar has no sub-fields: shown as is
    assert fields(doc, "name[id]") == {"name": "ART monthly summary"}


def test_stub_with_embedded_properties_is_merged_under_the_full_document() -> None:
    doc = {"id": "x0000000001", "categoryCombo": {"id": "m2jTvAj5kkm", "extra": 1}}
    assert fields(doc, "categoryCombo[id,name,extra]") == {
        "categoryCombo": {"id": "m2jTvAj5kkm", "name": "Births", "extra": 1}}


def test_a_stub_with_a_name_resolves_to_the_translated_display_name() -> None:
    # /api/me's org units are stubs with a name; in a language, displayName is the
    # document's translation, not the stub's name
    full = {"id": "ou000000001", "name": "Ramu UHC", "translations": [
        {"property": "NAME", "locale": "bn", "value": "রামু উপজেলা স্বাস্থ্য কমপ্লেক্স"}]}
    prog = {"id": "pr000000001", "incidentDateLabel": "Date of birth", "translations": [
        {"property": "INCIDENT_DATE_LABEL", "locale": "bn", "value": "জন্ম তারিখ"}]}
    index = {d["id"]: d for d in (full, prog)}
    doc = {"organisationUnits": [{"id": "ou000000001", "name": "Ramu UHC"}],
           "program": {"id": "pr000000001"}}
    spec = parse_fields("organisationUnits[displayName~rename(name)],program[displayIncidentDateLabel]")
    assert project(doc, spec, index.get) == {"organisationUnits": [{"name": "Ramu UHC"}],
                                             "program": {"displayIncidentDateLabel": "Date of birth"}}
    token = DISPLAY_LOCALE.set("bn")
    try:
        assert project(doc, spec, index.get) == {
            "organisationUnits": [{"name": "রামু উপজেলা স্বাস্থ্য কমপ্লেক্স"}],
            "program": {"displayIncidentDateLabel": "জন্ম তারিখ"}}
        # a stub whose document is not in the index shows what it has
        assert project({"organisationUnits": [{"id": "ou000000009", "name": "Ukhia UHC"}]},
                       spec, index.get) == {"organisationUnits": [{"name": "Ukhia UHC"}]}
    finally:
        DISPLAY_LOCALE.reset(token)


# ---------------------------------------------------------------------------------------------
# fields=: presets and exclusion


def test_star_returns_every_stored_property_references_as_stored() -> None:
    doc = by_id("YuQRtpLP10I")
    out = fields(doc, "*")
    assert out == {**{k: v for k, v in doc.items() if v is not None}, "displayName": "Badjia",
                   "displayShortName": "Badjia"}
    assert out["parent"] == {"id": "O6uvpzGd5pu"}
    assert fields(doc, ":all") == out


def test_star_omits_nulls() -> None:
    assert "comment" not in fields(by_id("DiszpKrYNg8"), "*")


def test_star_inside_nested_spec_expands_through_lookup() -> None:
    out = fields(by_id("DiszpKrYNg8"), "id,parent[*]")
    assert out["parent"]["name"] == "Badjia"
    assert out["parent"]["parent"] == {"id": "O6uvpzGd5pu"}  # one level only
    assert out["parent"]["geometry"]["type"] == "Point"


def test_star_with_exclusions_in_any_order() -> None:
    doc = by_id("DiszpKrYNg8")
    a = fields(doc, "*,!dataSets,!programs,!code")
    assert {"dataSets", "programs", "code"}.isdisjoint(a)
    assert a["name"] == "Ngelehun CHC"
    assert fields(doc, "!dataSets,!programs,!code,*") == a


def test_exclusion_wins_over_explicit_inclusion() -> None:
    assert fields(by_id("O6uvpzGd5pu"), "id,name,!name") == {"id": "O6uvpzGd5pu"}
    assert fields(by_id("O6uvpzGd5pu"), "!name,name,id") == {"id": "O6uvpzGd5pu"}


def test_nested_exclusion() -> None:
    out = fields(by_id("DiszpKrYNg8"), "id,parent[*,!geometry,!path,!parent]")
    assert "geometry" not in out["parent"] and "path" not in out["parent"]
    assert out["parent"]["name"] == "Badjia"


def test_excluding_a_block_drops_the_whole_property() -> None:
    # DHIS2 reads `!a[b]` as "exclude a"; nested exclusion is written `a[!b]`.
    assert fields(by_id("DiszpKrYNg8"), "*,!parent[name]").get("parent") is None
    assert fields(by_id("DiszpKrYNg8"), "id,parent[id,name],!parent[name]") == {
        "id": "DiszpKrYNg8"}


def test_star_with_nested_override() -> None:
    out = fields(by_id("lyLU2wR22tC"), "*,categoryCombo[name]")
    assert out["categoryCombo"] == {"name": "default"}
    assert out["periodType"] == "Monthly"


def test_owner_preset_skips_computed_properties() -> None:
    doc = by_id("m2jTvAj5kkm")
    out = fields(doc, ":owner")
    assert "access" not in out and "displayName" not in out
    assert out["categories"] == [{"id": "KfdsGBcoiCa"}, {"id": "cX5k9anHEHd"}]
    assert out["code"] == "BIRTHS" and out["isDefault"] is False
    assert fields(doc, ":persisted") == out
    assert fields(doc, ":owner,!code").get("code") is None


def test_owner_keeps_stored_display_settings() -> None:
    doc = {"id": "x0000000001", "name": "Form 1", "displayName": "Form 1",
           "displayOptions": "{}", "displayInList": True}
    assert fields(doc, ":owner") == {"id": "x0000000001", "name": "Form 1",
                                     "displayOptions": "{}", "displayInList": True}


def test_identifiable_and_nameable_presets() -> None:
    doc = by_id("KfdsGBcoiCa")
    assert fields(doc, ":identifiable") == {
        "id": "KfdsGBcoiCa", "name": "Births attended by", "displayName": "Births attended by",
        "code": "BIRTHS_ATTENDED"}
    assert fields(doc, ":nameable") == {
        **fields(doc, ":identifiable"), "shortName": "Births attended",
        "displayShortName": "Births attended"}
    # timestamps are part of identifiable when present
    assert fields(by_id("m2jTvAj5kkm"), ":identifiable")["lastUpdated"] == \
        "2016-04-18T16:04:34.745"


def test_simple_id_and_idname_presets() -> None:
    doc = by_id("DiszpKrYNg8")
    simple = fields(doc, ":simple")
    assert simple["level"] == 4 and "parent" not in simple and "dataSets" not in simple
    assert fields(doc, ":id") == {"id": "DiszpKrYNg8"}
    assert fields(doc, ":idName") == {"id": "DiszpKrYNg8", "displayName": "Ngelehun CHC"}


def test_unknown_preset_is_ignored_like_dhis2() -> None:
    assert fields(by_id("O6uvpzGd5pu"), "id,:nosuchpreset") == {"id": "O6uvpzGd5pu"}


def test_presets_are_case_insensitive() -> None:
    assert fields(by_id("O6uvpzGd5pu"), ":IDNAME") == {"id": "O6uvpzGd5pu", "displayName": "Bo"}


# ---------------------------------------------------------------------------------------------
# fields=: transformers


def test_rename() -> None:
    assert fields(by_id("O6uvpzGd5pu"), "id~rename(uid),name~rename(title)") == {
        "uid": "O6uvpzGd5pu", "title": "Bo"}


def test_rename_a_nested_block_and_inside_it() -> None:
    out = fields(by_id("O6uvpzGd5pu"), "parent~rename(p)[name~rename(n)]")
    assert out == {"p": {"n": "Sierra Leone"}}
    assert fields(by_id("O6uvpzGd5pu"), "parent[name]~rename(p)") == out | {
        "p": {"name": "Sierra Leone"}}


def test_rename_replaces_the_preset_copy() -> None:
    out = fields(by_id("O6uvpzGd5pu"), "*,name~rename(title)")
    assert out["title"] == "Bo" and "name" not in out


def test_size() -> None:
    doc = by_id("DiszpKrYNg8")
    assert fields(doc, "programs~size,dataSets~size,name~size,level~size") == {
        "programs": 3, "dataSets": 2, "name": 12, "level": 4}
    assert fields(by_id("YuQRtpLP10I"), "dataSets~size") == {"dataSets": 0}


def test_is_empty_and_is_not_empty() -> None:
    assert fields(by_id("YuQRtpLP10I"), "dataSets~isEmpty,programs~isNotEmpty") == {
        "dataSets": True, "programs": False}
    assert fields(by_id("DiszpKrYNg8"), "dataSets~isEmpty,programs~isNotEmpty") == {
        "dataSets": False, "programs": True}
    # only collections are transformed; a missing property stays missing
    assert fields(by_id("YuQRtpLP10I"), "name~isEmpty,nothing~isEmpty") == {"name": "Badjia"}


def test_pluck_defaults_to_id_and_resolves_other_properties() -> None:
    doc = by_id("DiszpKrYNg8")
    assert fields(doc, "dataSets~pluck") == {"dataSets": ["lyLU2wR22tC", "BfMAe6Itzgt"]}
    assert fields(doc, "dataSets~pluck(name)") == {
        "dataSets": ["ART monthly summary", "Child Health"]}
    assert fields(doc, "dataSets[id,code]~pluck(code)") == {
        "dataSets": ["DS_394131", {"id": "BfMAe6Itzgt"}]}  # no code: the element is kept


def test_key_by() -> None:
    out = fields(by_id("m2jTvAj5kkm"), "categories[id,name]~keyBy")
    assert out == {"categories": {"KfdsGBcoiCa": {"id": "KfdsGBcoiCa",
                                                  "name": "Births attended by"},
                                  "cX5k9anHEHd": {"id": "cX5k9anHEHd", "name": "Gender"}}}


def test_transformer_syntax_variants_and_chains() -> None:
    doc = by_id("DiszpKrYNg8")
    for expr in ("programs~size~rename(n)", "programs::size::rename(n)",
                 "programs|size|rename(n)", "programs~size::rename(n)"):
        assert fields(doc, expr) == {"n": 3}, expr


def test_unknown_transformer_is_ignored_like_dhis2() -> None:
    assert fields(by_id("O6uvpzGd5pu"), "name~shout") == {"name": "Bo"}


def test_transformer_names_are_case_insensitive() -> None:
    assert fields(by_id("YuQRtpLP10I"), "dataSets~ISEMPTY") == {"dataSets": True}


# ---------------------------------------------------------------------------------------------
# fields=: spec object, purity, bulk


def test_parse_fields_is_cached_and_specs_compare_equal() -> None:
    a = parse_fields("id,parent[id,name]")
    assert a is parse_fields("id,parent[id,name]")
    assert a == parse_fields("id , parent(id,name)")
    assert isinstance(a, FieldSpec) and hash(a) == hash(parse_fields("id,parent(id,name)"))


def test_project_does_not_mutate_documents() -> None:
    before = copy.deepcopy(ALL_DOCS)
    for doc in ALL_DOCS:
        fields(doc, "*,parent[*],dataSets~pluck(name),categories[id]~keyBy,name~rename(n)")
        fields(doc, ":owner,dataSetElements[dataElement[*]]")
    assert before == ALL_DOCS


def test_project_all() -> None:
    assert project_all(ORG_UNITS[:2], parse_fields("id,level")) == [
        {"id": "ImspTQPwCqd", "level": 1}, {"id": "O6uvpzGd5pu", "level": 2}]


BAD_FIELDS = [
    "id[", "id]", "id)", "a[b", "a[b]]", "a[b)", "a(b]", "a[b[c]", "[id]", "(id)", "!", "! ",
    "!*", "!:owner", ":", "::", ":owner[id]", "*[id]", "*~size", "id name", "id.name", "a-b",
    "a~", "a~~size", "a~rename", "a~rename()", "a~rename(x;y)", "a~pluck(x", "a~pluck(x]",
    "a:b", "a;b", "a[b]c", "a]b[", "a[" * 40 + "b" + "]" * 40, "name%", "id,name}",
]


@pytest.mark.parametrize("expr", BAD_FIELDS)
def test_malformed_fields_raise_bad_request(expr: str) -> None:
    with pytest.raises(BadRequest) as err:
        parse_fields(expr)
    assert "Invalid field filter" in err.value.message
    assert err.value.http_status == 400


def test_reasonable_nesting_depth_is_fine() -> None:
    parse_fields("a[" * 20 + "b" + "]" * 20)


# ---------------------------------------------------------------------------------------------
# filter=: operators


def test_eq_on_strings_booleans_numbers() -> None:
    assert ids(ORG_UNITS, "name:eq:Bo") == ["O6uvpzGd5pu"]
    assert ids(ORG_UNITS, "name:eq:bo") == []
    assert ids(CATEGORY_COMBOS, "isDefault:eq:true") == ["p0KPaWEg3cf"]
    assert ids(CATEGORY_COMBOS, "isDefault:eq:false") == ["m2jTvAj5kkm"]
    assert ids(CATEGORY_COMBOS, "isDefault:eq:TRUE") == ["p0KPaWEg3cf"]
    assert ids(ORG_UNITS, "level:eq:3") == ["YuQRtpLP10I"]
    assert ids(ORG_UNITS, "level:eq:3.0") == ["YuQRtpLP10I"]
    assert ids(DATA_SETS, "timelyDays:eq:3.5") == ["lyLU2wR22tC"]


def test_eq_type_mismatch_is_no_match_not_an_error() -> None:
    assert ids(ORG_UNITS, "level:eq:abc") == []
    assert ids(CATEGORY_COMBOS, "isDefault:eq:yes") == []


def test_eq_on_collections_compares_size_or_items() -> None:
    # DHIS2 compares a collection's size with an integer argument ...
    assert ids(ORG_UNITS, "dataSets:eq:2") == ["DiszpKrYNg8"]
    assert ids(ORG_UNITS, "dataSets:eq:0") == ["ImspTQPwCqd", "YuQRtpLP10I"]
    # ... and otherwise an item (strings, or references by id)
    assert ids(USER_ROLES, "authorities:eq:ALL") == ["Ufph3mGRmMo"]
    assert ids(ORG_UNITS, "dataSets:eq:BfMAe6Itzgt") == ["DiszpKrYNg8"]


def test_eq_on_a_reference_compares_its_id() -> None:
    assert ids(ORG_UNITS, "parent:eq:O6uvpzGd5pu") == ["YuQRtpLP10I"]


@pytest.mark.parametrize("op", ["!eq", "ne", "neq"])
def test_not_equal_is_the_complement_of_eq(op: str) -> None:
    assert ids(ORG_UNITS, f"name:{op}:Bo") == ["ImspTQPwCqd", "YuQRtpLP10I", "DiszpKrYNg8"]
    # a missing value is "not equal"
    assert ids(ORG_UNITS, f"closedDate:{op}:x") == ["ImspTQPwCqd", "O6uvpzGd5pu",
                                                    "YuQRtpLP10I", "DiszpKrYNg8"]
    assert ids(CATEGORY_COMBOS, f"isDefault:{op}:true") == ["m2jTvAj5kkm"]


def test_ieq() -> None:
    assert ids(ORG_UNITS, "name:ieq:NGELEHUN chc") == ["DiszpKrYNg8"]
    assert ids(ORG_UNITS, "name:!ieq:NGELEHUN chc") == ["ImspTQPwCqd", "O6uvpzGd5pu",
                                                        "YuQRtpLP10I"]


@pytest.mark.parametrize(("op", "arg", "expected"), [
    ("like", "CHC", ["DiszpKrYNg8"]),
    ("like", "chc", []),
    ("like", "e", ["ImspTQPwCqd", "DiszpKrYNg8"]),
    ("!like", "CHC", ["ImspTQPwCqd", "O6uvpzGd5pu", "YuQRtpLP10I"]),
    ("$like", "Ngel", ["DiszpKrYNg8"]),
    ("$like", "ngel", []),
    ("$like", "CHC", []),
    ("!$like", "B", ["ImspTQPwCqd", "DiszpKrYNg8"]),
    ("like$", "CHC", ["DiszpKrYNg8"]),
    ("like$", "chc", []),
    ("!like$", "a", ["ImspTQPwCqd", "O6uvpzGd5pu", "DiszpKrYNg8"]),
    ("ilike", "chc", ["DiszpKrYNg8"]),
    ("ilike", "LEONE", ["ImspTQPwCqd"]),
    ("!ilike", "chc", ["ImspTQPwCqd", "O6uvpzGd5pu", "YuQRtpLP10I"]),
    ("$ilike", "bAD", ["YuQRtpLP10I"]),
    ("startsWith", "bAD", ["YuQRtpLP10I"]),
    ("!$ilike", "b", ["ImspTQPwCqd", "DiszpKrYNg8"]),
    ("ilike$", "JIA", ["YuQRtpLP10I"]),
    ("endsWith", "JIA", ["YuQRtpLP10I"]),
    ("!ilike$", "JIA", ["ImspTQPwCqd", "O6uvpzGd5pu", "DiszpKrYNg8"]),
])
def test_like_family(op: str, arg: str, expected: list[str]) -> None:
    assert ids(ORG_UNITS, f"name:{op}:{arg}") == expected


def test_like_is_literal_and_skips_non_strings() -> None:
    assert ids(ORG_UNITS, "name:like:%") == []
    assert ids(ORG_UNITS, "level:like:1") == []  # numbers are not strings


def test_in_and_not_in() -> None:
    assert ids(ORG_UNITS, "id:in:[O6uvpzGd5pu,DiszpKrYNg8]") == ["O6uvpzGd5pu", "DiszpKrYNg8"]
    assert ids(ORG_UNITS, "id:in:O6uvpzGd5pu") == ["O6uvpzGd5pu"]  # brackets are optional
    assert ids(ORG_UNITS, "id:in:[ O6uvpzGd5pu , x ]") == ["O6uvpzGd5pu"]
    assert ids(ORG_UNITS, "id:!in:[O6uvpzGd5pu,DiszpKrYNg8]") == ["ImspTQPwCqd", "YuQRtpLP10I"]
    assert ids(ORG_UNITS, "level:in:[1,4]") == ["ImspTQPwCqd", "DiszpKrYNg8"]
    assert ids(CATEGORY_COMBOS, "isDefault:in:[true]") == ["p0KPaWEg3cf"]
    assert ids(ORG_UNITS, "closedDate:!in:[x]") == ["ImspTQPwCqd", "O6uvpzGd5pu", "YuQRtpLP10I",
                                                    "DiszpKrYNg8"]


def test_null_and_not_null() -> None:
    assert ids(ORG_UNITS, "parent:null") == ["ImspTQPwCqd"]
    assert ids(ORG_UNITS, "parent:!null") == ["O6uvpzGd5pu", "YuQRtpLP10I", "DiszpKrYNg8"]
    assert ids(ORG_UNITS, "comment:null") == ["ImspTQPwCqd", "O6uvpzGd5pu", "YuQRtpLP10I",
                                              "DiszpKrYNg8"]  # stored null == missing
    assert ids(ORG_UNITS, "closedDate:!null") == ["DiszpKrYNg8"]
    assert ids(ORG_UNITS, "parent:null:ignored") == ["ImspTQPwCqd"]  # a value is ignored


def test_empty_and_not_empty() -> None:
    # O6uvpzGd5pu has no `programs` key at all: missing counts as empty
    assert ids(ORG_UNITS, "programs:empty") == ["ImspTQPwCqd", "O6uvpzGd5pu", "YuQRtpLP10I"]
    assert ids(ORG_UNITS, "programs:!empty") == ["DiszpKrYNg8"]
    assert ids(ORG_UNITS, "dataSets:!empty") == ["O6uvpzGd5pu", "DiszpKrYNg8"]
    assert ids([{"id": "a", "code": ""}, {"id": "b", "code": "X"}], "code:empty") == ["a"]


@pytest.mark.parametrize(("flt", "expected"), [
    ("level:gt:2", ["YuQRtpLP10I", "DiszpKrYNg8"]),
    ("level:ge:2", ["O6uvpzGd5pu", "YuQRtpLP10I", "DiszpKrYNg8"]),
    ("level:gte:2", ["O6uvpzGd5pu", "YuQRtpLP10I", "DiszpKrYNg8"]),
    ("level:lt:2", ["ImspTQPwCqd"]),
    ("level:le:2", ["ImspTQPwCqd", "O6uvpzGd5pu"]),
    ("level:lte:2", ["ImspTQPwCqd", "O6uvpzGd5pu"]),
    ("level:le:3", ["ImspTQPwCqd", "O6uvpzGd5pu", "YuQRtpLP10I"]),
    ("level:gt:x", []),
    ("level:gt:1.5", ["O6uvpzGd5pu", "YuQRtpLP10I", "DiszpKrYNg8"]),
    # dates compare as dates, at any precision
    ("openingDate:lt:1970-01-01", ["DiszpKrYNg8"]),
    ("openingDate:ge:1970-01-01", ["ImspTQPwCqd", "O6uvpzGd5pu", "YuQRtpLP10I"]),
    ("openingDate:gt:1970-01-01T00:00:00Z", ["ImspTQPwCqd"]),
    ("closedDate:gt:2020", ["DiszpKrYNg8"]),  # not a date: string order
    # strings compare lexically
    ("name:gt:Bo", ["ImspTQPwCqd", "DiszpKrYNg8"]),
    # collections compare by size
    ("programs:gt:1", ["DiszpKrYNg8"]),
])
def test_comparisons(flt: str, expected: list[str]) -> None:
    assert ids(ORG_UNITS, flt) == expected


def test_comparisons_on_booleans() -> None:
    assert ids(CATEGORY_COMBOS, "isDefault:gt:false") == ["p0KPaWEg3cf"]


def test_token() -> None:
    assert ids(ORG_UNITS, "name:token:chc ngel") == ["DiszpKrYNg8"]
    assert ids(ORG_UNITS, "name:token:ngelehun hospital") == []
    assert ids(ORG_UNITS, "name:!token:chc ngel") == ["ImspTQPwCqd", "O6uvpzGd5pu",
                                                      "YuQRtpLP10I"]


def test_identifiable_token_searches_id_code_name_short_name() -> None:
    assert ids(ORG_UNITS, "identifiable:token:ou_539") == ["YuQRtpLP10I"]
    assert ids(ORG_UNITS, "identifiable:token:sierra") == ["ImspTQPwCqd"]
    assert ids(ORG_UNITS, "identifiable:token:DiszpKrYNg8") == ["DiszpKrYNg8"]
    assert ids(ORG_UNITS, "identifiable:eq:OU_264") == ["O6uvpzGd5pu"]
    assert ids(ORG_UNITS, "identifiable:!token:bo") == ["ImspTQPwCqd", "YuQRtpLP10I",
                                                        "DiszpKrYNg8"]


# ---------------------------------------------------------------------------------------------
# filter=: paths through objects, references and lists


def test_dotted_path_through_embedded_objects() -> None:
    assert ids(DATA_SETS, "access.data.read:eq:true") == ["lyLU2wR22tC"]
    assert ids(DATA_SETS, "access.data.read:eq:false") == ["BfMAe6Itzgt"]
    assert ids(CATEGORY_COMBOS, "access.data.read:eq:true") == ["m2jTvAj5kkm"]
    assert ids(CATEGORY_COMBOS, "access.data.read:null") == ["p0KPaWEg3cf"]


def test_path_through_a_reference_uses_lookup() -> None:
    assert ids(ORG_UNITS, "parent.id:eq:O6uvpzGd5pu") == ["YuQRtpLP10I"]
    assert ids(ORG_UNITS, "parent.name:eq:Bo") == ["YuQRtpLP10I"]
    assert ids(ORG_UNITS, "parent.parent.level:eq:1") == ["YuQRtpLP10I"]
    assert ids(DATA_ELEMENTS, "categoryCombo.isDefault:eq:true") == ["bx6fsa0t90x"]


def test_path_through_a_reference_without_lookup_sees_the_stub_only() -> None:
    pred = parse_filters(["parent.name:eq:Bo"])
    assert [d["id"] for d in ORG_UNITS if pred(d)] == []
    assert parse_filters(["parent.id:eq:O6uvpzGd5pu"])(by_id("YuQRtpLP10I"))


def test_path_through_lists_matches_any_element() -> None:
    assert ids(ORG_UNITS, "dataSets.id:eq:BfMAe6Itzgt") == ["DiszpKrYNg8"]
    assert ids(ORG_UNITS, "dataSets.id:in:[lyLU2wR22tC]") == ["O6uvpzGd5pu", "DiszpKrYNg8"]
    assert ids(USERS, "organisationUnits.path:like:YuQRtpLP10I") == ["DXyJmlo9rge"]
    assert ids(USERS, "organisationUnits.path:like:ImspTQPwCqd") == ["xE7jOejl9FI",
                                                                     "DXyJmlo9rge"]
    assert ids(USERS, "userRoles.authorities:in:[ALL]") == ["xE7jOejl9FI"]
    assert ids(USERS, "userRoles.authorities:in:[F_DATAVALUE_ADD,ALL]") == ["xE7jOejl9FI",
                                                                            "DXyJmlo9rge"]
    assert ids(DATA_SETS, "dataSetElements.dataElement.valueType:eq:NUMBER") == ["lyLU2wR22tC"]
    assert ids(CATEGORY_COMBOS, "categories.name:ilike:gender") == ["m2jTvAj5kkm"]


def test_negated_operator_through_a_list_means_no_element_matches() -> None:
    assert ids(ORG_UNITS, "dataSets.id:!eq:lyLU2wR22tC") == ["ImspTQPwCqd", "YuQRtpLP10I"]
    assert ids(USERS, "userRoles.authorities:!in:[ALL]") == ["DXyJmlo9rge"]


def test_null_and_empty_through_lists() -> None:
    assert ids(ORG_UNITS, "dataSets.id:null") == ["ImspTQPwCqd", "YuQRtpLP10I"]
    assert ids(ORG_UNITS, "dataSets.id:!null") == ["O6uvpzGd5pu", "DiszpKrYNg8"]


def test_path_stopping_at_a_scalar_is_missing() -> None:
    assert ids(ORG_UNITS, "name.foo:null") == [d["id"] for d in ORG_UNITS]
    assert ids(ORG_UNITS, "name.foo:eq:x") == []


def test_root_junction() -> None:
    assert ids(ORG_UNITS, "level:eq:1", "name:eq:Bo") == []
    assert ids(ORG_UNITS, "level:eq:1", "name:eq:Bo", junction="OR") == ["ImspTQPwCqd",
                                                                         "O6uvpzGd5pu"]
    assert ids(ORG_UNITS, "level:ge:2", "name:like:a") == ["YuQRtpLP10I"]
    assert ids(ORG_UNITS, "level:eq:1", junction="or") == ["ImspTQPwCqd"]


def test_no_filters_match_everything() -> None:
    pred = parse_filters([])
    assert isinstance(pred, Predicate) and pred.is_trivial
    assert all(pred(d) for d in ALL_DOCS)
    assert parse_filters(None).select(ORG_UNITS) == ORG_UNITS


def test_select_keeps_order_and_a_bare_string_is_one_filter() -> None:
    pred = parse_filters("level:ge:3")  # type: ignore[arg-type]
    assert pred.select(ORG_UNITS, lookup) == ORG_UNITS[2:]


def test_value_may_contain_colons() -> None:
    doc = {"id": "a", "lastUpdated": "2024-01-01T10:00:00.000"}
    assert ids([doc], "lastUpdated:eq:2024-01-01T10:00:00.000") == ["a"]
    assert ids([doc], "lastUpdated:gt:2024-01-01T09:59:59") == ["a"]


def test_extreme_dates_do_not_fail() -> None:
    docs = [{"id": "a", "d": "0001-01-01T00:00:00+14:00"}, {"id": "b", "d": "2024-01-01"}]
    assert ids(docs, "d:gt:9999-12-31T23:59:59-14:00") == []  # falls back to string order
    assert ids(docs, "d:lt:2000-01-01") == ["a"]


BAD_FILTERS = [
    "", "name", "name:", ":eq:x", " :eq:x", "name:foo:x", "name:EQ:x", "name:eq", "name:eq:",
    "name:like:", "na me:eq:x", "a..b:eq:x", ".a:eq:x", "a.:eq:x", "id:in:[]", "id:in:[ , ]",
    "id:in:[a", "id:in:a]", "id:!in:[]", "name:=:x", "name::x",
]


@pytest.mark.parametrize("flt", BAD_FILTERS)
def test_malformed_filters_raise_bad_request(flt: str) -> None:
    with pytest.raises(BadRequest):
        parse_filters([flt])


def test_unknown_operator_message() -> None:
    with pytest.raises(BadRequest, match="`foo` is not a valid operator"):
        parse_filters(["name:foo:x"])


@pytest.mark.parametrize("junction", ["XOR", "", "and or", "1"])
def test_bad_root_junction(junction: str) -> None:
    if junction == "":  # blank means the default
        assert parse_filters(["id:eq:x"], junction).junction == "AND"
        return
    with pytest.raises(BadRequest):
        parse_filters(["id:eq:x"], junction)


def test_non_string_filter_or_junction_is_bad_request() -> None:
    with pytest.raises(BadRequest):
        parse_filters([None])  # type: ignore[list-item]
    with pytest.raises(BadRequest):
        parse_filters(["id:eq:x"], 1)  # type: ignore[arg-type]
    with pytest.raises(BadRequest):
        parse_fields(1)  # type: ignore[arg-type]
    with pytest.raises(BadRequest):
        parse_order(["name"])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# order=


def names(docs: list[Doc]) -> list[object]:
    return [d.get("name") for d in docs]


def test_parse_order() -> None:
    assert parse_order("name:asc,code:desc,id") == [
        OrderKey(("name",)), OrderKey(("code",), descending=True), OrderKey(("id",))]
    assert parse_order("name:IASC, level:idesc") == [
        OrderKey(("name",), ignore_case=True),
        OrderKey(("level",), descending=True, ignore_case=True)]
    assert parse_order(None) == [] and parse_order("") == [] and parse_order(" , ") == []
    assert parse_order("name:desc,name:asc") == [OrderKey(("name",), descending=True)]
    assert parse_order("parent.name")[0].name == "parent.name"
    assert parse_order("name:idesc")[0].direction == "idesc"


@pytest.mark.parametrize("expr", ["name:up", "name:", "name:asc:x", ":asc", "na me",
                                  "name:ascending", "a..b", "name;asc"])
def test_bad_order_raises_bad_request(expr: str) -> None:
    with pytest.raises(BadRequest):
        parse_order(expr)


DOCS_FOR_ORDER: list[Doc] = [
    {"id": "1", "name": "beta", "code": "B", "level": 2},
    {"id": "2", "name": "Alpha", "level": 10},
    {"id": "3", "name": "alpha", "code": "A", "level": 2},
    {"id": "4", "code": "C"},
    {"id": "5", "name": "Gamma", "code": "A", "level": 1},
]


def test_sort_case_sensitive_and_insensitive() -> None:
    by = sort(DOCS_FOR_ORDER, parse_order("name"))
    assert names(by) == ["Alpha", "Gamma", "alpha", "beta", None]
    assert names(sort(DOCS_FOR_ORDER, parse_order("name:asc"))) == names(by)
    assert names(sort(DOCS_FOR_ORDER, parse_order("name:desc"))) == [
        "beta", "alpha", "Gamma", "Alpha", None]
    # case-insensitive ties keep their input order (stable)
    assert names(sort(DOCS_FOR_ORDER, parse_order("name:iasc"))) == [
        "Alpha", "alpha", "beta", "Gamma", None]
    assert names(sort(DOCS_FOR_ORDER, parse_order("name:idesc"))) == [
        "Gamma", "beta", "Alpha", "alpha", None]


def test_sort_numbers_numerically_and_missing_last_both_ways() -> None:
    assert [d["id"] for d in sort(DOCS_FOR_ORDER, parse_order("level"))] == [
        "5", "1", "3", "2", "4"]
    assert [d["id"] for d in sort(DOCS_FOR_ORDER, parse_order("level:desc"))] == [
        "2", "1", "3", "5", "4"]


def test_sort_by_several_keys() -> None:
    assert [d["id"] for d in sort(DOCS_FOR_ORDER, parse_order("code:asc,level:desc"))] == [
        "3", "5", "1", "4", "2"]
    assert [d["id"] for d in sort(DOCS_FOR_ORDER, parse_order("level:asc,name:idesc"))] == [
        "5", "1", "3", "2", "4"]


def test_sort_mixed_types_and_objects_does_not_fail() -> None:
    docs: list[Doc] = [{"id": "a", "v": "x"}, {"id": "b", "v": 3}, {"id": "c", "v": [1]},
                       {"id": "d", "v": True}, {"id": "e", "v": {"k": 1}}]
    # booleans order as numbers (True == 1), numbers before strings, objects/lists as missing
    assert [d["id"] for d in sort(docs, parse_order("v"))] == ["d", "b", "a", "c", "e"]


def test_sort_through_a_reference_and_empty_keys() -> None:
    units = sort(ORG_UNITS, parse_order("parent.name:desc"), lookup)
    # Sierra Leone > Bo > Badjia; the root has no parent and goes last
    assert [u["id"] for u in units] == ["O6uvpzGd5pu", "YuQRtpLP10I", "DiszpKrYNg8",
                                        "ImspTQPwCqd"]
    assert sort(ORG_UNITS, []) == ORG_UNITS and sort(ORG_UNITS, []) is not ORG_UNITS


# ---------------------------------------------------------------------------------------------
# paging


ITEMS = list(range(1, 121))  # 120 items


def test_paging_defaults() -> None:
    page, pager = paginate(ITEMS)
    assert page == ITEMS[:50]
    assert pager == {"page": 1, "pageCount": 3, "total": 120, "pageSize": 50}
    assert paginate(ITEMS, page=None, page_size=None) == (page, pager)
    assert paginate(ITEMS, paging=None, page="", page_size="") == (page, pager)


def test_paging_pages_and_last_partial_page() -> None:
    page, pager = paginate(ITEMS, page=3)
    assert page == ITEMS[100:] and pager == {"page": 3, "pageCount": 3, "total": 120,
                                             "pageSize": 50}
    page, pager = paginate(ITEMS, page="2", page_size="7")
    assert page == ITEMS[7:14] and pager is not None and pager["pageCount"] == 18


def test_page_beyond_the_last_is_empty_with_a_pager() -> None:
    page, pager = paginate(ITEMS, page=4)
    assert page == [] and pager == {"page": 4, "pageCount": 3, "total": 120, "pageSize": 50}
    page, pager = paginate(ITEMS, page=2**31 - 1, page_size=2**31 - 1)
    assert page == []


def test_paging_empty_collection() -> None:
    assert paginate([]) == ([], {"page": 1, "pageCount": 1, "total": 0, "pageSize": 50})


def test_exact_multiple_page_count() -> None:
    pager = paginate(ITEMS, page_size=40)[1]
    assert pager is not None and pager["pageCount"] == 3
    assert paginate(ITEMS, page_size=500)[1] == {"page": 1, "pageCount": 1, "total": 120,
                                                 "pageSize": 500}


@pytest.mark.parametrize("paging", [False, "false", "FALSE", " False ", "0", "no", "off"])
def test_paging_off_returns_everything_and_no_pager(paging: str | bool) -> None:
    page, pager = paginate(ITEMS, paging=paging, page=9, page_size=1)
    assert page == ITEMS and pager is None


@pytest.mark.parametrize("paging", [True, "true", "TRUE", "1", "yes", "on"])
def test_paging_on(paging: str | bool) -> None:
    assert paginate(ITEMS, paging=paging)[1] is not None


@pytest.mark.parametrize(("page", "page_size"), [
    (0, 50), (-1, 50), ("0", 50), ("abc", 50), ("1.5", 50), ("-2", 50), (1, 0), (1, -5),
    (1, "0"), (1, "x"), (1, "2.0"), (1, " "), (2**31, 50), ("9" * 5000, 50), (True, 50),
    (1, False), (1, "١٢"),
])
def test_bad_page_or_page_size(page: object, page_size: object) -> None:
    if page_size == " ":  # blank means the default
        assert paginate(ITEMS, page=page, page_size=page_size)[1]["pageSize"] == 50  # type: ignore
        return
    with pytest.raises(BadRequest):
        paginate(ITEMS, page=page, page_size=page_size)  # type: ignore[arg-type]


@pytest.mark.parametrize("paging", ["maybe", "2", "tru", 5])
def test_bad_paging_value(paging: object) -> None:
    with pytest.raises(BadRequest):
        paginate(ITEMS, paging=paging)  # type: ignore[arg-type]


def test_paginate_returns_a_new_list() -> None:
    page, _ = paginate(ITEMS, paging="false")
    assert page is not ITEMS


# ---------------------------------------------------------------------------------------------
# end to end, as a handler would do it


def test_android_sdk_org_unit_download_query() -> None:
    pred = parse_filters(["path:like:ImspTQPwCqd"])
    keys = parse_order("id:asc")
    spec = parse_fields("id,code,name,level,path,parent[id],dataSets[id],programs[id],"
                        "ancestors[id,displayName]")
    matching = sort(pred.select(ORG_UNITS, lookup), keys, lookup)
    page, pager = paginate(matching, paging="true", page="1", page_size="500")
    out = project_all(page, spec, lookup)
    assert [o["id"] for o in out] == ["DiszpKrYNg8", "ImspTQPwCqd", "O6uvpzGd5pu",
                                      "YuQRtpLP10I"]
    assert pager == {"page": 1, "pageCount": 1, "total": 4, "pageSize": 500}
    assert out[0]["dataSets"] == [{"id": "lyLU2wR22tC"}, {"id": "BfMAe6Itzgt"}]


def test_android_sdk_default_category_combo_query() -> None:
    pred = parse_filters(["isDefault:eq:true"])
    spec = parse_fields("id,code,name,displayName,isDefault,categories[id]")
    assert project_all(pred.select(CATEGORY_COMBOS), spec) == [{
        "id": "p0KPaWEg3cf", "name": "default", "displayName": "default", "isDefault": True,
        "categories": [{"id": "vGs6omsRekv"}]}]


def test_android_sdk_data_set_query() -> None:
    pred = parse_filters(["id:in:[lyLU2wR22tC,BfMAe6Itzgt]", "access.data.read:eq:true"])
    assert [d["id"] for d in pred.select(DATA_SETS, lookup)] == ["lyLU2wR22tC"]
