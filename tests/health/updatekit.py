"""What the update agent's tests share (#13): a real fleet service holding real signed
releases, a hub store, an ``Updater`` with controllable clocks, and ``FakeSlots``.

``FakeSlots`` stands in for the boot hardware only: which slot is booted, writing the
other one, marking slots good, bad or active, and a power cycle that picks the next slot
the way GRUB's boot counting does (``<slot>_TRY`` set on each boot, reset by mark-good;
a tried slot that was not marked good is skipped). The bundle's signature and manifest
are still read by the real ``rauc info`` (``RaucInstaller.check_bundle``).
``tests/health/test_updater_rauc.py`` runs the same agent against the real RAUC service.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from appliance.fleet import releases, rollouts
from appliance.health.quiet import QuietHours
from appliance.health.rauc import BundleInfo, RaucInstaller, Slot, SystemStatus
from appliance.health.updater import Updater, UpdateSettings
from appliance.store import Store, synclog

from ..fleet.conftest import FleetServer, make_config, serve_fleet
from ..rauckit import COMPATIBLE

DHAKA = ZoneInfo("Asia/Dhaka")
HUB = "ramu"


def dhaka(hour: int, minute: int = 0) -> float:
    return datetime(2026, 3, 10, hour, minute, tzinfo=DHAKA).timestamp()


@dataclass
class FakeSlots:
    """A and B, as the bootloader and RAUC would keep them."""

    keyring: Path
    compatible: str = COMPATIBLE
    booted: str = "A"
    primary: str = "A"
    versions: dict[str, str | None] = field(default_factory=lambda: {"A": None, "B": None})
    good: dict[str, bool] = field(default_factory=lambda: {"A": True, "B": False})
    tried: dict[str, bool] = field(default_factory=lambda: {"A": True, "B": False})
    calls: list[tuple[str, str]] = field(default_factory=list)
    boot_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    fail_install: str | None = None

    NAMES = {"A": "rootfs.0", "B": "rootfs.1"}

    def _bootname(self, slot: str) -> str:
        if slot == "booted":
            return self.booted
        if slot == "other":
            return self.other
        return next(b for b, n in self.NAMES.items() if slot in (b, n))

    @property
    def other(self) -> str:
        return "B" if self.booted == "A" else "A"

    def status(self) -> SystemStatus:
        return SystemStatus(self.compatible, self.booted, self.NAMES[self.primary], tuple(
            Slot(self.NAMES[b], b, "booted" if b == self.booted else "inactive",
                 "good" if self.good[b] and not (self.tried[b] and b != self.booted) else "bad",
                 self.versions[b]) for b in ("A", "B")))

    def check_bundle(self, path: Path) -> BundleInfo:
        return RaucInstaller(keyring=str(self.keyring)).check_bundle(path)  # real rauc info

    def install(self, path: Path) -> None:
        self.calls.append(("install", path.name))
        if self.fail_install:
            from appliance.errors import UpdateError
            raise UpdateError(self.fail_install)
        info = self.check_bundle(path)  # RAUC reads the manifest it installs
        self.versions[self.other] = info.version
        self.good[self.other], self.tried[self.other] = True, False
        self.primary = self.other

    def mark_good(self) -> None:
        self.calls.append(("mark-good", self.booted))
        self.good[self.booted], self.tried[self.booted] = True, False

    def mark_bad(self) -> None:
        self.calls.append(("mark-bad", self.booted))
        self.good[self.booted] = False

    def mark_active(self, slot: str) -> None:
        b = self._bootname(slot)
        self.calls.append(("mark-active", b))
        self.primary = b
        self.good[b], self.tried[b] = True, False

    def power_cycle(self) -> str:
        """The next boot: the primary slot if good and untried, else the other."""
        for b in (self.primary, "B" if self.primary == "A" else "A"):
            was_tried = self.tried[b]
            self.tried[b] = True
            if self.good[b] and not was_tried:
                self.booted = b
                break
        else:
            raise AssertionError("no bootable slot")
        self.boot_id = str(uuid.uuid4())
        return self.booted

    def did(self, what: str) -> list[str]:
        return [s for w, s in self.calls if w == what]


@dataclass
class Clocks:
    wall: float = field(default_factory=lambda: dhaka(14))
    up: float = 30.0

    def __call__(self) -> float:
        return self.wall


@dataclass
class Hub:
    """One hub's agent over its store, its slots and its clocks."""

    store: Store
    slots: Any  # FakeSlots, or the real RAUC through the rig
    clocks: Clocks
    settings: UpdateSettings
    boot_id: Callable[[], str]
    reboots: list[str] = field(default_factory=list)
    hub_answers: bool | None = True  # None: ask the real hub at settings.hub_status_url
    health_ok: bool = True
    sync_requests: list[str] = field(default_factory=list)
    reboot_hook: Callable[[], None] | None = None

    def agent(self) -> Updater:
        """A new agent process (as after a restart or a boot)."""
        def reboot() -> None:
            self.reboots.append(self.boot_id())
            if self.reboot_hook is not None:
                self.reboot_hook()
        installer = self.slots.installer() if hasattr(self.slots, "installer") else self.slots
        extra: dict[str, Any] = {}
        if self.hub_answers is not None:
            extra["hub_ok"] = lambda _url: self.hub_answers
        return Updater(self.settings, self.store, installer, reboot=reboot,
                       wall=self.clocks, uptime=lambda: self.clocks.up,
                       boot_id=self.boot_id, health_ok=lambda: self.health_ok,
                       request_sync=self.sync_requests.append, fallback_version="1.0.0",
                       **extra)

    async def sync_cycle(self) -> None:
        """What the sync worker writes when it finishes a cycle (link down or not)."""
        await self.store.write(lambda tx: synclog.add_event(
            tx, "error", "cycle", "timer: national unreachable", "2026-03-10T00:00:00Z",
            keep=200))


async def drive(agent: Updater, until: Callable[[], bool], *, steps: int = 400,
                between: Callable[[], Awaitable[None]] | None = None) -> None:
    """Step the agent until ``until()``; its delays are not waited out (a real loop would),
    except a short pause so a worker thread or a proxy can move."""
    for _ in range(steps):
        if until():
            return
        delay = await agent.step()
        if between is not None:
            await between()
        if delay > 0:
            await _pause(min(delay, 0.02))
    raise AssertionError(f"not reached after {steps} steps: {agent.rec}")


async def _pause(s: float) -> None:
    import asyncio
    await asyncio.sleep(s)


def settings(directory: Path, url: str, token: str, **over: Any) -> UpdateSettings:
    base: dict[str, Any] = dict(
        url=url + "/api/updates/check", hub_id=HUB, token=token, directory=directory,
        hub_status_url="http://hub.invalid/api/hub/status", check_every_s=3600.0,
        quiet=QuietHours.parse("02:00-05:00", "Asia/Dhaka"), healthy_for_s=120.0,
        commit_deadline_s=900.0, retry_s=0.02, slice_s=0.5, tick_s=0.0, timeout_s=10.0)
    base.update(over)
    return UpdateSettings(**base)


@contextlib.asynccontextmanager
async def fleet_with(tmp: Path, keyring: Path, bundles: dict[str, Path],
                     rollout: str | None = None) -> AsyncIterator[FleetServer]:
    """A real fleet service that trusts ``keyring``, with Ramu enrolled, ``bundles`` added
    and ``rollout`` (a version) rolled out to Ramu."""
    cfg = make_config(tmp / "fleet")
    cfg.set("update", "fleet_keyring", str(keyring))
    async with serve_fleet(cfg) as server:
        server.enroll(HUB, district="Cox's Bazar", division="Chattogram")
        for path in bundles.values():
            releases.add_release(server.db, cfg, path, by="test", now=time.time())
        if rollout is not None:
            roll_out(server, rollout)
        yield server


def roll_out(server: FleetServer, version: str, scope: str = "hub") -> int:
    item = server.db.write_sync(lambda c: rollouts.create_rollout_tx(
        c, release=version, scope=scope, target=HUB if scope == "hub" else None, by="test",
        client=None, now=time.time()))
    return int(item["id"])


def fleet_hub(server: FleetServer) -> dict[str, Any]:
    return dict(server.db.read_sync(lambda c: c.execute(
        "SELECT * FROM hubs WHERE id=?", (HUB,)).fetchone()))


def open_alerts(server: FleetServer) -> list[tuple[str, str]]:
    return server.db.read_sync(lambda c: [(r[0], r[1]) for r in c.execute(
        "SELECT code, message FROM alerts WHERE hub_id=? AND resolved_at IS NULL", (HUB,))])
