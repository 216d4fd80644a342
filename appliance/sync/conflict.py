"""Conflict detection and resolution rules (DESIGN.md §6). Pure.

A conflict exists when national changed a key after the hub's *base* (the national
``lastUpdated`` the hub edit was made from) while the hub holds a pending edit of it, and
the two values differ. The winner is chosen by policy:

* ``latest-wins`` (default): the later edit, comparing national's ``lastUpdated`` with the
  hub edit placed on national's time line (see ``clock.place_edit``); a tie goes to
  national, the system of record;
* ``national-wins`` / ``hub-wins``: per data set;
* whatever the policy, national wins when the period is locked, expired or approved there.

The loser is never dropped: the caller writes it to the conflict log.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..dhis2.timefmt import format_ts

LATEST, NATIONAL, HUB = "latest-wins", "national-wins", "hub-wins"
POLICIES = (LATEST, NATIONAL, HUB)


@dataclass(frozen=True)
class Side:
    value: str | None
    deleted: bool = False
    comment: str | None = None
    user: str | None = None
    at_ms: int | None = None   # on national's time line


@dataclass(frozen=True)
class Decision:
    winner: str   # 'hub' | 'national'
    policy: str
    reason: str


def same(a: Side, b: Side) -> bool:
    """Equal as data: a value equal on both sides is not a conflict."""
    if a.deleted or b.deleted:
        return a.deleted == b.deleted
    return a.value == b.value and (a.comment or None) == (b.comment or None)


def changed_since(national_last_updated_ms: int | None, base_ms: int | None) -> bool:
    """Did national change the key after the hub's base? Unknown times count as changed."""
    if national_last_updated_ms is None or base_ms is None:
        return True
    return national_last_updated_ms > base_ms


def normalise_policy(policy: str | None, default: str = LATEST) -> str:
    p = (policy or default).strip().lower()
    return p if p in POLICIES else default


def decide(policy: str, hub: Side, national: Side, locked: str | None = None) -> Decision:
    policy = normalise_policy(policy)
    if locked:
        return Decision("national", policy, f"period is closed at national ({locked}); "
                        "national's value stands")
    if policy == NATIONAL:
        return Decision("national", policy, "data set policy: national wins")
    if policy == HUB:
        return Decision("hub", policy, "data set policy: the hub wins")
    h, n = hub.at_ms, national.at_ms
    if h is None or n is None:
        return Decision("national", policy, "edit times unknown; national kept")
    if h > n:
        return Decision("hub", policy, f"hub edit ({format_ts(h)}) is later than national's "
                        f"({format_ts(n)})")
    if h == n:
        return Decision("national", policy, "edits at the same moment; national kept")
    return Decision("national", policy, f"national edit ({format_ts(n)}) is later than the "
                    f"hub's ({format_ts(h)})")
