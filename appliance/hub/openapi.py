"""``GET /api/openapi.json``: an OpenAPI 3.0 description of the API this hub serves.

As DHIS2 2.41 publishes one at the same path. The paths and methods come from the app's
own route table (``app.router``), so the description cannot list a route the hub does
not have; what each operation takes and answers comes from :data:`OPERATIONS` below,
keyed by method and published path (``/api/system/info``: the plain form of the
``/api{/41}/system/info{.json}`` pattern ``add_api`` registers). A route with no entry
there is a bug that ``tests/hub/test_openapi_fuzz.py`` catches, and the suite fuzzes
the hub against this description, so it stays honest.

Success bodies are described loosely (an object with the keys DHIS2 documents, most of
them optional because ``fields=`` picks which ones come back); every error is a DHIS2
WebMessage.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .. import __version__
from ..dhis2.webmessage import HTTP_STATUS_TEXT
from ..store.metadata import TYPES
from .routes_metadata import EMPTY
from .web import CONFIG, dumps

S = dict[str, Any]
JSON = "application/json"
HTML = "text/html"
OPENAPI_PATH = r"/api{_v:(?:/[0-9]{2})?}/openapi.json"
INT31 = 2**31 - 1  # DHIS2 binds page, pageSize and the like to a Java int
INT63 = 2**63 - 1

# -- schema shorthands ----------------------------------------------------------------------
STR: S = {"type": "string"}
INT: S = {"type": "integer"}
BOOL: S = {"type": "boolean"}
ANY: S = {}  # any JSON value
UID: S = {"type": "string", "pattern": "^[a-zA-Z][a-zA-Z0-9]{10}$"}


# /api/hub/status's "backup": the litestream replica (health/backup.py)
BACKUP_STATUS: S = {
    "type": "object",
    "description": "The disaster-recovery backup (litestream). configured: [backup] replica "
                   "is set. lastReplicatedAt: when the replica last held everything "
                   "committed; lagSeconds: how long ago that was (what a dead SD card would "
                   "lose); error: why litestream cannot reach the backup server; checkedAt: "
                   "when the health agent last looked.",
    "required": ["configured", "lastReplicatedAt", "lagSeconds", "error", "checkedAt"],
    "properties": {
        "configured": BOOL,
        "lastReplicatedAt": {"type": "string", "nullable": True},
        "lagSeconds": {"type": "number", "nullable": True},
        "error": {"type": "string", "nullable": True},
        "checkedAt": {"type": "string", "nullable": True},
    },
}


# /api/hub/status's "tls": the HTTPS certificate tablets see (null: no [tls] name)
TLS_STATUS: S = {
    "type": "object", "nullable": True,
    "description": "The HTTPS certificate tablets use (issue 12); null when the hub has no "
                   "[tls] name. state: ok, renewing (due or a renewal under way), none (no "
                   "certificate installed yet) or expired. last_error: why the last renewal "
                   "attempt failed.",
    "required": ["name", "url", "state"],
    "properties": {
        "name": STR, "url": STR,
        "state": {"type": "string", "enum": ["ok", "renewing", "none", "expired"]},
        "not_after": {"type": "string", "nullable": True},
        "days_left": {"type": "number", "nullable": True},
        "issuer": {"type": "string", "nullable": True},
        "fingerprint": {"type": "string", "nullable": True},
        "last_error": {"type": "string", "nullable": True}}}


# /api/hub/status's "update": software updates (issue 13; null: no update agent)
UPDATE_STATUS: S = {
    "type": "object", "nullable": True,
    "description": "Software updates (issue 13); null when the hub has no update agent. "
                   "version: the release running; booted_slot: RAUC's slot; state: idle, "
                   "offered, downloading, installing, installed (waiting for the quiet "
                   "hours), rebooting, trial (checking health on the new release), "
                   "committed, rolling_back, rolled_back, refused or failed; last_failure: "
                   "when, what and why the last update failed.",
    "properties": {
        "version": {"type": "string", "nullable": True},
        "compatible": {"type": "string", "nullable": True},
        "booted_slot": {"type": "string", "nullable": True},
        "state": STR,
        "target_version": {"type": "string", "nullable": True},
        "bytes": {"type": "integer", "nullable": True},
        "size": {"type": "integer", "nullable": True},
        "changed_at": {"type": "string", "nullable": True},
        "checked_at": {"type": "string", "nullable": True},
        "check_error": {"type": "string", "nullable": True},
        "last_failure": {"type": "object", "nullable": True}}}


# /api/hub/status's "wire": bytes on the modem (issue 15; store/wirebytes.py)
_SENT_RECEIVED: S = {"type": "object", "required": ["sent", "received"],
                     "properties": {"sent": {"type": "integer", "minimum": 0},
                                    "received": {"type": "integer", "minimum": 0}}}
_WIRE_CATEGORIES: S = {
    "metadata": _SENT_RECEIVED, "pull": _SENT_RECEIVED, "push": _SENT_RECEIVED,
    "other": {**_SENT_RECEIVED, "required": ["sent", "received", "fleet"],
              "properties": {**_SENT_RECEIVED["properties"], "fleet": _SENT_RECEIVED}},
    "total": _SENT_RECEIVED}
WIRE_STATUS: S = {
    "type": "object",
    "description": "Bytes on the modem (estimated: request and reply lines, headers and "
                   "bodies as sent, compressed; not TCP/TLS overhead), sent and received, "
                   "for today and this calendar month in the hub's zone, by category: "
                   "metadata (the metadata pull), pull (data values, completions, tracker "
                   "reads), push (imports and their job reports), other (the link probe, "
                   "first logins, everything else; other.fleet: the health agent's "
                   "heartbeats, update checks and downloads and certificate renewal, "
                   "included in other), total (the sum). budgetMb: [sync] modem_budget_mb "
                   "(MB of 1024 x 1024 bytes; null: no budget); monthUsedPct: this month's "
                   "sent and received bytes as a percentage of it.",
    "required": ["today", "month", "budgetMb", "monthUsedPct"],
    "properties": {
        "today": {"type": "object", "required": ["date", *_WIRE_CATEGORIES],
                  "properties": {"date": {"type": "string", "format": "date"},
                                 **_WIRE_CATEGORIES}},
        "month": {"type": "object",
                  "required": ["period", "startDate", "endsAt", *_WIRE_CATEGORIES],
                  "properties": {"period": {"type": "string", "pattern": "^[0-9]{6}$"},
                                 "startDate": {"type": "string", "format": "date"},
                                 "endsAt": {"type": "string"}, **_WIRE_CATEGORIES}},
        "budgetMb": {"type": "integer", "nullable": True, "minimum": 1},
        "monthUsedPct": {"type": "number", "nullable": True, "minimum": 0}}}


def nullable(schema: S) -> S:
    return {**schema, "nullable": True}


def obj(props: Mapping[str, S] | None = None, required: tuple[str, ...] = ()) -> S:
    """An object with these properties; others may appear (DHIS2 adds keys between versions)."""
    out: S = {"type": "object"}
    if props:
        out["properties"] = dict(props)
    if required:
        out["required"] = list(required)
    return out


def arr(items: S) -> S:
    return {"type": "array", "items": items}


def ref(name: str) -> S:
    return {"$ref": f"#/components/schemas/{name}"}


def qp(name: str, schema: S = STR, desc: str = "", *, required: bool = False) -> S:
    """A query parameter."""
    p: S = {"name": name, "in": "query", "required": required, "schema": schema}
    if desc:
        p["description"] = desc
    return p


def multi(name: str, desc: str = "") -> S:
    """A repeatable query parameter (``?ou=a&ou=b``; each value may also be comma-separated)."""
    return {**qp(name, arr(STR), desc), "style": "form", "explode": True}


def flag(name: str, desc: str = "") -> S:
    return qp(name, BOOL, desc)


# -- shared parameters ------------------------------------------------------------------------
FIELDS = qp("fields", STR, "DHIS2 field filter, e.g. `id,name,categoryCombo[id,name]`")
PAGING = (flag("paging", "false: every item, no pager"),
          qp("page", {"type": "integer", "minimum": 1, "maximum": INT31}),
          qp("pageSize", {"type": "integer", "minimum": 1, "maximum": INT31}))
QUERY = (FIELDS, multi("filter", "`property:operator:value`, e.g. `name:ilike:malaria`"),
         qp("rootJunction", {"type": "string", "enum": ["AND", "OR"]}),
         qp("order", STR, "`property[:asc|desc|iasc|idesc]`, comma-separated"), *PAGING)
ATTRIBUTE_OPTIONS = (qp("cc", STR, "attribute category combo"),
                     qp("cp", STR, "attribute category options, `;`-separated"))
DATE = {"type": "string", "format": "date"}

# -- shared schemas ---------------------------------------------------------------------------
COMPONENTS: S = {
    "WebMessage": obj({
        "httpStatus": STR, "httpStatusCode": INT,
        "status": {"type": "string", "enum": ["OK", "WARNING", "ERROR"]},
        "message": STR, "errorCode": STR,
        "response": obj(),
    }, ("httpStatus", "httpStatusCode", "status", "message")),
    "Pager": obj({"page": INT, "pageCount": INT, "total": INT, "pageSize": INT,
                  "nextPage": STR, "prevPage": STR}),
    "DataValue": obj({
        "dataElement": STR, "period": STR, "orgUnit": STR, "categoryOptionCombo": STR,
        "attributeOptionCombo": STR, "value": nullable(STR), "storedBy": nullable(STR),
        "created": nullable(STR), "lastUpdated": nullable(STR), "comment": nullable(STR),
        "followup": BOOL, "deleted": BOOL}),
    "DataValueSet": obj({
        "dataSet": STR, "completeDate": STR, "period": STR, "orgUnit": STR,
        "attributeOptionCombo": STR,
        "dataValues": arr(obj({
            "dataElement": STR, "period": STR, "orgUnit": STR, "categoryOptionCombo": STR,
            "attributeOptionCombo": STR, "value": nullable(STR), "comment": nullable(STR),
            "storedBy": STR, "followup": BOOL, "deleted": BOOL}))}),
    "Completion": obj({
        "dataSet": STR, "period": STR, "organisationUnit": STR, "attributeOptionCombo": STR,
        "date": nullable(STR), "storedBy": nullable(STR), "completed": BOOL,
        "lastUpdated": nullable(STR)}),
    "IdentifiableObject": obj({"id": STR, "name": STR, "displayName": STR, "code": STR,
                               "created": STR, "lastUpdated": STR}),
    "ImportReport": obj({"httpStatus": STR, "httpStatusCode": INT, "status": STR,
                         "response": obj({"responseType": STR, "status": STR,
                                          "stats": obj(), "typeReports": arr(obj())})},
                        ("httpStatus", "httpStatusCode", "status")),
    "SyncState": nullable(obj({"state": STR, "message": nullable(STR),
                               "errorCode": nullable(STR)})),
}
MESSAGE = ref("WebMessage")


# -- the operation table ------------------------------------------------------------------------
@dataclass(frozen=True)
class Op:
    """What one operation takes and answers; the method and path come from the router."""

    summary: str
    ok: Mapping[int, S | None]  # success/redirect status -> body schema (None: no body)
    errors: tuple[int, ...] = ()  # besides the common ones (see _errors)
    query: tuple[S, ...] = ()
    body: Mapping[str, S] | None = None  # media type -> schema
    body_required: bool = True
    path: Mapping[str, S] = field(default_factory=dict)  # overrides the route's regex
    public: bool = False  # answers without credentials (auth is still accepted)
    ok_type: tuple[str, ...] = (JSON,)  # media types of the success bodies


def _system_info() -> S:
    return obj({
        "contextPath": STR, "userAgent": STR, "calendar": STR, "dateFormat": STR,
        "serverDate": STR, "serverTimeZoneId": STR, "serverTimeZoneDisplayName": STR,
        "version": STR, "revision": STR, "buildTime": STR, "environmentVariable": STR,
        "databaseInfo": obj(), "encryption": BOOL, "emailConfigured": BOOL,
        "redisEnabled": BOOL, "systemId": STR, "systemName": STR, "instanceBaseUrl": STR,
        "isMetadataVersionEnabled": BOOL, "isMetadataSyncEnabled": BOOL,
        "lastAnalyticsTableSuccess": nullable(STR), "hub": obj({"role": STR, "version": STR})})


CONFLICT = obj({
    "id": INT, "entity": STR, "dataElement": STR, "period": STR, "orgUnit": STR,
    "categoryOptionCombo": STR, "attributeOptionCombo": STR, "dataSet": nullable(STR),
    "hub": obj(), "national": obj(), "winner": STR, "loser": STR, "policy": STR,
    "reason": nullable(STR), "detectedAt": STR,
    "status": {"type": "string", "enum": ["open", "resolved"]}, "resolution": nullable(obj())},
    ("id", "entity", "hub", "national", "status"))
DATA_VALUE_QUERY = (qp("de", STR, "data element (required unless in a JSON body)"),
                    qp("pe", STR, "period (required unless in a JSON body)"),
                    qp("ou", STR, "org unit (required unless in a JSON body)"),
                    qp("co", STR, "category option combo"), *ATTRIBUTE_OPTIONS)
IMPORT_QUERY = (
    qp("importStrategy", {"type": "string",
                          "enum": ["CREATE_AND_UPDATE", "CREATE", "UPDATE", "DELETE"]}),
    flag("dryRun"), *(qp(n, {"type": "string", "enum": ["UID", "CODE", "NAME"]}) for n in
                      ("idScheme", "dataElementIdScheme", "orgUnitIdScheme")),
    *(flag(n) for n in ("strictPeriods", "strictDataElements", "strictOrganisationUnits",
                        "strictCategoryOptionCombos", "requireCategoryOptionCombo",
                        "requireAttributeOptionCombo", "skipAudit", "firstRowIsHeader")))
APPROVAL_QUERY = (qp("ds", STR, "data set (or `wf`)"), qp("wf", STR), qp("pe", STR),
                  qp("ou", STR), qp("aoc", STR))
MULTI_APPROVAL_QUERY = (multi("wf"), multi("pe"), qp("startDate", DATE), qp("endDate", DATE),
                        multi("ou"), multi("aoc"), FIELDS)
COMPLETION_QUERY = (multi("dataSet"), multi("period"), multi("orgUnit"), qp("startDate", DATE),
                    qp("endDate", DATE), qp("lastUpdated", STR), flag("children"),
                    flag("includeDeleted"), FIELDS)
DVS_QUERY = (multi("dataSet"), multi("dataElement"), multi("period"), qp("startDate", DATE),
             qp("endDate", DATE), qp("lastUpdated", STR), multi("orgUnit"), flag("children"),
             flag("includeDeleted"), qp("limit", {"type": "integer", "minimum": 1,
                                                   "maximum": INT63}),
             multi("attributeOptionCombo"), FIELDS)
DVS_OK = obj({"dataSet": STR, "period": STR, "orgUnit": STR,
              "dataValues": arr(ref("DataValue"))})
CSV = {"type": "string"}
COLLECTION = {"type": "string", "enum": sorted({*TYPES, *EMPTY})}
SINCE = qp("lastUpdated", STR, "only keys changed since this date or date-time")
SHARING_QUERY = (qp("type", {"type": "string", "enum": ["dataStore"]}, required=True),
                 qp("id", STR, "the entry's id (from its metaData)", required=True))
ACCESS = arr(obj({"id": STR, "access": STR}, ("id", "access")))
SHARING = obj({"publicAccess": STR, "userAccesses": ACCESS, "userGroupAccesses": ACCESS})

TRACKER_IMPORT_QUERY = (
    qp("async", BOOL), qp("importStrategy", {"type": "string", "enum": [
        "CREATE_AND_UPDATE", "CREATE", "UPDATE", "DELETE"]}),
    qp("atomicMode", {"type": "string", "enum": ["ALL", "OBJECT"]}), qp("dryRun", BOOL))
TRACKER_REPORT = obj({"status": STR, "validationReport": obj(), "stats": obj(),
                      "bundleReport": obj()}, ("status", "validationReport", "stats"))
TRACKER_QUERY = (
    qp("orgUnits"), qp("orgUnit"), qp("orgUnitMode", {"type": "string", "enum": [
        "SELECTED", "CHILDREN", "DESCENDANTS", "ACCESSIBLE", "CAPTURE", "ALL"]}),
    qp("program"), qp("programStage"), qp("trackedEntityType"), qp("trackedEntity"),
    qp("enrollment"), qp("updatedAfter"), flag("includeDeleted"), qp("order"),
    multi("filter", "`attribute:operator:value`"), qp("status"), FIELDS,
    qp("page", INT), qp("pageSize", INT), flag("paging"), flag("totalPages"))

OPERATIONS: dict[tuple[str, str], Op] = {
    # -- this description
    ("GET", "/api/openapi.json"): Op("This OpenAPI description", {200: obj(
        {"openapi": STR, "info": obj(), "paths": obj(), "components": obj()},
        ("openapi", "info", "paths"))}),
    # -- system, login, current user, settings (routes_system)
    ("GET", "/api/system/info"): Op("Server and hub version, time and ids",
                                    {200: _system_info()}, (400,), (FIELDS,)),
    ("GET", "/api/system/ping"): Op("Liveness", {200: STR}, public=True,
                                    ok_type=("text/plain",)),
    ("GET", "/api/ping"): Op("Liveness", {200: STR}, public=True, ok_type=("text/plain",)),
    ("GET", "/api/system/id"): Op("New DHIS2 UIDs", {200: obj({"codes": arr(UID)}, ("codes",))},
                                  (400,), (qp("limit", {"type": "integer", "minimum": 1,
                                                        "maximum": 10000}),)),
    ("GET", "/api/loginConfig"): Op("What the login page shows", {200: obj(
        {"apiVersion": STR, "applicationTitle": STR, "applicationDescription": STR,
         "uiLocale": STR, "oidcProviders": arr(ANY)})}, public=True),
    ("GET", "/api/me"): Op("The logged-in user", {200: obj({
        "id": STR, "username": STR, "displayName": STR, "authorities": arr(STR),
        "userRoles": arr(obj()), "organisationUnits": arr(obj()), "dataSets": arr(ANY),
        "programs": arr(ANY), "settings": obj(), "access": obj()})}, (400,), (FIELDS,)),
    ("GET", "/api/me/authorization"): Op("The user's authorities", {200: arr(STR)}),
    ("GET", "/api/me/authorization/{auth}"): Op("Whether the user has this authority",
                                                {200: BOOL}),
    ("GET", "/api/userSettings"): Op("The user's settings", {200: obj({"keyUiLocale": ANY})},
                                     query=(multi("key"),)),
    ("POST", "/api/userSettings"): Op(
        "Set several of the user's settings (keyUiLocale: bn or en; keyHubDigits: bengali or "
        "latin)", {200: MESSAGE}, (400, 409), body={JSON: obj()}),
    ("GET", "/api/userSettings/{key}"): Op("One of the user's settings, as text", {200: STR},
                                           (404, 409), ok_type=("text/plain",)),
    ("POST", "/api/userSettings/{key}"): Op(
        "Set one of the user's settings: ?value= or the body", {200: MESSAGE}, (400, 409),
        (qp("value"),), body={"text/plain": STR}, body_required=False),
    ("GET", "/api/systemSettings"): Op("System settings", {200: obj({"keyUiLocale": ANY})},
                                       query=(multi("key"),)),
    ("POST", "/api/auth/login"): Op(
        "Log in; sets the JSESSIONID cookie", {200: obj({"loginStatus": STR, "redirectUrl": STR},
                                                       ("loginStatus",))},
        (400, 401, 429), body={JSON: obj({"username": STR, "password": STR},
                                         ("username", "password"))}, public=True),
    ("POST", "/api/auth/logout"): Op("End the session", {200: MESSAGE}),
    ("POST", "/dhis-web-commons-security/login.action"): Op(
        "Legacy form login; redirects to / with the session cookie", {302: None},
        (400, 401, 429), body={"application/x-www-form-urlencoded": obj(
            {"j_username": STR, "j_password": STR}, ("j_username", "j_password"))},
        public=True),
    ("GET", "/dhis-web-commons-security/logout.action"): Op("Legacy logout", {200: MESSAGE}),
    ("GET", "/"): Op("Redirects to the data entry page", {302: None}, public=True),
    # -- dataStore (routes_datastore): 403 where the entry's sharing does not allow it
    ("GET", "/api/dataStore"): Op("Namespaces with an entry the user may read", {200: arr(STR)}),
    ("GET", "/api/dataStore/{ns}"): Op("Keys of a namespace", {200: arr(STR)}, (400, 404),
                                        (SINCE,)),
    ("GET", "/api/dataStore/{ns}/keys"): Op("Keys of a namespace", {200: arr(STR)}, (400, 404),
                                             (SINCE,)),
    ("DELETE", "/api/dataStore/{ns}"): Op("Delete a namespace", {200: MESSAGE}, (404,)),
    ("GET", "/api/dataStore/{ns}/{key}"): Op("A stored JSON value", {200: ANY}, (403, 404)),
    ("GET", "/api/dataStore/{ns}/{key}/metaData"): Op(
        "An entry without its value", {200: obj({
            "id": STR, "created": STR, "lastUpdated": STR, "createdBy": obj(),
            "namespace": STR, "key": STR, "encrypted": BOOL, "sharing": obj(), "access": obj()},
            ("id", "namespace", "key"))}, (403, 404)),
    ("POST", "/api/dataStore/{ns}/{key}"): Op("Create a key", {201: MESSAGE}, (409,),
                                               body={JSON: ANY}),
    ("PUT", "/api/dataStore/{ns}/{key}"): Op("Replace a key's value", {200: MESSAGE}, (404,),
                                              body={JSON: ANY}),
    ("DELETE", "/api/dataStore/{ns}/{key}"): Op("Delete a key", {200: MESSAGE}, (404,)),
    ("GET", "/api/sharing"): Op(
        "Who may read and write a dataStore entry", {200: obj(
            {"meta": obj(), "object": SHARING}, ("object",))}, (400, 403, 404, 409),
        SHARING_QUERY),
    ("PUT", "/api/sharing"): Op(
        "Set who may read and write a dataStore entry", {200: MESSAGE}, (404, 409),
        SHARING_QUERY, body={JSON: obj({"object": SHARING}, ("object",))}),
    ("POST", "/api/sharing"): Op(
        "Set who may read and write a dataStore entry", {200: MESSAGE}, (404, 409),
        SHARING_QUERY, body={JSON: obj({"object": SHARING}, ("object",))}),
    # -- aggregate data (routes_data)
    ("GET", "/api/dataValueSets"): Op(
        "Data values (JSON; CSV when Accept or `format=csv` asks for it)", {200: DVS_OK},
        (400, 409), (*DVS_QUERY, qp("format", {"type": "string", "enum": ["json", "csv"]},
                                   "csv: the values as DHIS2 writes them in CSV")),
        ok_type=(JSON, "application/csv")),
    ("GET", "/api/dataValueSets.csv"): Op("Data values as CSV", {200: CSV}, (400, 409),
                                          DVS_QUERY, ok_type=("application/csv",)),
    ("POST", "/api/dataValueSets"): Op(
        "Import data values (a gzip or zip body is found by its magic bytes); the "
        "ImportSummary is in `response`", {200: MESSAGE}, (409, 415),
        IMPORT_QUERY, body={JSON: ref("DataValueSet"), "application/csv": CSV}),
    ("GET", "/api/dataValues"): Op("One data value", {200: arr(STR)}, (400, 409),
                                   DATA_VALUE_QUERY),
    ("POST", "/api/dataValues"): Op(
        "Save one data value", {201: None}, (400, 409),
        (*DATA_VALUE_QUERY, qp("value", STR), qp("comment", STR), flag("followUp")),
        body={JSON: obj({"dataElement": STR, "period": STR, "orgUnit": STR,
                         "categoryOptionCombo": STR, "attributeOptionCombo": STR,
                         "value": nullable(STR), "comment": nullable(STR), "followUp": BOOL}),
              "application/x-www-form-urlencoded": obj({"value": STR, "comment": STR})},
        body_required=False),
    ("DELETE", "/api/dataValues"): Op("Delete one data value", {204: None}, (400, 404, 409),
                                      DATA_VALUE_QUERY),
    ("GET", "/api/completeDataSetRegistrations"): Op(
        "Completions", {200: obj({"completeDataSetRegistrations": arr(ref("Completion"))})},
        (400, 409), COMPLETION_QUERY),
    ("POST", "/api/completeDataSetRegistrations"): Op(
        "Register completions; the ImportSummary is in `response`", {200: MESSAGE}, (409,),
        body={JSON: obj({"completeDataSetRegistrations": arr(ref("Completion"))},
                        ("completeDataSetRegistrations",))}),
    ("DELETE", "/api/completeDataSetRegistrations"): Op(
        "Undo completions", {204: None}, (400, 409),
        (multi("ds"), multi("pe"), multi("ou"), *ATTRIBUTE_OPTIONS, flag("multiOu"))),
    ("GET", "/api/dataEntry/dataValues"): Op(
        "A form's values, min-max limits, lock and completion, with hub sync states",
        {200: obj({"dataValues": arr(ref("DataValue")), "minMaxValues": arr(obj()),
                   "lockStatus": {"type": "string", "enum": ["OPEN", "LOCKED", "APPROVED"]},
                   "completeStatus": obj({"complete": BOOL, "hubSync": ref("SyncState")}),
                   "hubSync": obj(), "hubPending": INT,
                   "hubApproval": {**obj({"state": STR, "national": BOOL, "at": STR,
                                          "orgUnit": STR}), "nullable": True}},
                  ("dataValues", "minMaxValues", "lockStatus", "completeStatus"))},
        (400, 403, 404, 409),
        (qp("ds"), qp("dataSet"), qp("pe"), qp("period"), qp("ou"), qp("orgUnit"),
         *ATTRIBUTE_OPTIONS)),
    ("GET", "/api/validation/dataSet/{ds}"): Op(
        "Run a data set's validation rules on a form",
        {200: obj({"validationRuleViolations": arr(obj()), "commentRequiredViolations": arr(ANY)},
                  ("validationRuleViolations",))},
        (400, 404, 409), (qp("pe"), qp("ou"), *ATTRIBUTE_OPTIONS)),
    ("GET", "/api/dataApprovals"): Op("Approval state", {200: obj(
        {"state": STR, "mayApprove": BOOL, "mayUnapprove": BOOL, "mayAccept": BOOL,
         "mayUnaccept": BOOL, "mayReadData": BOOL}, ("state",))}, (400, 403, 409),
        APPROVAL_QUERY),
    ("POST", "/api/dataApprovals"): Op("Approve (every data set of the workflow)", {204: None},
                                       (400, 403, 409), APPROVAL_QUERY),
    ("DELETE", "/api/dataApprovals"): Op("Unapprove", {204: None}, (400, 403, 409),
                                         APPROVAL_QUERY),
    ("GET", "/api/dataApprovals/multiple"): Op(
        "Approval states of workflows x periods x org units x attribute option combos "
        "(a bare array; the Android SDK's and the hub sync's call)",
        {200: arr(obj({"wf": STR, "pe": STR, "ou": STR, "aoc": STR, "state": STR,
                       "permissions": obj()}))},
        (400, 403, 409), MULTI_APPROVAL_QUERY),
    ("GET", "/api/dataApprovals/approvals"): Op(
        "The same as /api/dataApprovals/multiple",
        {200: arr(obj({"wf": STR, "pe": STR, "ou": STR, "aoc": STR, "state": STR}))},
        (400, 403, 409), MULTI_APPROVAL_QUERY),
    ("GET", "/api/audits/dataValue"): Op(
        "Data value audit trail", {200: obj({"dataValueAudits": arr(obj()),
                                             "pager": ref("Pager")}, ("dataValueAudits",))},
        (400, 409), (multi("de"), multi("pe"), multi("ou"), multi("co"), multi("ds"),
                     multi("auditType"), *PAGING)),
    ("GET", "/api/users"): Op("Users (national stand-in: for hub sync)", {200: obj(
        {"users": arr(obj()), "pager": ref("Pager")}, ("users",))}, (400,),
        QUERY[:3] + PAGING),
    # -- tracker (routes_tracker)
    ("POST", "/api/tracker"): Op(
        "Import tracked entities, enrollments, events and relationships (DHIS2 2.41): "
        "a job by default, the ImportReport itself with async=false",
        # 409: the ImportReport itself, as DHIS2 answers a synchronous import with refusals
        {200: obj(), 409: TRACKER_REPORT}, (400, 415), TRACKER_IMPORT_QUERY,
        body={JSON: obj({k: arr(obj()) for k in ("trackedEntities", "enrollments", "events",
                                                  "relationships")})}),
    ("GET", "/api/tracker/jobs/{id}"): Op(
        "A tracker import job's notifications", {200: arr(obj())}, (404,)),
    ("GET", "/api/tracker/jobs/{id}/report"): Op(
        "A tracker import job's ImportReport", {200: TRACKER_REPORT}, (400, 404),
        (qp("reportMode", {"type": "string", "enum": ["FULL", "ERRORS", "WARNINGS"]}),)),
    ("PUT", "/api/tracker/ownership/transfer"): Op(
        "Transfer a tracked entity's program ownership (a referral)", {200: MESSAGE},
        (400, 403, 404, 409), (qp("trackedEntity", UID, required=True),
                               qp("program", UID, required=True), qp("ou", UID, required=True))),
    **{("GET", f"/api/tracker/{name}"): Op(
        f"Tracker {name}, in the caller's search scope",
        {200: obj({name: arr(obj()), "pager": obj()}, (name,))}, (400, 403),
        TRACKER_QUERY) for name in ("trackedEntities", "enrollments", "events")},
    **{("GET", f"/api/tracker/{name}/{{uid}}"): Op(
        f"One of the tracker {name}", {200: obj()}, (400, 403, 404), (FIELDS,))
       for name in ("trackedEntities", "enrollments", "events")},
    ("GET", "/api/tracker/relationships"): Op(
        "The relationships of one tracked entity, enrollment or event",
        {200: obj({"relationships": arr(obj())}, ("relationships",))}, (400, 404),
        (qp("trackedEntity"), qp("enrollment"), qp("event"), flag("includeDeleted"))),
    ("GET", "/api/tracker/relationships/{uid}"): Op(
        "One relationship, to a user who may read both of its ends", {200: obj()}, (400, 404),
        (flag("includeDeleted"),)),
    ("GET", "/api/trackedEntityAttributes/{id}/generateAndReserve"): Op(
        "Reserve generated values of an attribute (e.g. a birth registration number)",
        {200: arr(obj())}, (400, 404, 409),
        (qp("numberToReserve", INT), qp("expiration", INT))),
    ("GET", "/api/trackedEntityAttributes/{id}/generate"): Op(
        "One generated value of an attribute", {200: obj()}, (400, 404, 409),
        (qp("expiration", INT),)),
    ("GET", "/api/hub/people"): Op(
        "Search the registers by name (Bangla or Latin), phone or birth registration number",
        {200: obj({"people": arr(obj()), "q": STR}, ("people",))}, (400,),
        (qp("q"), qp("limit", INT))),
    ("POST", "/api/hub/people/duplicates"): Op(
        "Registered people who may be the one being registered, with the reasons",
        {200: obj({"candidates": arr(obj()), "threshold": {"type": "number"}},
                  ("candidates",))}, (400,),
        body={JSON: obj({"attributes": obj()}, ("attributes",))}),
    ("POST", "/api/hub/rules"): Op(
        "Run a program's rules on a registration or visit form: fields to hide, warnings, "
        "errors and assigned values",
        {200: obj({"effects": arr(obj({"action": STR, "rule": STR})), "errors": arr(obj())},
                  ("effects", "errors"))}, (400, 403, 404),
        body={JSON: obj({"program": UID, "programStage": UID, "attributes": obj(),
                         "dataValues": obj(), "eventDate": STR, "enrollmentDate": STR,
                         "incidentDate": STR, "enrollment": UID, "event": UID,
                         "status": STR}, ("program",))}),
    ("GET", "/api/hub/people/{uid}/syncStates"): Op(
        "A person's sync state per row: the person, attributes, enrollments, events, values",
        {200: obj({"trackedEntity": STR, "attributes": obj(), "enrollments": obj(),
                   "events": obj(), "dataValues": obj()})}, (404,)),
    ("GET", "/api/hub/lists/{list}"): Op(
        "The weekly lists of an org unit: pregnant women, under-5 children, visits due "
        "this week and missed",
        {200: obj({"list": STR, "orgUnit": STR, "date": STR, "people": arr(obj()),
                   "visits": arr(obj())}, ("list", "orgUnit", "date"))}, (400, 403, 404),
        (qp("orgUnit"), qp("date", STR, "the list's day, yyyy-MM-dd (default today)")),
        path={"list": {"type": "string", "enum": ["pregnant", "children", "due"]}}),
    ("GET", "/api/potentialDuplicates"): Op(
        "Potential duplicates flagged at registration",
        {200: obj({"potentialDuplicates": arr(obj())}, ("potentialDuplicates",))}, (400,),
        (qp("trackedEntity"), qp("status"))),
    ("POST", "/api/potentialDuplicates"): Op(
        "Flag two tracked entities as a potential duplicate", {200: obj()}, (400, 403, 404, 409),
        body={JSON: obj({"original": UID, "duplicate": UID, "reasons": arr(STR)},
                        ("original", "duplicate"))}),
    ("PUT", "/api/potentialDuplicates/{id}"): Op(
        "Set a potential duplicate's status", {200: MESSAGE}, (400, 403, 404),
        (qp("status", {"type": "string", "enum": ["OPEN", "INVALID", "MERGED"]},
            required=True),)),
    # -- hub status, conflicts and rejections (routes_hub, sync.api)
    ("GET", "/api/hub/status"): Op("Hub and sync status", {200: obj(
        {"hub": obj(), "sync": obj(), "events": arr(obj()), "metadataVersion": ANY,
         "tls": TLS_STATUS, "backup": BACKUP_STATUS, "update": UPDATE_STATUS,
         "wire": WIRE_STATUS},
        ("hub", "sync", "wire"))}, public=True),
    ("GET", "/api/hub/health"): Op("Hardware health", {200: obj(
        {"sample": nullable(obj()), "events": arr(obj())})}),
    ("GET", "/api/hub/conflicts"): Op(
        "The conflict log, in the caller's scope",
        {200: obj({"conflicts": arr(CONFLICT), "total": INT, "status": STR},
                  ("conflicts", "total"))}, (400,),
        (qp("status", {"type": "string", "enum": ["open", "resolved", "all"]}),
         qp("orgUnit"), qp("dataSet"), qp("period"))),
    ("POST", "/api/hub/conflicts/{id}/resolve"): Op(
        "Resolve a conflict: queue the chosen value for national", {200: MESSAGE},
        (400, 404, 409), body={JSON: obj({
            "choose": {"type": "string", "enum": ["hub", "national", "value"]},
            "value": nullable(STR)}, ("choose",))},
        path={"id": {"type": "integer", "minimum": 1, "maximum": INT63}}),
    ("POST", "/api/hub/sync"): Op("Ask the sync worker for a cycle now", {202: MESSAGE}),
    # -- the reporting board (board.py): any logged-in user, in their view scope
    ("GET", "/api/hub/board"): Op(
        "The reporting board of a month: every clinic × form, the reporting rates",
        {200: obj({"period": STR, "orgUnits": arr(obj()), "dataSets": arr(obj()),
                   "cells": arr(obj()), "rates": obj({"all": obj(), "byDataSet": obj()})},
                  ("period", "orgUnits", "dataSets", "cells", "rates"))}, (400,),
        (qp("pe", STR, "month YYYYMM, one of the last 36 (default: the previous month)"),)),
    ("GET", "/api/hub/board/events"): Op(
        "The board's Server-Sent Events: `board` (all of it), then `cells` (what changed)",
        {200: STR}, (400, 406), (qp("pe", STR, "month YYYYMM (default: the previous month)"),),
        ok_type=("text/event-stream",)),
    ("GET", "/api/hub/rejections"): Op(
        "Values national refused, with its reasons",
        {200: obj({"rejections": arr(obj()), "total": INT}, ("rejections", "total"))}, (403,),
        (qp("username"),)),
    # -- pages (pages.py): HTML, public; data only for a logged-in user
    ("GET", "/hub"): Op("Data entry page", {200: STR}, public=True, ok_type=(HTML,)),
    ("GET", "/hub/"): Op("Data entry page", {200: STR}, public=True, ok_type=(HTML,)),
    ("GET", "/hub/status"): Op("Hub status page", {200: STR}, public=True, ok_type=(HTML,)),
    ("GET", "/hub/people"): Op("Register search and registration page", {200: STR},
                               public=True, ok_type=(HTML,)),
    ("GET", "/hub/people/{uid}"): Op("A person's record page", {200: STR}, public=True,
                                     ok_type=(HTML,)),
    ("GET", "/hub/lists"): Op("Weekly lists page", {200: STR}, public=True, ok_type=(HTML,)),
    ("GET", "/hub/board"): Op("Reporting board page", {200: STR}, public=True, ok_type=(HTML,)),
    ("GET", "/hub/session"): Op("Whether the session cookie is still good", {200: obj(
        {"loggedIn": BOOL, "username": nullable(STR), "locale": STR, "digits": STR},
        ("loggedIn",))}, public=True),
    ("GET", "/hub/i18n/{name}"): Op(
        "The pages' strings in one language (bn.json, en.json), from the .po catalogues",
        {200: obj(), 304: None}, (404,), (qp("v"),), public=True),
    ("GET", "/hub/static/{name}"): Op(
        "The pages' scripts and style sheets", {200: STR, 304: None}, (404,), (qp("v"),),
        public=True, ok_type=("text/javascript", "text/css")),
    # -- metadata (routes_metadata)
    ("GET", "/api/metadata"): Op(
        "Metadata export", {200: obj({"system": obj({"date": STR}), **{
            t: arr(obj()) for t in TYPES}}, ("system",))}, (400,),
        (FIELDS, multi("filter", "`property:operator:value`, applied to every type"),
         qp("rootJunction", {"type": "string", "enum": ["AND", "OR"]}),
         *(flag(t) for t in TYPES))),
    ("POST", "/api/metadata"): Op(
        "Metadata import (national stand-in only)", {200: ref("ImportReport")}, (400, 403),
        (qp("importStrategy", {"type": "string",
                               "enum": ["CREATE_AND_UPDATE", "CREATE", "UPDATE", "DELETE"]}),),
        body={JSON: obj({t: arr(ref("IdentifiableObject")) for t in TYPES})}),
    ("GET", "/api/deletedObjects"): Op(
        "Metadata deleted since a time", {200: obj({"deletedObjects": arr(obj(
            {"klass": STR, "uid": STR, "deletedAt": STR})), "pager": ref("Pager")},
            ("deletedObjects",))}, (400,), (multi("klass"), qp("deletedAt"), *PAGING)),
    ("GET", "/api/categoryOptions/orgUnits"): Op(
        "Org units of each category option", {200: {"type": "object",
                                                    "additionalProperties": arr(STR)}},
        query=(multi("categoryOptions"),)),
    ("GET", "/api/{collection}"): Op(
        "A metadata collection: `{pager, <collection>: [...]}`",
        {200: obj({"pager": ref("Pager")})}, (400, 404),
        (*QUERY, qp("level", {"type": "integer", "minimum": 1, "maximum": INT31}),
         flag("userOnly"), qp("dataSet", STR, "validationRules: those of this data set")),
        path={"collection": COLLECTION}),
    ("GET", "/api/{collection}/{uid}"): Op(
        "One metadata object", {200: ref("IdentifiableObject")}, (400, 404), (FIELDS,),
        path={"collection": COLLECTION}),
}


# -- route table -> paths -------------------------------------------------------------------------
_GROUP = re.compile(r"\(\?P<(\w+)>")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _named_groups(pattern: str) -> dict[str, str]:
    """name -> regex of each named group of a compiled route pattern."""
    out: dict[str, str] = {}
    for m in _GROUP.finditer(pattern):
        depth, i, in_class = 1, m.end(), False
        while depth:
            c = pattern[i]
            if c == "\\":
                i += 2
                continue
            if in_class:
                in_class = c != "]"
            elif c == "[":
                in_class = True
            elif c in "()":
                depth += 1 if c == "(" else -1
            i += 1
        out[m.group(1)] = pattern[m.end():i - 1]
    return out


def published(resource: web.AbstractResource) -> tuple[str, dict[str, str]]:
    """The path a client uses (``/api/x``, not ``/api/41/x.json``) and each path
    parameter's regex."""
    info = resource.get_info()
    if "path" in info:
        return str(info["path"]), {}
    if "formatter" not in info:
        raise ValueError(f"cannot describe route resource {resource!r}")
    groups = _named_groups(info["pattern"].pattern)

    def fill(m: re.Match[str]) -> str:
        name = m.group(1)
        if name == "_v":  # the optional /41 API version
            return ""
        if name == "_x":  # an optional .json, or a fixed suffix such as .csv
            rx = groups[name]
            return "" if re.fullmatch(rx, "") else re.sub(r"\\(.)", r"\1", rx)
        return "{" + name + "}"
    path = _PLACEHOLDER.sub(fill, str(info["formatter"]))
    params = {n: rx for n, rx in groups.items() if n not in ("_v", "_x")}
    return path, params


def routes(app: web.Application) -> Iterator[tuple[str, str, dict[str, str]]]:
    """(method, published path, path parameter regexes) of every route, in order."""
    for route in app.router.routes():
        path, params = published(route.resource) if route.resource is not None else ("", {})
        yield route.method, path, params


def undescribed(app: web.Application) -> list[str]:
    """Routes :data:`OPERATIONS` has no entry for (HEAD is described by its GET)."""
    return [f"{m} {p}" for m, p, _ in routes(app)
            if (m if m != "HEAD" else "GET", p) not in OPERATIONS]


# -- building the document ------------------------------------------------------------------------
SECURITY: list[S] = [{"basicAuth": []}, {"ApiToken": []}, {"cookieAuth": []}]
SECURITY_SCHEMES = {
    "basicAuth": {"type": "http", "scheme": "basic"},
    "ApiToken": {"type": "apiKey", "in": "header", "name": "Authorization",
                 "description": "A personal access token: `Authorization: ApiToken d2pat_...`"},
    "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "JSESSIONID",
                   "description": "The session `/api/auth/login` or a Basic login starts"},
}


def _errors(op: Op, method: str, has_path_params: bool) -> list[int]:
    """Statuses answered with a WebMessage: the operation's own and those any request of its
    kind can meet (no or bad credentials, the failed-login throttle, bodies too large, a
    cross-site write refused)."""
    codes = set(op.errors)
    if not op.public:
        codes |= {401, 429}
    if has_path_params:
        codes.add(404)
    if op.body is not None:
        codes |= {400, 413}
    if method in ("POST", "PUT", "PATCH", "DELETE"):
        codes.add(403)
    return sorted(codes)


def _response(status: int, schema: S | None, types: tuple[str, ...], head: bool) -> S:
    out: S = {"description": HTTP_STATUS_TEXT.get(status, "Found" if status == 302 else
                                                  "Not Modified" if status == 304 else "")}
    if schema is not None and not head:
        out["content"] = {t: {"schema": schema} for t in types}
    return out


def operation(op: Op, method: str, op_id: str, path_params: Mapping[str, str]) -> S:
    head = method == "HEAD"
    out: S = {"summary": op.summary, "operationId": op_id}
    params = [{"name": n, "in": "path", "required": True,
               "schema": op.path.get(n) or {"type": "string", "pattern": f"^(?:{rx})$"}}
              for n, rx in path_params.items()]
    params += [dict(p) for p in op.query]
    if params:
        out["parameters"] = params
    if op.body is not None and not head:
        out["requestBody"] = {"required": op.body_required,
                              "content": {t: {"schema": s} for t, s in op.body.items()}}
    responses: S = {str(s): _response(s, schema, op.ok_type, head) for s, schema in op.ok.items()}
    for s in _errors(op, method, bool(path_params)):
        responses[str(s)] = {"description": HTTP_STATUS_TEXT.get(s, "Error")}
        if not head:
            responses[str(s)]["content"] = {JSON: {"schema": MESSAGE}}
    out["responses"] = responses
    if op.public:
        out["security"] = [{}, *SECURITY]  # credentials optional
    return out


def _operation_id(method: str, path: str, taken: set[str]) -> str:
    """``getApiSystemInfo``; unique, as OpenAPI requires (``/hub`` and ``/hub/`` both exist)."""
    words = re.findall(r"[A-Za-z0-9]+", path)
    base = method.lower() + "".join(w[:1].upper() + w[1:] for w in words)
    op_id, n = base, 1
    while op_id in taken:
        n += 1
        op_id = f"{base}{n}"
    taken.add(op_id)
    return op_id


def build_spec(app: web.Application) -> S:
    """The OpenAPI document for ``app``'s routes; raises if a route has no description."""
    missing = undescribed(app)
    if missing:
        raise ValueError("routes missing from appliance/hub/openapi.py OPERATIONS: "
                         + ", ".join(missing))
    paths: dict[str, S] = {}
    taken: set[str] = set()
    for method, path, params in routes(app):
        op = OPERATIONS[(method if method != "HEAD" else "GET", path)]
        item = paths.setdefault(path, {})
        if method.lower() not in item:  # a method registered twice: its first route answers
            item[method.lower()] = operation(op, method, _operation_id(method, path, taken),
                                             params)
    cfg = app[CONFIG]
    return {
        "openapi": "3.0.3",
        "info": {"title": f"{cfg.get('hub', 'name')}: DHIS2 {cfg.get('hub', 'dhis2_version')} "
                          "Web API (upazila hub)", "version": __version__,
                 "description": "The subset of the DHIS2 Web API this hub serves on the LAN, "
                                "plus the hub's own /api/hub endpoints and pages."},
        "servers": [{"url": "/"}],
        "security": SECURITY,
        "paths": paths,
        "components": {"schemas": COMPONENTS, "securitySchemes": SECURITY_SCHEMES},
    }


@dataclass
class _Cache:
    """The serialized document, built on first use: routes are all registered by then."""

    body: bytes | None = None


CACHE = web.AppKey("openapi", _Cache)


async def get_openapi(request: web.Request) -> web.Response:
    cache = request.app[CACHE]
    if cache.body is None:
        cache.body = dumps(build_spec(request.app))
    return web.Response(body=cache.body, content_type=JSON, charset="utf-8")


def setup(app: web.Application) -> None:
    """Register ``/api/openapi.json``; before routes_metadata, whose ``/{collection}`` would
    otherwise take ``openapi.json``."""
    app[CACHE] = _Cache()
    app.router.add_route("GET", OPENAPI_PATH, get_openapi)
