"""Reading DHIS2 import summaries: which pushed value was accepted, which refused and why.

Pure. Handles, by shape rather than by version number:

* 2.38-2.42: a WebMessage (``httpStatus``...) whose ``response`` is the ImportSummary;
  HTTP 200 on SUCCESS, 409 on WARNING/ERROR. Conflicts carry ``indexes`` (0-based into
  the POSTed ``dataValues``) and an ``errorCode`` E76xx; ``importCount.imported`` counts
  new values, ``updated`` changed ones, ``ignored`` unchanged and refused ones.
* 2.43: the same envelope, but values are imported through SQL: codes are E80xx/E81xx,
  ``imported`` is always 0 and ``updated`` counts every value that succeeded.
* before 2.38 (and some proxies): a bare ImportSummary without the envelope, and
  conflicts that may lack ``indexes``; those are matched to values by ``object``.

Anything else (HTML, a login page, an error WebMessage without a summary) is not an
import summary: ``parse_import_summary`` raises ``NationalRejected`` and the caller must
not mark any value as synced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import NationalRejected

# Codes meaning "the period is closed for data entry at national" (expired, approved,
# outside data input periods or open future periods, locked): national wins there.
LOCK_CODES = frozenset({
    "E7640", "E7641", "E7642", "E7643", "E2017", "E2019", "E2022", "E2025",
    "E8030", "E8031", "E8032", "E8033",
})
_LOCK_WORDS = ("expir", "approved", "locked", "not open", "closed for", "open future")

# Whole-import failures: nothing of this request was imported.
ABORT_CODES = frozenset({"E7600", "E7601", "E7602", "E7603", "E7604"})

_KEY_FIELDS = ("dataElement", "period", "orgUnit", "categoryOptionCombo",
               "attributeOptionCombo", "dataSet", "organisationUnit", "value")


def is_lock(code: str | None, message: str = "") -> bool:
    if code in LOCK_CODES:
        return True
    low = message.lower()
    return code is None and any(w in low for w in _LOCK_WORDS)


@dataclass
class Refusal:
    code: str | None
    message: str

    @property
    def locked(self) -> bool:
        return is_lock(self.code, self.message)


@dataclass
class ImportResult:
    status: str
    n: int
    rejected: dict[int, Refusal] = field(default_factory=dict)
    aborted: Refusal | None = None
    # conflicts national did not tie to a value (no indexes, no matching object): the
    # caller must not call anything in this request accepted; it splits and re-sends
    ambiguous: list[Refusal] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    style: str = "2.41"

    def accepted(self) -> list[int]:
        if self.aborted is not None or self.ambiguous:
            return []
        return [i for i in range(self.n) if i not in self.rejected]


def _summary_of(body: Any) -> Mapping[str, Any] | None:
    if not isinstance(body, Mapping):
        return None
    resp = body.get("response")
    if isinstance(resp, Mapping) and ("importCount" in resp or
                                      resp.get("responseType") == "ImportSummary"):
        return resp
    if "importCount" in body or body.get("responseType") == "ImportSummary":
        return body
    return None


def _style(codes: list[str]) -> str:
    # informational only: the parser treats both shapes the same way (indexes decide);
    # a 2.43 reply whose values all succeeded looks like a 2.41 reply of updates
    return "2.43" if any(c.startswith(("E80", "E81")) for c in codes) else "2.41"


def parse_import_summary(http_status: int, body: Any, n_sent: int,
                         sent: Sequence[Mapping[str, Any]] | None = None) -> ImportResult:
    """Per-index outcome of one POST of ``n_sent`` values (or registrations)."""
    summary = _summary_of(body)
    if summary is None:
        msg = body.get("message") if isinstance(body, Mapping) else None
        code = body.get("errorCode") if isinstance(body, Mapping) else None
        raise NationalRejected(
            f"national answered HTTP {http_status} without an import summary"
            + (f": {msg}" if msg else ""), error_code=code)
    status = str(summary.get("status") or "").upper() or "SUCCESS"
    counts = {k: int(v) for k, v in (summary.get("importCount") or {}).items()
              if isinstance(v, (int, float))}
    conflicts = [c for c in summary.get("conflicts") or [] if isinstance(c, Mapping)]
    codes = [str(c.get("errorCode")) for c in conflicts if c.get("errorCode")]
    result = ImportResult(status=status, n=n_sent, counts=counts, style=_style(codes))
    unplaced: list[Mapping[str, Any]] = []
    for c in conflicts:
        refusal = Refusal(c.get("errorCode"), str(c.get("value") or c.get("message") or
                                                  "refused by national"))
        indexes = [i for i in c.get("indexes") or [] if isinstance(i, int) and 0 <= i < n_sent]
        if indexes:
            for i in indexes:
                result.rejected.setdefault(i, refusal)
        else:
            unplaced.append(c)
    for i in summary.get("rejectedIndexes") or []:
        if isinstance(i, int) and 0 <= i < n_sent and i not in result.rejected:
            result.rejected[i] = Refusal(None, "refused by national (no reason given)")
    for c in unplaced:
        code = c.get("errorCode")
        refusal = Refusal(code, str(c.get("value") or "refused by national"))
        if code in ABORT_CODES:
            result.aborted = refusal
            continue
        matched = _match_by_object(c, sent) if sent is not None else []
        if n_sent == 1:
            matched = [0]
        if matched:
            for i in matched:
                result.rejected.setdefault(i, refusal)
        else:
            result.ambiguous.append(refusal)
    if status == "ERROR" and not result.rejected and result.aborted is None and \
            not result.ambiguous:
        # nothing refused, nothing imported: the whole import failed. DHIS2 2.41 answers a
        # body it cannot read ("The import process failed: ...", a CSV it could not parse)
        # so, with every count 0
        succeeded = counts.get("imported", 0) + counts.get("updated", 0) + \
            counts.get("deleted", 0)
        if succeeded == 0 and n_sent > 0:
            result.aborted = Refusal(None, str(summary.get("description") or
                                               "national refused the whole import"))
    return result


def _match_by_object(conflict: Mapping[str, Any],
                     sent: Sequence[Mapping[str, Any]]) -> list[int]:
    """Pre-2.36 conflicts name the offending object (a UID, period or the value itself)
    but no index. Only an object that picks out values unambiguously is used: a data
    element UID shared by every value of a chunk would condemn them all."""
    obj = conflict.get("object")
    if not obj:
        return []
    hits = [i for i, v in enumerate(sent) if any(v.get(k) == obj for k in _KEY_FIELDS)]
    return hits if len(hits) == 1 else []
