"""The hub describes every route it serves at /api/openapi.json, and a property-based
fuzzer (schemathesis) driven by that description finds no 5xx, no reply the description
does not allow, and no refused request that changed stored data.

``HUB_FUZZ_EXAMPLES`` sets the examples per operation, user and generation mode (small by
default so ``make test`` stays quick; ``make fuzz`` runs many more, with fresh randomness).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from appliance.hub import openapi
from appliance.hub.app import create_app
from appliance.national.app import create_app as create_national_app
from appliance.store import Store
from tests.conftest import (
    ADMIN,
    ARTIFACTS,
    CHCP,
    HubProcess,
    RunningHub,
    copy_db,
    make_config,
    start_hub_process,
)
from tests.hub.snapshot import StoreWatch, show

EXAMPLES = int(os.environ.get("HUB_FUZZ_EXAMPLES", "10"))
# make test replays the same cases every run (a failure there is reproducible);
# make fuzz sets HUB_FUZZ_RANDOM=1 to look somewhere new each time
RANDOM = os.environ.get("HUB_FUZZ_RANDOM", "") == "1"
USERS = {"admin": ADMIN, "chcp": CHCP}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


# -- the description covers the route table ---------------------------------------------------
@pytest.mark.parametrize("role", ["hub", "national"])
def test_every_route_is_described(role: str, demo_template: dict[str, Path],
                                  tmp_path: Path) -> None:
    """A route registered without an entry in openapi.OPERATIONS fails here."""
    store = Store(copy_db(demo_template[role], tmp_path))
    try:
        cfg = make_config(tmp_path, role)
        app = create_national_app(cfg, store) if role == "national" else create_app(cfg, store)
        assert openapi.undescribed(app) == []
        spec = openapi.build_spec(app)
        for method, path, params in openapi.routes(app):
            op = spec["paths"][path][method.lower()]
            named = {p["name"] for p in op.get("parameters", ()) if p["in"] == "path"}
            assert named == set(params), f"{method} {path}"
        # the plain /api/... form, not the /api{/41}/...{.json} pattern add_api registers
        assert not [p for p in spec["paths"] if "{_" in p or "/41/" in p]
        assert "/api/openapi.json" in spec["paths"]
        ids = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
        assert len(ids) == len(set(ids))
    finally:
        store.close()


async def test_openapi_json_needs_login(hub: RunningHub, http: aiohttp.ClientSession) -> None:
    async with http.get(hub.api("openapi.json")) as r:
        assert r.status == 401
        assert (await r.json())["httpStatusCode"] == 401
    for path in ("openapi.json", "41/openapi.json"):
        async with http.get(hub.api(path), headers=CHCP) as r:
            assert r.status == 200 and r.content_type == "application/json"
            doc = await r.json()
    assert doc == json.loads(json.dumps(openapi.build_spec(hub.app)))
    assert doc["openapi"].startswith("3.0")
    assert set(doc["components"]["securitySchemes"]) == {"basicAuth", "ApiToken", "cookieAuth"}
    schema = schemathesis.openapi.from_dict(doc)  # the fuzzer accepts it
    assert sum(1 for _ in schema.get_all_operations()) >= 60


# -- the fuzzer --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hub_proc(demo_template: dict[str, Path],
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """A real hub process over a copy of the demo database."""
    data_dir = tmp_path_factory.mktemp("fuzzhub")
    copy_db(demo_template["hub"], data_dir)
    hp = start_hub_process(data_dir)
    try:
        yield hp
    finally:
        hp.kill(signal.SIGTERM)


@dataclass
class FuzzRun:
    url: str
    watch: StoreWatch
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: int = 0
    changed_rows: int = 0
    # (operation, what) -> (count, first example), so one bug is one line of the report
    problems: dict[tuple[str, str], list[Any]] = field(default_factory=dict)

    def problem(self, label: str, what: str, example: str) -> None:
        entry = self.problems.setdefault((label, what), [0, example[:1500]])
        entry[0] += 1

    def exercise(self, case: schemathesis.Case, user: str, headers: dict[str, str]) -> None:
        label = f"{case.operation.label} as {user}"
        before = self.watch.snapshot()
        try:
            response = case.call(base_url=self.url, headers=headers, allow_redirects=False,
                                 timeout=60)
        except requests.RequestException as e:
            self.requests += 1
            self.problem(label, "no HTTP reply", f"{type(e).__name__}: {e}\n{case.as_curl_command()}")
            return
        self.requests += 1
        status = response.status_code
        self.statuses[status] += 1
        if status >= 500:
            self.server_errors += 1
        if status >= 400:
            changes = self.watch.changes_since(before)
            if changes:
                self.changed_rows += sum(changes.values())
                self.problem(label, f"refused with {status} but changed {changes}",
                             case.as_curl_command(headers=headers))
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (Failure, FailureGroup) as e:
            failures = e.exceptions if isinstance(e, FailureGroup) else (e,)
            for f in failures:
                self.problem(label, f"{status}: {f.title}",
                             f"{f.message}\n{case.as_curl_command(headers=headers)}")

    def summary(self) -> dict[str, Any]:
        return {"examples_per_operation": EXAMPLES, "requests": self.requests,
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "server_errors": self.server_errors, "changed_rows": self.changed_rows,
                "problems": [{"operation": op, "what": what, "count": n, "example": ex}
                             for (op, what), (n, ex) in sorted(self.problems.items())]}


def _fuzz(run: FuzzRun, operation: schemathesis.APIOperation, mode: GenerationMode,
          user: str) -> None:
    try:
        strategy = operation.as_strategy(generation_mode=mode)
    except Exception as e:  # pragma: no cover - schemathesis refused the operation
        run.problem(operation.label, f"cannot generate {mode.value} cases", repr(e))
        return

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not RANDOM,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def one(case: schemathesis.Case) -> None:
        run.exercise(case, user, USERS[user])

    # no parameters and no body: nothing to make negative cases of
    with contextlib.suppress(Unsatisfiable):
        one()


@pytest.mark.slow
def test_fuzz_hub_against_its_openapi(hub_proc: HubProcess,
                                      request: pytest.FixtureRequest) -> None:
    doc = requests.get(hub_proc.api("openapi.json"), headers=ADMIN, timeout=30).json()
    schema = schemathesis.openapi.from_dict(doc)
    watch = StoreWatch(hub_proc.data_dir / "hub.db")
    run = FuzzRun(hub_proc.url, watch)
    t0 = time.monotonic()
    try:
        operations = [r.ok() for r in schema.get_all_operations()]
        for operation in operations:
            for user in USERS:
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    _fuzz(run, operation, mode, user)
    finally:
        watch.close()
    log = (hub_proc.data_dir / f"hub-{hub_proc.url.rsplit(':', 1)[1]}.log").read_text(
        errors="replace")
    summary = {"operations": len(operations), "seconds": round(time.monotonic() - t0, 1),
               **run.summary(), "log_tracebacks": log.count("Traceback")}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "fuzz-summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    report = [f"openapi fuzz: {run.requests} requests over {len(operations)} operations "
              f"({EXAMPLES} examples each per user and mode) in {summary['seconds']} s: "
              f"{run.server_errors} 5xx, {run.changed_rows} rows changed by refused requests, "
              f"{summary['log_tracebacks']} tracebacks in the hub log, "
              f"{len(run.problems)} distinct problems"]
    report += [f"  {n:4d} x {op}: {what}" for (op, what), (n, _) in sorted(run.problems.items())]
    show(request.config, report)
    assert not run.problems, "\n\n".join(
        f"{op}: {what} ({n}x)\n{ex}" for (op, what), (n, ex) in sorted(run.problems.items()))
    assert summary["log_tracebacks"] == 0, "the hub logged tracebacks; see " + str(hub_proc.data_dir)

