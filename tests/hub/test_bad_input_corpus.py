"""A corpus of bad requests over every endpoint of a real hub process: malformed, truncated,
wrongly typed, oversized, 10,000-deep, badly encoded or compressed bodies; integers beyond
64 bits and injection strings in every parameter, path segment and body field; wrong
content types, 8 KiB+ URLs, huge headers, unknown methods.

Generated from the hub's own /api/openapi.json (itself built from the route table, and
``test_openapi_fuzz`` fails when a route is missing from it), so a new route gets the
same treatment; hand-written cases are added for what the description cannot say.

Every request: never a 5xx; an error reply is a JSON DHIS2 WebMessage whose status matches;
a refused request changes no stored data (snapshot per request). The hub's log must hold
no traceback. Requests go over a raw socket so that the bytes sent are exactly the bad
ones (HTTP clients repair or refuse most of them).
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import itertools
import json
import signal
import socket
import sqlite3
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from tests.conftest import ADMIN, ARTIFACTS, CHCP, HubProcess, copy_db, start_hub_process
from tests.hub.snapshot import StoreWatch, show

MAX_BODY_MB = 1  # the corpus hub's limit, so that an oversized body costs 1 MiB, not 32
AUTH = {"admin": ADMIN["Authorization"], "chcp": CHCP["Authorization"]}

INJECTIONS = (
    "' OR 1=1--", "\"; DROP TABLE datavalue; --", "<script>alert(1)</script>",
    "../../etc/passwd", "%00", "\x00", "a\r\nX-Injected: 1", "${jndi:ldap://127.0.0.1/x}",
    "{{7*7}}", "\u202e\ufeffe\u0301\U0001d518\uffff", "%s%n%x", "\\", "*", "A" * 3000,
)
BIG_INTS = ("99999999999999999999", "-99999999999999999999", "18446744073709551616",
            "9223372036854775808", "1e400")
WRONG_TYPES: dict[str, tuple[str, ...]] = {
    "integer": ("abc", "-1", "0", "1.5", "0x10", "", "NaN", *BIG_INTS[:2]),
    "boolean": ("maybe", "2", "", "null"),
    "string": ("", "null", "[]"),
    "array": ("", ",,,", "a,,b"),
}
# A value per path parameter that matches the route (so the request reaches the handler)
PATH_DEFAULTS = {"collection": "dataElements", "uid": "abcdefghijk", "id": "1",
                 "ns": "corpus", "key": "k1", "name": "hub.js", "auth": "ALL",
                 "ds": "abcdefghijk"}


# -- the raw client -------------------------------------------------------------------------------
@dataclass
class Probe:
    kind: str
    method: str
    target: bytes  # exactly what goes after the method on the request line
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    body: bytes | None = None
    user: str | None = "admin"
    expect: frozenset[int] = frozenset()  # acceptable statuses, when the case pins them
    may_drop: bool = False  # the server may close without a reply (e.g. mid-upload)

    @property
    def label(self) -> str:
        return f"{self.kind}: {self.method} {self.target[:90].decode('latin-1')}"


@dataclass
class Reply:
    status: int | None
    headers: dict[str, str]
    body: bytes
    error: str = ""


def _request_bytes(port: int, p: Probe) -> bytes:
    lines = [p.method.encode("latin-1") + b" " + p.target + b" HTTP/1.1",
             f"Host: 127.0.0.1:{port}".encode(), b"Connection: close"]
    if p.user is not None:
        lines.append(b"Authorization: " + AUTH[p.user].encode())
    names = {k.lower() for k, _ in p.headers}
    lines += [k.encode("latin-1") + b": " + v for k, v in p.headers]
    if p.body is not None and "content-length" not in names and \
            "transfer-encoding" not in names:
        lines.append(b"Content-Length: %d" % len(p.body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + (p.body or b"")


def _dechunk(body: bytes) -> bytes:
    out, rest = b"", body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out, rest = out + rest[:size], rest[size + 2:]
    return out


def _parse(raw: bytes, error: str) -> Reply:
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return Reply(None, {}, raw, error or "no complete reply")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ")[1])
    except (IndexError, ValueError):
        return Reply(None, {}, raw, f"bad status line {lines[0][:60]!r}")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    if headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    return Reply(status, headers, body, error)


def send(port: int, p: Probe, timeout: float = 20) -> Reply:
    data = _request_bytes(port, p)
    chunks: list[bytes] = []
    error = ""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        def upload() -> None:
            # OSError: the server answered and closed before reading it all
            with contextlib.suppress(OSError):
                s.sendall(data)
        # big bodies are sent beside the read, so a reply sent mid-upload is still seen
        sender = threading.Thread(target=upload, daemon=True)
        sender.start()
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except OSError as e:
            error = f"{type(e).__name__}: {e}"
        sender.join(timeout)
    return _parse(b"".join(chunks), error)


# -- corpus generation from the OpenAPI description -------------------------------------------------
def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def example(schema: dict[str, Any], spec: dict[str, Any], depth: int = 0) -> Any:
    """A plausible value of ``schema``: the base that one bad field at a time is put into."""
    schema = _resolve(schema, spec)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {k: example(v, spec, depth + 1)
                for k, v in (schema.get("properties") or {}).items() if depth < 4}
    if kind == "array":
        return [example(schema.get("items", {}), spec, depth + 1)]
    return {"integer": 1, "number": 1.5, "boolean": True, "string": "corpus"}.get(
        str(kind), {"any": "json"})


def field_paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path of a JSON value's leaves and containers (not the root)."""
    items: Any = value.items() if isinstance(value, dict) else enumerate(value) \
        if isinstance(value, list) else ()
    for k, v in items:
        yield (*prefix, k)
        yield from field_paths(v, (*prefix, k))


def with_value(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    doc = json.loads(json.dumps(doc))
    node = doc
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return doc


def deep(levels: int, kind: str) -> bytes:
    if kind == "array":
        return b"[" * levels + b"]" * levels
    return b'{"a":' * levels + b"1" + b"}" * levels


def _q(value: str) -> str:
    return quote(value, safe="")


def _target(path: str, query: Sequence[tuple[str, str]] = (), raw: str = "") -> bytes:
    q = "&".join(f"{_q(k)}={_q(v)}" for k, v in query)
    q = "&".join(x for x in (q, raw) if x)
    return (path + ("?" + q if q else "")).encode("utf-8", "surrogatepass")


@dataclass
class Operation:
    method: str
    template: str
    spec: dict[str, Any]

    def path(self, **override: str) -> str:
        out = self.template
        for p in self.path_params():
            out = out.replace("{" + p + "}", override.get(p, PATH_DEFAULTS.get(p, "x")))
        return out

    def path_params(self) -> list[str]:
        return [p["name"] for p in self.spec.get("parameters", ()) if p["in"] == "path"]

    def query_params(self) -> list[dict[str, Any]]:
        return [p for p in self.spec.get("parameters", ()) if p["in"] == "query"]

    def body_types(self) -> dict[str, Any]:
        return (self.spec.get("requestBody") or {}).get("content", {})


def operations(spec: dict[str, Any]) -> list[Operation]:
    return [Operation(m.upper(), path, op) for path, item in spec["paths"].items()
            for m, op in item.items() if m != "head"]


def _body_probe(kind: str, op: Operation, body: bytes, ctype: bytes = b"application/json",
                **kw: Any) -> Probe:
    return Probe(kind, op.method, _target(op.path()), [("Content-Type", ctype)], body, **kw)


def path_probes(op: Operation) -> Iterator[Probe]:
    for name in op.path_params():
        values = [*INJECTIONS[:10], *BIG_INTS[:3], "-1", "0"]
        for v in values:
            yield Probe(f"path {name}", op.method, _target(op.path(**{name: _q(v)})))
        yield Probe(f"path {name} raw bytes", op.method,
                    op.path(**{name: "%FF%FE%00"}).encode() + b"\xff\xfe")
        yield Probe(f"path {name} bad escape", op.method, _target(op.path(**{name: "%ZZ%"})))


def query_probes(op: Operation, rotation: Iterator[str]) -> Iterator[Probe]:
    params = op.query_params()
    for p in params:
        schema = p.get("schema", {})
        kind = schema.get("type", "string")
        for v in (next(rotation), *WRONG_TYPES.get(kind, ())):
            yield Probe(f"query {p['name']}", op.method, _target(op.path(), [(p["name"], v)]))
    if params:  # every parameter at once, each with an injection; then repeated a lot
        yield Probe("query all injected", op.method,
                    _target(op.path(), [(p["name"], next(rotation)) for p in params]))
        yield Probe("query repeated", op.method,
                    _target(op.path(), [(params[0]["name"], "x")] * 500))
        yield Probe("query bad escape", op.method,
                    _target(op.path(), raw=f"{params[0]['name']}=%E0%A4%A%ZZ%"))
        yield Probe("query invalid utf-8", op.method,
                    _target(op.path()) + f"?{params[0]['name']}=".encode() + b"%FF%FE\xff")


def body_probes(op: Operation, spec: dict[str, Any], rotation: Iterator[str]) -> Iterator[Probe]:
    types = op.body_types()
    if "application/json" in types:
        base = example(types["application/json"].get("schema", {}), spec)
        good = json.dumps(base).encode()
        yield _body_probe("body truncated", op, good[: max(1, len(good) // 2)])
        yield _body_probe("body malformed", op, b"{not json")
        yield _body_probe("body trailing garbage", op, good + b"}}{")
        for v in ([], "str", 123, None, True, [base]):
            yield _body_probe(f"body {type(v).__name__}", op, json.dumps(v).encode())
        yield _body_probe("body nested 10000 (array)", op, deep(10_000, "array"))
        yield _body_probe("body nested 10000 (object)", op, deep(10_000, "object"))
        yield _body_probe("body NaN", op, b'{"a": NaN, "b": Infinity}')
        yield _body_probe("body big int", op, b'{"a": 99999999999999999999999999}')
        yield _body_probe("body invalid utf-8", op, b'{"a": "\xff\xfe\xed\xa0\x80"}')
        yield _body_probe("body utf-16", op, json.dumps(base).encode("utf-16"),
                          b"application/json; charset=utf-16")
        yield _body_probe("body latin-1 declared", op, b'{"a": "caf\xe9"}',
                          b"application/json; charset=latin-1")
        yield _body_probe("body unknown charset", op, good, b"application/json; charset=bogus-8")
        for path in itertools.islice(field_paths(base), 40):
            for v in (next(rotation), 99999999999999999999999, {"$": [1]}, [], -1.5e308):
                yield _body_probe(f"body field {'.'.join(map(str, path))}", op,
                                  json.dumps(with_value(base, path, v)).encode())
    if "application/x-www-form-urlencoded" in types:
        form = b"application/x-www-form-urlencoded"
        props = _resolve(types["application/x-www-form-urlencoded"]["schema"], spec).get(
            "properties", {})
        for name in props:
            for v in (next(rotation), next(rotation)):
                yield _body_probe(f"form {name}", op, f"{name}={_q(v)}".encode(), form)
        yield _body_probe("form bad escape", op, b"a=%ZZ%&%FF=\xff\xfe", form)
        yield _body_probe("form unknown charset", op, b"a=b", form + b"; charset=bogus-8")
        yield _body_probe("form utf-16", op, "a=b".encode("utf-16"), form + b"; charset=utf-16")
    if types:
        ctype = next(iter(types)).encode()
        yield _body_probe("wrong content type", op, b"<x/>", b"application/xml")
        yield _body_probe("wrong content type", op, b"\x89PNG\r\n", b"image/png")
        yield _body_probe("multipart without boundary", op, b"--x\r\n", b"multipart/form-data")
        yield _body_probe("content type junk", op, b"{}", b";;; charset=\xff")
        yield _body_probe("oversized", op, b"[" + b"1," * (MAX_BODY_MB * 600_000) + b"1]",
                          ctype, may_drop=True)
    if op.method in ("POST", "PUT", "DELETE"):
        gz = [("Content-Type", b"application/json"), ("Content-Encoding", b"gzip")]
        target = _target(op.path())
        yield Probe("gzip corrupt", op.method, target, gz, gzip.compress(b'{"a": 1}')[:-9] + b"xx")
        yield Probe("gzip of nothing gzip", op.method, target, gz, b'{"a": 1}')
        yield Probe("gzip of invalid json", op.method, target, gz, gzip.compress(b"{not json"))
        yield Probe("deflate corrupt", op.method, target,
                    [("Content-Type", b"application/json"), ("Content-Encoding", b"deflate")],
                    zlib.compress(b"{}")[:3])
        yield Probe("unknown encoding", op.method, target,
                    [("Content-Type", b"application/json"), ("Content-Encoding", b"br, zz")],
                    b"{}")


def special_probes(ops: list[Operation]) -> Iterator[Probe]:
    """What no description says: the HTTP layer itself, auth headers, odd paths."""
    long_q = "fields=" + "a" * 9000
    for op in ops[:: max(1, len(ops) // 8)]:  # a spread of endpoints
        yield Probe("URL over 8 KiB", op.method, _target(op.path(), raw=long_q),
                    expect=frozenset({400, 414}))
        yield Probe("huge header", op.method, _target(op.path()),
                    [("X-Huge", b"h" * 20_000)], expect=frozenset({400, 431}))
        yield Probe("many headers", op.method, _target(op.path()),
                    [(f"X-H{i}", b"v") for i in range(300)])
        yield Probe("unknown method", "BREW", _target(op.path()),
                    expect=frozenset({400, 405, 501}))
    yield Probe("unknown method", "PROPFIND", b"/api/me", expect=frozenset({400, 405, 501}))
    yield Probe("bad method token", "GE(T", b"/api/me", expect=frozenset({400, 405, 501}))
    yield Probe("fields nested 2000", "GET", _target("/api/me", [("fields", "a[" * 2000)]))
    yield Probe("fields nested 2000", "GET",
                _target("/api/dataElements", [("fields", "a(" * 2000)]))
    yield Probe("filter nested", "GET",
                _target("/api/dataElements", [("filter", "name:in:" + "[" * 2000)]))
    for path in ("/api/%00", "/api/..%2F..%2Fetc%2Fpasswd", "/hub/static/..%2F..%2Fapp.py",
                 "/hub/static/%2e%2e/%2e%2e/app.py", "/api/dataStore/%FF", "/api/%ZZ",
                 "/api//me", "/api/41/me.json.json", "/api/99999999999999999999/me",
                 "/api/hub/conflicts/99999999999999999999999/resolve",
                 "/api/hub/conflicts/-1/resolve", "/api/dataElements/abcdefghijk%00"):
        for method in ("GET", "POST"):
            yield Probe("odd path", method, path.encode(),
                        [("Content-Type", b"application/json")], b'{"choose": "hub"}')
    yield Probe("asterisk target", "OPTIONS", b"*")
    yield Probe("absolute target", "GET", b"http://evil.example/api/me")
    yield Probe("limit beyond 64 bits", "GET", b"/api/system/id?limit=99999999999999999999")
    yield Probe("limit beyond 64 bits", "GET",
                b"/api/dataValueSets?dataSet=x&period=202401&orgUnit=y&limit=99999999999999999999")
    for header in (b"Basic", b"Basic !!!", b"Basic " + base64.b64encode(b"nocolon"),
                   b"Basic " + base64.b64encode(b"\xff\xfe:\xff"), b"ApiToken ",
                   b"ApiToken d2pat_' OR 1=1--", b"Bearer x", b"Digest x", b"\xff\xfe",
                   b"Basic " + base64.b64encode(b"nosuchuser:" + b"p" * 5000)):
        yield Probe("bad Authorization", "GET", b"/api/me", [("Authorization", header)],
                    user=None, expect=frozenset({400, 401, 429}))
    for cookie in (b"JSESSIONID=' OR 1=1--", b"JSESSIONID=" + b"x" * 6000, b"JSESSIONID=\xff",
                   b"=;=;;JSESSIONID"):
        yield Probe("bad cookie", "GET", b"/api/me", [("Cookie", cookie)], user=None,
                    expect=frozenset({400, 401}))
    framing = [("Content-Type", b"application/json")]
    yield Probe("negative length", "POST", b"/api/dataValueSets",
                [*framing, ("Content-Length", b"-5")], b"{}")
    yield Probe("length and chunked", "POST", b"/api/dataValueSets",
                [*framing, ("Content-Length", b"2"), ("Transfer-Encoding", b"chunked")],
                b"2\r\n{}\r\n0\r\n\r\n")
    yield Probe("bad chunk", "POST", b"/api/dataValueSets",
                [*framing, ("Transfer-Encoding", b"chunked")], b"zz\r\n{}\r\n0\r\n\r\n")
    yield Probe("csv invalid utf-8", "POST", b"/api/dataValueSets",
                [("Content-Type", b"application/csv")], b"dataelement,period\n\xff\xfe,1\n")
    yield Probe("csv injection", "POST", b"/api/dataValueSets",
                [("Content-Type", b"application/csv")],
                b"dataelement,period,orgunit,categoryoptioncombo,attributeoptioncombo,value\n"
                b"' OR 1=1--,=cmd|' /C calc'!A0,<script>,x,y,\"; DROP TABLE\n")
    yield Probe("csv ragged", "POST", b"/api/dataValueSets",
                [("Content-Type", b"application/csv")], b'a,"b\n' + b"," * 5000 + b"\n\x00\n")


def build_corpus(spec: dict[str, Any]) -> list[Probe]:
    ops = operations(spec)
    rotation = itertools.cycle(INJECTIONS)
    corpus: list[Probe] = []
    for op in ops:
        corpus += path_probes(op)
        queries = list(query_probes(op, rotation))
        corpus += queries
        # the community-clinic user takes other paths through the same handlers
        corpus += [Probe(p.kind + " (chcp)", p.method, p.target, p.headers, p.body, "chcp")
                   for p in queries[::3]]
        corpus += body_probes(op, spec, rotation)
        if "security" not in op.spec:  # needs credentials: 401 without, as a WebMessage
            corpus.append(Probe("no credentials", op.method, _target(op.path()), user=None,
                                expect=frozenset({401})))
    corpus += special_probes(ops)
    # deletions last, so that the entries the other probes aim at are still there
    corpus.sort(key=lambda p: p.method == "DELETE")
    return corpus


# -- checking the replies -------------------------------------------------------------------------
def reply_problem(p: Probe, r: Reply) -> str | None:
    """What is wrong with this reply, or None."""
    if r.status is None:
        return None if p.may_drop else f"no HTTP reply ({r.error})"
    if r.status >= 500:
        return f"{r.status} server error: {r.body[:300]!r}"
    if p.expect and r.status not in p.expect:
        return f"status {r.status}, expected one of {sorted(p.expect)}"
    if r.status < 400 or p.method == "HEAD":
        return None
    if not r.headers.get("content-type", "").startswith("application/json"):
        return (f"{r.status} is not a JSON WebMessage: {r.headers.get('content-type')} "
                f"{r.body[:120]!r}")
    try:
        msg = json.loads(r.body)
    except ValueError:
        return f"{r.status} body is not JSON: {r.body[:120]!r}"
    if not isinstance(msg, dict) or msg.get("httpStatusCode") != r.status or \
            msg.get("status") not in ("ERROR", "WARNING") or \
            not isinstance(msg.get("message"), str) or not msg.get("httpStatus"):
        return f"{r.status} is not a WebMessage with that status: {r.body[:200]!r}"
    if "Traceback" in msg["message"]:
        return f"{r.status} WebMessage shows a traceback"
    return None


def add_conflict(db: Path) -> None:
    """Conflict 1, in the community clinic's org unit: resolve probes then get past the
    lookup to the body checks."""
    with sqlite3.connect(db) as c:
        de = c.execute("SELECT uid FROM metadata WHERE type='dataElements' ORDER BY uid"
                       ).fetchone()[0]
        coc = c.execute("SELECT uid FROM metadata WHERE type='categoryOptionCombos' "
                        "AND name='default'").fetchone()[0]
        ou = json.loads(c.execute("SELECT doc FROM users WHERE username='chcp'").fetchone()[0]
                        )["organisationUnits"][0]["id"]
        key = {"de": de, "pe": "202401", "ou": ou, "coc": coc, "aoc": coc}
        c.execute("INSERT INTO sync_conflict(id, entity, key, hub_value, hub_user, hub_at, "
                  "national_value, national_user, national_at, winner, policy, reason, "
                  "detected_at, org_unit) VALUES (1, 'datavalue', ?, '5', 'chcp', "
                  "'2024-02-01T10:00:00.000', '7', 'dghs', '2024-02-01T11:00:00.000', "
                  "'national', 'last-writer-wins', 'both changed', '2024-02-02T00:00:00.000', ?)",
                  (json.dumps(key), ou))


@pytest.fixture(params=["hub", "national"])
def corpus_hub(request: pytest.FixtureRequest, demo_template: dict[str, Path],
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, HubProcess]]:
    """A real hub process (or the national stand-in, whose metadata import and users list
    the hub does not serve) over a copy of the demo database."""
    role = request.param
    data_dir = tmp_path_factory.mktemp(f"corpus-{role}")
    db = copy_db(demo_template[role], data_dir)
    if role == "hub":
        add_conflict(db)
    conf = data_dir / "hub.toml"
    conf.write_text(f"[hub]\nmax_body_mb = {MAX_BODY_MB}\n")
    hp = start_hub_process(data_dir, role=role, extra=["--config", str(conf)])
    try:
        # an entry for the dataStore probes to aim at (PATH_DEFAULTS ns/key)
        r = requests.post(hp.api("dataStore/corpus/k1"), json={"a": 1}, headers=ADMIN,
                          timeout=30)
        assert r.status_code == 201, r.text
        yield role, hp
    finally:
        hp.kill(signal.SIGTERM)


@pytest.mark.slow
def test_bad_input_corpus(corpus_hub: tuple[str, HubProcess],
                          request: pytest.FixtureRequest) -> None:
    role, hub = corpus_hub
    spec = requests.get(hub.api("openapi.json"), headers=ADMIN, timeout=30).json()
    corpus = build_corpus(spec)
    port = int(hub.url.rsplit(":", 1)[1])
    log_path = hub.data_dir / f"hub-{port}.log"
    watch = StoreWatch(hub.data_dir / "hub.db")
    statuses: Counter[str] = Counter()
    problems: dict[tuple[str, str], list[Any]] = {}
    counts: Counter[str] = Counter()
    t0 = time.monotonic()
    log = log_path.open("rb")
    log.seek(0, 2)
    try:
        for p in corpus:
            before = watch.snapshot()
            r = send(port, p)
            statuses[str(r.status)] += 1
            what = reply_problem(p, r)
            if r.status is not None and r.status >= 500:
                counts["server_errors"] += 1
            if r.status is None:
                counts["no_reply"] += 1
            if what and "WebMessage" in what:
                counts["not_webmessage"] += 1
            if r.status is None or r.status >= 400:
                changes = watch.changes_since(before)
                if changes:
                    counts["changed_rows"] += sum(changes.values())
                    what = (what + "; " if what else "") + f"refused, yet changed {changes}"
            # a traceback is pinned on the request that caused it
            text = log.read().decode(errors="replace")
            if "Traceback" in text:
                counts["tracebacks"] += text.count("Traceback")
                what = (what + "; " if what else "") + "hub logged a traceback: " + \
                    text[text.index("Traceback"):][-300:].replace("\n", " | ")
            if what:
                where = p.target.split(b"?")[0][:60].decode("latin-1")
                entry = problems.setdefault((f"{p.method} {where}", what[:100]),
                                            [0, p.label, what])
                entry[0] += 1
        time.sleep(0.5)  # late log lines (a connection dropped mid-request)
        counts["tracebacks"] += log.read().decode(errors="replace").count("Traceback")
    finally:
        watch.close()
        log.close()
    seconds = round(time.monotonic() - t0, 1)
    summary = {"corpus": len(corpus), "seconds": seconds, "statuses": dict(statuses),
               "server_errors": counts["server_errors"], "tracebacks": counts["tracebacks"],
               "changed_rows": counts["changed_rows"], "no_reply": counts["no_reply"],
               "not_webmessage": counts["not_webmessage"],
               "problems": [{"kind": k, "count": n, "example": ex, "what": w}
                            for (k, _), (n, ex, w) in sorted(problems.items())]}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"bad-input-summary-{role}.json").write_text(json.dumps(summary, indent=1) + "\n")
    report = [f"bad-input corpus ({role}): {len(corpus)} requests in {seconds} s: "
              f"{counts['server_errors']} 5xx, {counts['tracebacks']} tracebacks, "
              f"{counts['changed_rows']} changed rows, {counts['not_webmessage']} error replies "
              f"not a WebMessage, {counts['no_reply']} without reply; "
              f"{len(problems)} distinct problems"]
    report += [f"  {n:4d} x {ex[:100]}: {w[:160]}"
               for (_, _), (n, ex, w) in sorted(problems.items())]
    show(request.config, report)
    assert len(corpus) >= 500
    assert not problems, "\n".join(report)
