"""The hub's update agent (#13): the release national's fleet offers, into the other slot,
committed only once the hub is healthy on it.

Contract with the fleet (``appliance.fleet.rollouts``; signed like heartbeats)::

    POST <[update] url>   (default: /api/updates/check beside [health] heartbeat_url)
    Content-Type: application/json, X-Hub-Id, Authorization: Bearer, X-Hub-Signature
    body  {"hub_id", "sent_at", "update": <report, see ``report``>}
    200   response.release: null | {"rollout_id", "version", "compatible", "sha256",
                                    "size", "url": "/api/updates/bundles/<sha256>"}
    GET <url>   X-Hub-Signature = HMAC of "GET <path>"; Range: bytes=N- resumes (206)

What happens, each step persisted in ``health_state`` ``update`` (so a restart or a power
cut picks up where it was):

1. **Check** every ``check_every_s`` while idle and the link is up (as sync last found
   it), every slice while downloading: the report goes up, the offer comes back. An offer of the release already running, or one
   that failed here before under the same rollout, is left alone.
2. **Download** to ``[update] dir`` in slices of ``slice_s`` with ``Range`` resumes.
3. **Verify**: size and SHA-256 against the offer, then RAUC's signature check against
   the keyring and the manifest's version and compatible; a bundle failing any is
   *refused* and never installed.
4. **Install** into the inactive slot (``Installer.install``); the running slot is then
   made primary again, so a power cut before the quiet hours boots the old release.
5. **Reboot** in ``quiet_hours`` (local time), not while sync is pushing: the new slot is
   made primary and the hub reboots (``[update] reboot_command``).
6. **Trial**: booted into the new slot, the hub must answer ``/api/hub/status``, sync must
   finish a cycle and the health agent must be sampling, together for ``healthy_for_s``;
   then the slot is marked good (*committed*). Not healthy within ``commit_deadline_s``
   of booting: the slot is marked bad and the hub reboots; the bootloader goes back.
   A release on which this agent never runs cannot do that itself: before the reboot the
   agent leaves ``[update] dir``/trial (slot, version, an uptime deadline), and the
   image's root unit upazila-update-guard marks the slot bad and reboots if the marker is
   still there past the deadline.
7. **Rolled back**: booted on the old slot after a reboot into the new one, the agent
   reports *rolled_back* with the reason (the failed health checks, or that the new slot
   never came up: the bootloader's own fallback).

Every other start marks the running slot good (RAUC's boot counting, e.g. GRUB's
``<slot>_TRY``, counts each boot as a try until then), so the image must not also run
``rauc-mark-good.service``: that would commit a new release before its health is known.

A release national withdraws before the reboot is forgotten (the running slot is still
the one to boot). Tokens are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import logging
import os
import shutil
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..config import Config
from ..dhis2.timefmt import iso_z
from ..errors import UpdateError
from ..store import Store
from ..store.synclog import last_cycle_event
from ..store.wirebytes import FLEET, Tally
from . import download, state
from .fleeturl import fleet_endpoint
from .heartbeat import post, request_headers
from .quiet import QuietHours
from .rauc import Installer, SystemStatus
from .syncstatus import read_flags

log = logging.getLogger(__name__)

STATE_KEY = "update"
FAILED = ("rolled_back", "refused", "failed")
RESTING = ("idle", "committed") + FAILED
SKIP_KEPT = 20
SPACE_MARGIN = 64 * 1024 * 1024  # keep this much free on the data partition after a download
MAX_SHA_RETRIES = 1  # a wrong download is fetched again once, then refused
LINK_WAIT_S = 300.0  # while sync says the link is down, look again this often
TRIAL_MARKER = "trial"  # in [update] dir: read by the image's root upazila-update-guard
GUARD_MARGIN_S = 300.0  # boot to the agent's first trial check, and its own deadline first


def write_trial_marker(directory: Path, slot: str, version: str, deadline_s: float) -> None:
    """What the root guard (image/rootfs/usr/local/sbin/upazila-update-guard) needs when
    this agent never runs on the new release: the slot on trial and the uptime by which it
    must be committed. Written before the reboot, removed once the trial is resolved."""
    tmp = directory / (TRIAL_MARKER + ".tmp")
    with tmp.open("w") as f:
        f.write(f"slot={slot}\nversion={version}\ndeadline_s={int(deadline_s)}\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(directory / TRIAL_MARKER)


def read_guard_reason(directory: Path) -> str | None:
    """The reason the guard wrote when it rolled the release back (None: it did not)."""
    try:
        text = (directory / TRIAL_MARKER).read_text(errors="replace")
    except OSError:
        return None
    lines = [ln.removeprefix("guard=") for ln in text.splitlines() if ln.startswith("guard=")]
    return lines[-1][:300] if lines else None


def default_url(heartbeat_url: str) -> str:
    """``/api/updates/check`` on the fleet the heartbeat URL names (its base, or its /api/heartbeats)."""
    return fleet_endpoint(heartbeat_url, "/api/updates/check")


def boot_clock() -> float:
    """Seconds since this boot (suspend included): the trial's clock, immune to NTP steps."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


@dataclass
class UpdateSettings:
    url: str
    hub_id: str
    token: str
    directory: Path
    hub_status_url: str = ""
    check_every_s: float = 3600.0
    quiet: QuietHours | None = None
    reboot_command: list[str] = field(default_factory=lambda: ["systemctl", "reboot"])
    healthy_for_s: float = 120.0
    commit_deadline_s: float = 900.0
    rauc: str = "rauc"
    keyring: str = ""
    retry_s: float = 60.0      # after a failed check, slice or reboot command
    slice_s: float = 60.0      # download this long, then report and check again
    tick_s: float = 5.0        # health checks during the trial
    timeout_s: float = 60.0

    @classmethod
    def from_config(cls, config: Config) -> UpdateSettings | None:
        """None when ``[update] enabled`` is off or the rauc command is missing."""
        g = config.get
        rauc = str(g("update", "rauc")) or "rauc"
        if not g("update", "enabled") or shutil.which(rauc) is None:
            return None
        host, _, port = str(g("hub", "listen")).rpartition(":")
        host = "127.0.0.1" if host in ("", "0.0.0.0", "::", "[::]") else host
        return cls(
            url=g("update", "url") or default_url(g("health", "heartbeat_url")),
            hub_id=g("hub", "id"), token=g("health", "token"),
            directory=Path(g("update", "dir") or Path(config.data_dir) / "updates"),
            hub_status_url=f"http://{host}:{port or 8080}/api/hub/status",
            check_every_s=float(g("update", "check_every_s")),
            quiet=QuietHours.parse(str(g("update", "quiet_hours")), str(g("update", "timezone"))),
            reboot_command=[str(a) for a in g("update", "reboot_command")],
            healthy_for_s=float(g("update", "healthy_for_s")),
            commit_deadline_s=float(g("update", "commit_deadline_s")),
            rauc=rauc, keyring=str(g("update", "keyring")))


def run_command(cmd: list[str]) -> None:
    """The default reboot: ``[update] reboot_command``; raises ``UpdateError`` if it fails."""
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise UpdateError(f"{' '.join(cmd)[:100]} failed: {e}") from None
    if res.returncode != 0:
        raise UpdateError(f"{' '.join(cmd)[:100]} exited {res.returncode}: "
                          f"{(res.stderr or res.stdout).strip()[:300]}")


def http_ok(url: str, timeout_s: float = 5.0) -> bool:
    """Does ``url`` answer 200 (the hub's status API: it reads the store, so a hub that
    answers it is serving)?"""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname or "", u.port, timeout=timeout_s)
    try:
        conn.request("GET", u.path or "/")
        resp = conn.getresponse()
        resp.read(65536)
        return resp.status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


@dataclass(frozen=True)
class Offer:
    rollout_id: int
    version: str
    compatible: str
    sha256: str
    size: int
    url: str

    @classmethod
    def parse(cls, obj: Any, base: str) -> Offer | None:
        if not isinstance(obj, dict):
            return None
        try:
            sha = str(obj["sha256"]).lower()
            offer = cls(int(obj["rollout_id"]), str(obj["version"]), str(obj["compatible"]),
                        sha, int(obj["size"]), urllib.parse.urljoin(base, str(obj["url"])))
        except (KeyError, TypeError, ValueError):
            return None
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha) or offer.size <= 0:
            return None
        return offer


class Updater:
    """One per health agent. ``step`` makes one decision and says when to come back."""

    def __init__(self, settings: UpdateSettings, store: Store, installer: Installer, *,
                 reboot: Callable[[], None] | None = None,
                 wall: Callable[[], float] = time.time,
                 uptime: Callable[[], float] = boot_clock,
                 boot_id: Callable[[], str | None] = lambda: None,
                 fleet_offset: Callable[[], float] = lambda: 0.0,
                 health_ok: Callable[[], bool] = lambda: True,
                 request_sync: Callable[[str], Any] | None = None,
                 hub_ok: Callable[[str], bool] = http_ok,
                 fallback_version: str = __version__) -> None:
        self.s = settings
        self.store = store
        self.installer = installer
        self.reboot = reboot or (lambda: run_command(settings.reboot_command))
        self.wall = wall
        self.uptime = uptime
        self.boot_id = boot_id
        self.fleet_offset = fleet_offset
        self.health_ok = health_ok
        self.request_sync = request_sync
        self.hub_ok = hub_ok
        self.fallback_version = fallback_version
        self.rec: dict[str, Any] = {"seq": 0, "state": "idle"}
        self.status: SystemStatus | None = None
        self.next_check = 0.0  # monotonic; 0: at the next step
        self._reconciled = False
        self.stop_event = threading.Event()
        self.checks = 0
        self.wire: Tally | None = None  # the agent's count of bytes on the modem

    # -- the record ----------------------------------------------------------------------
    @property
    def state(self) -> str:
        return str(self.rec.get("state", "idle"))

    @property
    def version(self) -> str:
        if self.status is not None:  # a slot RAUC did not write (flashed) has no version
            return self.status.version or self.fallback_version
        return self.rec.get("version") or self.fallback_version

    def report(self) -> dict[str, Any]:
        """The ``update`` object of update checks and heartbeats."""
        r = self.rec
        st = self.state
        return {"seq": int(r.get("seq", 0)), "state": st, "version": self.version[:64],
                "compatible": (self.status.compatible or "")[:200] or None
                if self.status else None,
                "booted_slot": (self.status.booted or "")[:64] or None
                if self.status else None,
                "rollout_id": r.get("rollout_id"), "target_version": r.get("target_version"),
                "sha256": r.get("sha256"), "bytes": r.get("bytes"), "size": r.get("size"),
                "reason": (str(r.get("reason") or "")[:1000] or None) if st in FAILED else None}

    async def _save(self) -> None:
        rec = dict(self.rec)
        rec.update(version=self.version, compatible=self.status.compatible if self.status
                   else rec.get("compatible"),
                   booted_slot=self.status.booted if self.status else rec.get("booted_slot"))
        await self.store.write(lambda tx: state.put_json(tx, STATE_KEY, rec))

    async def _change(self, new: str, **fields: Any) -> None:
        """A state change: a new ``seq`` (the fleet keeps the newest), persisted at once."""
        self.rec.update(fields)
        self.rec["state"] = new
        self.rec["seq"] = int(self.rec.get("seq", 0)) + 1
        self.rec["changed_at"] = iso_z(self.wall())
        if new in FAILED:
            self.rec["last_failure"] = {"at": self.rec["changed_at"], "state": new,
                                        "target_version": self.rec.get("target_version"),
                                        "reason": self.rec.get("reason")}
            log.warning("update: %s %s: %s", new, self.rec.get("target_version"),
                        self.rec.get("reason"))
        else:
            log.info("update: %s %s", new, self.rec.get("target_version") or "")
        await self._save()
        self.next_check = 0.0  # tell the fleet soon

    def _drop_trial_marker(self) -> None:
        (self.s.directory / TRIAL_MARKER).unlink(missing_ok=True)

    async def _fail(self, new: str, reason: str, *, skip: bool = True) -> None:
        if skip and self.rec.get("rollout_id") is not None:
            keys = [k for k in self.rec.get("skip", []) if isinstance(k, list)]
            keys.append([self.rec.get("rollout_id"), self.rec.get("sha256")])
            self.rec["skip"] = keys[-SKIP_KEPT:]
        self._drop_files(self.rec.get("sha256"))
        await self._change(new, reason=reason)
        self._drop_trial_marker()

    def _drop_files(self, sha: Any) -> None:
        if isinstance(sha, str) and sha:
            for p in (download.part_path(self.s.directory, sha),
                      download.bundle_path(self.s.directory, sha)):
                p.unlink(missing_ok=True)

    # -- start: where did the last boot leave us? -----------------------------------------
    async def start(self) -> None:
        loaded = await self.store.read(lambda c: state.get_json(c, STATE_KEY))
        if isinstance(loaded, dict):
            self.rec = loaded
        self.s.directory.mkdir(parents=True, exist_ok=True)
        await self._refresh_status()
        if self.status is not None:
            await self._reconcile()

    async def _reconcile(self) -> None:
        """Once per process, with the slots known: what the last run left half done."""
        self._reconciled = True
        assert self.status is not None
        booted = self.status.booted
        st, boot = self.state, self.boot_id()
        target, origin = self.rec.get("target_slot"), self.rec.get("from_slot")
        rebooted = boot is not None and self.rec.get("boot_id") not in (None, boot)
        if st == "installing":  # cut while RAUC wrote the slot: verify and install again
            await self._change("offered")
        elif not rebooted:
            pass
        elif st == "installed" and booted != target:  # a power cut: still the old slot
            self.rec["boot_id"] = boot
        elif st in ("installed", "rebooting", "trial") and booted == target:
            await self._begin_trial()
        elif st in ("rebooting", "trial", "rolling_back") and booted == origin:
            await self._rolled_back(st)
        elif st in ("rebooting", "trial", "rolling_back"):
            await self._fail("failed", f"after rebooting into {target} the hub runs slot "
                                       f"{booted}: the bootloader did not go back to {origin}")
        if self.state not in ("trial", "rebooting", "rolling_back"):
            # the bootloader counts every boot as a try until the slot is marked good
            # again (GRUB's <slot>_TRY): without this, the next reboot would fall back
            try:
                await asyncio.to_thread(self.installer.mark_good)
            except UpdateError as e:
                log.warning("update: could not mark the running slot good: %s", e.message)
        await self._save()

    async def _begin_trial(self) -> None:
        base = await self.store.read(last_cycle_event)
        await self._change("trial", boot_id=self.boot_id(), trial_since=self.uptime(),
                           healthy_since=None, sync_base=base, unhealthy=None)
        if self.request_sync is not None:  # a cycle now rather than at the next timer
            with contextlib.suppress(Exception):
                self.request_sync("update")

    async def _rolled_back(self, was: str) -> None:
        target = self.rec.get("target_version")
        origin = self.rec.get("from_slot")
        why = self.rec.get("marked_bad") or read_guard_reason(self.s.directory)
        if not why and was == "trial":
            why = (f"{target} started but the hub restarted before it was confirmed healthy"
                   + (f" ({self.rec['unhealthy']})" if self.rec.get("unhealthy") else ""))
        if not why:
            why = f"{target} did not start: the bootloader went back to slot {origin}"
        await self._fail("rolled_back", why)

    async def _refresh_status(self) -> None:
        try:
            self.status = await asyncio.to_thread(self.installer.status)
            self.rec.pop("status_error", None)
        except UpdateError as e:
            self.status = None
            if self.rec.get("status_error") != e.message:
                log.warning("update: %s", e.message)
            self.rec["status_error"] = e.message

    # -- the loop ---------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        try:
            await self.start()
        except Exception:  # noqa: BLE001 - never end the health agent over updates
            log.exception("update agent could not start")
        async def relay() -> None:  # a download slice in its thread stops at its next chunk
            await stop.wait()
            self.stop_event.set()
        watcher = asyncio.create_task(relay())
        try:
            while not stop.is_set():
                try:
                    delay = await self.step()
                except Exception:  # noqa: BLE001
                    log.exception("update step failed")
                    delay = self.s.retry_s
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=max(0.0, delay))
        finally:
            self.stop_event.set()
            watcher.cancel()

    async def step(self) -> float:
        """One decision; returns seconds until the next."""
        if self.status is None:
            await self._refresh_status()
            if self.status is None:
                return self.s.retry_s
        if not self._reconciled:
            await self._reconcile()
        st = self.state
        if st == "trial":
            return await self._trial()
        if st in ("rebooting", "rolling_back"):
            return await self._reboot_now(st)  # the reboot did not happen (yet): again
        if st in ("offered", "downloading"):
            ok, offer = await self.check()
            if not ok:
                return self.s.retry_s
            if not self._same(offer):
                await self._withdrawn(offer)
                return 0.0
            return await self._download()
        if st == "installed":
            if time.monotonic() >= self.next_check:
                ok, offer = await self.check()
                if ok and not self._same(offer):
                    await self._withdrawn(offer)
                    return 0.0
            return await self._maybe_reboot()
        if time.monotonic() < self.next_check:
            return self.next_check - time.monotonic()
        _syncing, link = await self.store.read(read_flags)
        if link is False:  # sync found national unreachable: the fleet will be too
            self.next_check = time.monotonic() + min(self.s.check_every_s, LINK_WAIT_S)
            return self.next_check - time.monotonic()
        ok, offer = await self.check()
        if ok:
            await self._consider(offer)
        return 0.0 if self.state == "offered" else max(0.0, self.next_check - time.monotonic())

    # -- talking to the fleet -----------------------------------------------------------------
    async def check(self, timeout_s: float | None = None) -> tuple[bool, Offer | None]:
        """Report and ask; (False, None) when the fleet could not be asked."""
        now = self.wall()
        off = self.fleet_offset()
        if abs(off) > 30:  # no RTC after a power cut: stamp in the fleet's time
            now += off
        body = json.dumps({"hub_id": self.s.hub_id, "sent_at": iso_z(now),
                           "update": self.report()}, separators=(",", ":")).encode()
        headers = request_headers(self.s.hub_id, self.s.token, body, gzipped=False)
        self.checks += 1
        if not self.s.url:
            out_error: str | None = "no [update] url or [health] heartbeat_url set"
            out = None
        else:
            out = await asyncio.to_thread(post, self.s.url, body, headers,
                                          timeout_s or self.s.timeout_s, read_ok=65536)
            out_error = out.error
            if self.wire is not None:
                self.wire.add(FLEET, out.sent_bytes, out.received_bytes)
        every = self.s.check_every_s
        if out is None or out.status != 200:
            why = out_error or f"the fleet answered HTTP {out.status if out else '?'}"
            if out is not None and out.text:
                why += f": {out.text[:200]}"
            if self.rec.get("check_error") != why:
                log.warning("update check: %s", why)
            self.rec["check_error"] = why
            self.next_check = time.monotonic() + min(every, self.s.retry_s)
            return False, None
        self.next_check = time.monotonic() + every
        self.rec["check_error"] = None
        self.rec["checked_at"] = iso_z(self.wall())
        try:
            doc = json.loads(out.text)
            release = doc["response"]["release"]
        except (ValueError, KeyError, TypeError):
            self.rec["check_error"] = "the fleet's answer holds no response.release"
            return False, None
        return True, Offer.parse(release, self.s.url)

    def _same(self, offer: Offer | None) -> bool:
        return offer is not None and offer.sha256 == self.rec.get("sha256") and \
            offer.rollout_id == self.rec.get("rollout_id")

    async def _consider(self, offer: Offer | None) -> None:
        """A resting hub and what the fleet says it should run."""
        st = self.state
        if offer is None or offer.version == self.version:
            if st in FAILED or st == "offered":  # national stopped it, or went back to ours
                await self._change("idle")
            return
        if [offer.rollout_id, offer.sha256] in self.rec.get("skip", []):
            return  # failed here under this rollout: only a new rollout tries again
        assert self.status is not None
        self.rec.update(rollout_id=offer.rollout_id, target_version=offer.version,
                        sha256=offer.sha256, size=offer.size, url=offer.url, bytes=0,
                        reason=None, sha_retries=0, marked_bad=None, unhealthy=None,
                        from_slot=None, target_slot=None, target_slot_name=None)
        if offer.compatible != self.status.compatible:
            await self._fail("refused", f"the release is for {offer.compatible!r}; this hub is "
                                        f"{self.status.compatible!r}")
            return
        await self._change("offered")

    async def _withdrawn(self, offer: Offer | None) -> None:
        """National stopped or replaced the release we were getting or had installed (the
        slot written stays, but the running slot is still the one to boot)."""
        self._drop_files(self.rec.get("sha256"))
        await self._change("idle", rollout_id=None, target_version=None, sha256=None,
                           size=None, bytes=None)
        if offer is not None:
            await self._consider(offer)

    # -- download, verify, install ------------------------------------------------------------
    async def _download(self) -> float:
        sha, size = str(self.rec["sha256"]), int(self.rec["size"])
        final = download.bundle_path(self.s.directory, sha)
        part = download.part_path(self.s.directory, sha)
        if not final.exists():
            have = part.stat().st_size if part.exists() else 0
            free = shutil.disk_usage(self.s.directory).free
            if free < size - have + SPACE_MARGIN:
                await self._fail("failed", f"not enough space for the release: "
                                 f"{free // 2**20} MiB free on the data partition, "
                                 f"{(size - have) // 2**20} MiB more needed", skip=False)
                return self.s.retry_s
            if self.state != "downloading":
                await self._change("downloading", bytes=have)
            url = str(self.rec["url"])
            headers = download.read_headers(self.s.hub_id, self.s.token, url)
            sl = await asyncio.to_thread(download.fetch_slice, url, part, size, headers,
                                         timeout_s=self.s.timeout_s, max_s=self.s.slice_s,
                                         stop=self.stop_event)
            if self.wire is not None:
                self.wire.add(FLEET, sl.sent_bytes, sl.received_bytes)
            self.rec["bytes"] = sl.have
            self.rec["download_error"] = sl.error
            await self._save()
            if sl.refused:
                self.next_check = 0.0
                return self.s.retry_s
            if not sl.complete:
                if sl.error:
                    log.info("update: download paused at %d of %d bytes: %s", sl.have, size,
                             sl.error)
                    return self.s.retry_s
                return 0.0
            got = await asyncio.to_thread(download.sha256_of, part)
            if got != sha:
                part.unlink(missing_ok=True)
                tries = int(self.rec.get("sha_retries", 0))
                if tries < MAX_SHA_RETRIES:
                    self.rec.update(sha_retries=tries + 1, bytes=0)
                    await self._save()
                    return 0.0
                await self._fail("refused", f"the downloaded file's SHA-256 {got[:16]}… is not "
                                            f"the release's {sha[:16]}…")
                return 0.0
            part.replace(final)
        return await self._verify_and_install(final)

    async def _verify_and_install(self, bundle: Path) -> float:
        assert self.status is not None
        try:
            info = await asyncio.to_thread(self.installer.check_bundle, bundle)
        except UpdateError as e:
            await self._fail("refused", e.message)
            return 0.0
        target = self.rec.get("target_version")
        if info.compatible != self.status.compatible:
            await self._fail("refused", f"the bundle is for {info.compatible!r}; this hub is "
                                        f"{self.status.compatible!r}")
            return 0.0
        if info.version != target:
            await self._fail("refused", f"the bundle says it is version {info.version!r}; the "
                                        f"fleet offered {target!r}")
            return 0.0
        origin = self.status.booted
        await self._change("installing", from_slot=origin, boot_id=self.boot_id())
        try:
            await asyncio.to_thread(self.installer.install, bundle)
        except UpdateError as e:
            await self._fail("failed", e.message)
            return 0.0
        await self._refresh_status()
        after = self.status
        written = after.slot(after.primary) if after else None
        bundle.unlink(missing_ok=True)  # the slot has it now; the data partition wants room
        if written is None or not written.bootname or written.bootname == origin:
            await self._fail("failed", "RAUC installed the release but did not make another "
                                       "slot the next to boot")
            return 0.0
        try:  # boot the running slot until the quiet hours: a power cut must not switch
            await asyncio.to_thread(self.installer.mark_active, "booted")
        except UpdateError as e:
            await self._fail("failed", e.message)
            return 0.0
        await self._change("installed", target_slot=written.bootname,
                           target_slot_name=written.name, bytes=self.rec.get("size"))
        return 0.0

    # -- reboot ---------------------------------------------------------------------------------
    def fleet_time(self) -> float:
        off = self.fleet_offset()
        return self.wall() + (off if abs(off) > 30 else 0.0)

    async def _maybe_reboot(self) -> float:
        wait = min(60.0, max(1.0, self.next_check - time.monotonic()))
        if self.s.quiet is not None and not self.s.quiet.contains(self.fleet_time()):
            return wait
        syncing, _link = await self.store.read(read_flags)
        if syncing:  # let the push finish: it resumes after a reboot, but why cut it
            return min(wait, 30.0)
        await self._change("rebooting", boot_id=self.boot_id())
        try:  # the new slot boots next, once (the bootloader falls back if it fails)
            await asyncio.to_thread(self.installer.mark_active,
                                    str(self.rec.get("target_slot_name")))
        except UpdateError as e:
            await self._fail("failed", e.message)
            return 0.0
        try:  # if this agent never runs on the new release, root's guard rolls it back
            write_trial_marker(self.s.directory, str(self.rec.get("target_slot")),
                               str(self.rec.get("target_version")),
                               self.s.commit_deadline_s + self.s.healthy_for_s + GUARD_MARGIN_S)
        except OSError as e:
            log.warning("update: cannot write the trial marker for the guard: %s", e)
        return await self._reboot_now("rebooting")

    async def _reboot_now(self, new: str) -> float:
        if self.state != new:
            await self._change(new, boot_id=self.boot_id())
        await self.check(timeout_s=10.0)  # best effort: the fleet hears before we go
        try:
            await asyncio.to_thread(self.reboot)
        except UpdateError as e:
            self.rec["reboot_error"] = e.message
            await self._save()
            log.warning("update: reboot failed: %s", e.message)
            return self.s.retry_s
        return max(self.s.retry_s, 120.0)  # systemd is stopping us; if not, try again

    # -- trial ----------------------------------------------------------------------------------
    async def _trial(self) -> float:
        up = self.uptime()
        problems = []
        if self.s.hub_status_url and not await asyncio.to_thread(self.hub_ok,
                                                                 self.s.hub_status_url):
            problems.append("the hub did not answer /api/hub/status")
        if await self.store.read(last_cycle_event) <= int(self.rec.get("sync_base") or 0):
            problems.append("sync finished no cycle")
        if not self.health_ok():
            problems.append("the health agent took no sample")
        if not problems:
            since = self.rec.get("healthy_since")
            if since is None:
                self.rec.update(healthy_since=up, unhealthy=None)
                await self._save()
            elif up - float(since) >= self.s.healthy_for_s:
                try:
                    await asyncio.to_thread(self.installer.mark_good)
                except UpdateError as e:
                    problems.append(e.message)
                else:
                    await self._refresh_status()
                    await self._change("committed", reason=None, marked_bad=None)
                    self._drop_trial_marker()
                    return 0.0
        if problems:
            text = "; ".join(problems)
            if self.rec.get("unhealthy") != text or self.rec.get("healthy_since") is not None:
                self.rec.update(unhealthy=text, healthy_since=None)
                await self._save()
        if problems and up - float(self.rec.get("trial_since") or 0) > self.s.commit_deadline_s:
            why = (f"{self.rec.get('target_version')} was not healthy within "
                   f"{self.s.commit_deadline_s:g} s: {'; '.join(problems)}")
            try:
                await asyncio.to_thread(self.installer.mark_bad)
            except UpdateError as e:
                why += f" (and marking its slot bad failed: {e.message})"
            self.rec["marked_bad"] = why
            return await self._reboot_now("rolling_back")
        return self.s.tick_s


def update_status(conn: Any) -> dict[str, Any] | None:
    """``/api/hub/status``'s ``update``, as the health agent last recorded it (None: the
    hub has no update agent): the release it runs, the booted slot, where an update is,
    and its last failure."""
    rec = state.get_json(conn, STATE_KEY)
    if not isinstance(rec, dict):
        return None
    return {"version": rec.get("version"), "compatible": rec.get("compatible"),
            "booted_slot": rec.get("booted_slot"), "state": rec.get("state", "idle"),
            "target_version": rec.get("target_version"), "bytes": rec.get("bytes"),
            "size": rec.get("size"), "changed_at": rec.get("changed_at"),
            "checked_at": rec.get("checked_at"), "check_error": rec.get("check_error"),
            "last_failure": rec.get("last_failure")}
