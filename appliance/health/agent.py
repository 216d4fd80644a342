"""The health agent: samples, LEDs, button, udev events, heartbeats, certificate renewal
and software updates (``updater``) in one asyncio loop.

Its own bytes to the fleet (heartbeats, update checks and downloads, renewal) are counted
in memory (``wire``, category ``fleet``) and written with the next sample's commit: no SD
commit of their own.

Blocking work (psutil, sysfs, subprocesses, quick_check) runs in a worker thread so
the loop stays responsive for udev events and LED changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__, trigger
from ..config import Config
from ..dhis2.timefmt import iso_z
from ..errors import ConfigError
from ..memory import trim
from ..store import Store, reporting, wirebytes
from ..store.db import Tx
from . import state
from .backup import BackupMonitor, BackupSettings, heartbeat_backup
from .button import POWEROFF_COMMAND, ButtonHandler, poweroff
from .certrenew import CertRenewer, LanAddress, RenewSettings, heartbeat_tls
from .fleeturl import heartbeat_endpoint
from .heartbeat import Batch, HeartbeatClient, HubIdentity, SendResult, queued_count
from .leds import LedContext, LedDriver, LedState, led_state
from .power import RunMarker, StartReport
from .rauc import Installer, RaucInstaller
from .sample import HostPaths, Sample, Sampler, max_rows_for, store_sample
from .syncstatus import read_flags
from .system import read_boot_id
from .udev import UdevWatcher, open_monitor, present_devices, record_event
from .updater import Updater, UpdateSettings

log = logging.getLogger(__name__)


@dataclass
class Settings:
    data_dir: Path
    hub_id: str = "hub-demo"
    hub_name: str = "Demo hub"
    org_unit: str = ""
    heartbeat_url: str = ""
    token: str = ""
    interval_s: float = 60.0
    heartbeat_every: int = 5
    commit_every: int = 3  # heartbeats per SD commit; between, heartbeats go from memory
    retention_days: float = 14.0
    quick_check_every_s: float = 21600.0
    queue_max: int = 500
    gpio_enabled: bool = True
    led_status: int = 17
    led_fault: int = 27
    button: int = 22
    hold_s: float = 5.0
    poweroff_command: tuple[str, ...] = POWEROFF_COMMAND
    hub_ping_url: str | None = None   # the LAN server's ping; None: not checked
    sync_socket: str = ""
    disk_device: str | None = None    # None: the disk holding the data dir
    tls: RenewSettings | None = None  # None: no [tls] name, no renewal
    lan: LanAddress | None = None
    backup: BackupSettings | None = None  # None: no [backup] replica
    update: UpdateSettings | None = None  # None: updates off, or no rauc command
    modem_budget_mb: float = 0.0  # [sync] modem_budget_mb, sent in heartbeats (0: none)

    @classmethod
    def from_config(cls, config: Config) -> Settings:
        g = config.get
        host, _, port = str(g("hub", "listen")).rpartition(":")
        host = "127.0.0.1" if host in ("", "0.0.0.0", "::", "[::]") else host
        return cls(
            data_dir=Path(config.data_dir), hub_id=g("hub", "id"), hub_name=g("hub", "name"),
            org_unit=g("hub", "org_unit"),
            heartbeat_url=heartbeat_endpoint(g("health", "heartbeat_url")),
            token=g("health", "token"), interval_s=float(g("health", "interval_s")),
            heartbeat_every=max(1, int(g("health", "heartbeat_every"))),
            commit_every=max(1, int(g("health", "commit_every"))),
            retention_days=float(g("health", "retention_days")),
            quick_check_every_s=float(g("health", "quick_check_every_s")),
            queue_max=int(g("health", "queue_max")), gpio_enabled=bool(g("gpio", "enabled")),
            led_status=g("gpio", "led_status"), led_fault=g("gpio", "led_fault"),
            button=g("gpio", "button"), hold_s=float(g("gpio", "hold_s")),
            poweroff_command=tuple(str(a) for a in g("gpio", "poweroff_command")),
            hub_ping_url=f"http://{host}:{port or 8080}/api/system/ping",
            sync_socket=g("sync", "socket"),
            disk_device=_optional(config, "health", "disk_device") or None,
            tls=RenewSettings.from_config(config) if g("tls", "name") else None,
            lan=LanAddress(g("dns", "address"), g("dns", "interface"),
                           g("health", "heartbeat_url")),
            backup=BackupSettings.from_config(config),
            update=UpdateSettings.from_config(config),
            modem_budget_mb=float(g("sync", "modem_budget_mb") or 0))


def _optional(config: Config, section: str, key: str) -> Any:
    # keys proposed but not (yet) in appliance.config.KEYS
    try:
        return config.get(section, key)
    except ConfigError:
        return None


class HealthAgent:
    def __init__(self, settings: Settings, store: Store, *, paths: HostPaths | None = None,
                 request_sync: Callable[[str | Path, str], bool] | None = None,
                 shutdown: Callable[[], Any] | None = None,
                 udev_source: Any = "pyudev",
                 pin_factory: Any = None, led_time_scale: float = 1.0,
                 led_poll_s: float = 2.0, hub_ping_s: float = 10.0,
                 sensors: Callable[[], dict[str, Any]] | None = None,
                 installer: Installer | None = None,
                 reboot: Callable[[], None] | None = None,
                 wall: Callable[[], float] = time.time) -> None:
        self.s = settings
        self.store = store
        self.wall = wall  # the day the bytes on the modem count for
        self.wire = wirebytes.Tally()  # bytes to the fleet, written with the next sample
        self.paths = paths or HostPaths()
        self.request_sync = request_sync or (
            lambda d, reason: trigger.request_sync(d, reason, settings.sync_socket))
        self.shutdown_fn = shutdown or functools.partial(poweroff, settings.poweroff_command)
        self.udev_source = udev_source
        self.pin_factory = pin_factory
        self.led_time_scale = led_time_scale
        self.led_poll_s = led_poll_s
        self.hub_ping_s = hub_ping_s
        self.marker = RunMarker(settings.data_dir, boot_id_path=self.paths.boot_id)
        self.udev = UdevWatcher(settings.data_dir, request_sync=self.request_sync,
                                on_modem=self._modem_appeared)
        self.sampler = Sampler(store, settings.data_dir, paths=self.paths,
                               quick_check_every_s=settings.quick_check_every_s,
                               disk_device=settings.disk_device,
                               modem_present=self.udev.modem_present, sensors=sensors)
        self.heartbeats = HeartbeatClient(
            store, url=settings.heartbeat_url, token=settings.token,
            identity=HubIdentity(settings.hub_id, settings.hub_name, settings.org_unit,
                                 __version__),
            queue_max=settings.queue_max, boot_id_path=self.paths.boot_id,
            uptime_path=self.paths.uptime, extra=self._heartbeat_extra)
        self.renewer = None if settings.tls is None else CertRenewer(
            settings.tls, store, clock_offset=lambda: self.heartbeats.fleet_offset_s)
        self.backup = None if settings.backup is None else BackupMonitor(settings.backup)
        self.backup_report: dict[str, Any] | None = None
        self._backup_unsaved: dict[str, Any] | None = None  # written with the next commit
        self._unsaved_samples: list[Sample] = []
        # seqs reserved by the last commit for heartbeats sent from memory: set only while
        # nothing is queued for the fleet (the last committed batch was everything, and
        # delivered); any failure empties it, and the next heartbeat commits again
        self._direct_seqs: list[int] = []
        self._beats_since_commit = settings.commit_every - 1  # the first beat commits
        u = settings.update
        self.updater = None if u is None else Updater(
            u, store, installer or RaucInstaller(u.rauc, u.keyring), reboot=reboot,
            boot_id=lambda: read_boot_id(self.paths.boot_id),
            fleet_offset=lambda: self.heartbeats.fleet_offset_s,
            health_ok=lambda: self.latest is not None,
            request_sync=lambda reason: self.request_sync(settings.data_dir, reason))
        self.heartbeats.wire = self.wire
        if self.renewer is not None:
            self.renewer.wire = self.wire
        if self.updater is not None:
            self.updater.wire = self.wire
        self.latest: Sample | None = None
        self.leds: LedDriver | None = None
        self.button: ButtonHandler | None = None
        self.led: LedState | None = None
        self.hub_serving: bool | None = None
        self.shutting_down = False
        self.start_report: StartReport | None = None
        self._led_lock = threading.Lock()
        self._flush_soon = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._monitor: Any = None
        self._hb_task: asyncio.Task[None] | None = None
        self._pending_writes: set[asyncio.Task[Any]] = set()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> StartReport:
        """Power-cut check, LEDs to 'booting', button, initial device scan."""
        self.start_report = self.marker.start(self.store)
        if self.start_report.power_cut:
            self.sampler.force_quick_check = True  # a cut is when SQLite files get damaged
        if self.s.gpio_enabled:
            self._open_gpio()
        self._show_leds()
        if self.udev_source == "pyudev":
            try:
                self._record(self.udev.enumerate(present_devices()))
            except Exception:  # noqa: BLE001 - no udev (container): run without it
                log.warning("cannot enumerate devices; modem state unknown", exc_info=True)
        return self.start_report

    def _open_gpio(self) -> None:
        try:
            self.leds = LedDriver(self.s.led_status, self.s.led_fault,
                                  pin_factory=self.pin_factory, time_scale=self.led_time_scale)
            self.button = ButtonHandler(self.s.button, hold_s=self.s.hold_s,
                                        on_press=self._button_pressed, on_hold=self._button_held,
                                        pin_factory=self.pin_factory)
        except Exception as e:  # noqa: BLE001 - no GPIO on this machine: keep running without
            log.warning("GPIO unavailable (%s); LEDs and button disabled", e)
            if self.leds is not None:
                self.leds.close()
            self.leds = self.button = None

    def stop(self) -> None:
        """Clean stop: remove the power-cut marker, release the pins."""
        if self._monitor is not None and self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._monitor.fileno())
        if self.button is not None:
            self.button.close()
        if self.leds is not None:
            self.leds.close()
        self.marker.stop()

    async def aclose(self) -> None:
        if self._hb_task is not None and not self._hb_task.done():
            # give a heartbeat in flight a moment; if cut short, its batch stays frozen and
            # the next start resends it with the same seq (the fleet then answers 409)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._hb_task, timeout=5)
        if self._pending_writes:
            await asyncio.gather(*self._pending_writes, return_exceptions=True)
        with contextlib.suppress(Exception):  # a clean stop keeps what is in memory
            await self.commit()
        await self.heartbeats.close()

    def _heartbeat_extra(self) -> dict[str, Any]:
        """The heartbeat's ``tls``, ``lan_ip``, ``backup``, ``update``, ``reporting`` and
        ``wire`` (run in a worker thread)."""
        backup = None
        if self.backup is not None:  # configured: an object even before the first check
            backup = heartbeat_backup(self.backup_report or {})
        extra: dict[str, Any] = {"tls": heartbeat_tls(self.s.tls.directory) if self.s.tls else None,
                 "lan_ip": self.s.lan.get() if self.s.lan else None,
                 "backup": backup}
        if self.updater is not None:  # where it is with software updates (#13)
            extra["update"] = self.updater.report()
        extra["reporting"] = self.store.read_sync(reporting_counts)  # (#14)
        unsaved, now = self.wire.peek(), self.wall()  # this agent's, not yet written
        extra["wire"] = self.store.read_sync(  # bytes on the modem and the budget (#15)
            lambda c: wirebytes.report(c, now, self.s.modem_budget_mb, unsaved))
        return extra

    # -- work -----------------------------------------------------------------------------------
    async def take_sample(self, cpu_interval: float | None = None, *,
                          commit: bool = True) -> Sample:
        """A sample, for the LEDs at once; on disk now, or (``commit=False``, the run
        loop) with the next ``commit``."""
        sample = await asyncio.to_thread(self.sampler.take, cpu_interval)
        self._unsaved_samples.append(sample)
        self.latest = sample
        if commit:
            await self.commit()
        await self.refresh_leds()
        return sample

    async def commit(self, *, heartbeat: bool = False, reserve: int = 0) -> Batch | None:
        """What the agent kept in memory, in one transaction: the samples taken since the
        last commit, the backup's lag, what the last heartbeat left to write; with
        ``heartbeat``, the newest sample is queued for the fleet and a batch taken to send,
        and if that batch is all that is queued, ``reserve`` seqs for the heartbeats sent
        from memory until the next commit. Each commit costs the SD card a WAL write, its
        fsync and a litestream file: the run loop commits every ``commit_every`` heartbeat
        periods (15 minutes), not once a sample."""
        samples, self._unsaved_samples = self._unsaved_samples, []
        backup, self._backup_unsaved = self._backup_unsaved, None
        wire, now = self.wire.take(), self.wall()  # the fleet traffic since the last commit
        max_rows = max_rows_for(self.s.retention_days, self.s.interval_s)

        def write(tx: Tx) -> Batch | None:
            for sample in samples:
                store_sample(tx, sample, retention_days=self.s.retention_days,
                             max_rows=max_rows)
            if backup is not None:
                state.put_json(tx, "backup", backup)
            wirebytes.record(tx, wire, now)
            self.heartbeats.settle(tx)
            if not heartbeat or self.latest is None:
                return None
            queue = self.heartbeats.queue
            queue.enqueue(tx, self.latest.to_dict())
            batch = queue.take_batch(tx)
            alone = batch is not None and queued_count(tx.conn) == len(batch.samples)
            reserved.extend(queue.reserve_seqs(tx, reserve) if alone else [])
            return batch
        reserved: list[int] = []
        try:
            batch = await self.store.write(write)
            self._direct_seqs = reserved  # only once on disk: a seq is never handed out twice
            return batch
        except Exception:  # not written: the next commit carries them
            self.wire.put_back(wire)
            self._unsaved_samples[:0] = samples
            raise

    async def _beat(self) -> None:
        """The heartbeat period: every ``commit_every``-th, commit, then send the batch (its
        bookkeeping waits for the next commit); between, with nothing queued, send the
        newest sample straight from memory (nothing written unless it fails)."""
        try:
            self._beats_since_commit += 1
            url = bool(self.s.heartbeat_url)
            if self._beats_since_commit < self.s.commit_every and \
                    (not url or (self._direct_seqs and self.latest is not None)):
                if url and self.latest is not None:
                    res = await self.heartbeats.send_unqueued(self._direct_seqs.pop(0),
                                                              self.latest.to_dict())
                    if not res.delivered:
                        self._direct_seqs = []  # now queued: the next beat commits, sends it
            else:
                self._beats_since_commit = 0
                batch = await self.commit(heartbeat=url, reserve=self.s.commit_every - 1)
                if batch is not None and not (await self.heartbeats.send(batch)).delivered:
                    self._direct_seqs = []
        except Exception:  # noqa: BLE001 - the next period tries again
            self._direct_seqs = []
            log.exception("health commit or heartbeat failed")
        trim()

    async def check_backup(self) -> dict[str, Any] | None:
        """How far the litestream replica is behind, kept in ``health_state`` ``backup``
        for ``/api/hub/status`` and sent with the next heartbeat."""
        if self.backup is None:
            return None
        monitor = self.backup
        if self.backup_report is None:  # after a restart: what the last run saw
            self.backup_report = await self.store.read(lambda c: state.get_json(c, "backup"))
        rep = await asyncio.to_thread(monitor.check, self.backup_report)
        changed = self.backup_report is None or rep.get("error") != self.backup_report.get("error")
        if changed and rep.get("error"):
            log.warning("backup: %s", rep["error"])
        self.backup_report = rep
        if changed:  # a new or cleared failure shows on the status page at once
            self._backup_unsaved = None
            await self.store.write(lambda tx: state.put_json(tx, "backup", rep))
        else:  # the lag goes to disk with the next sample, in the same commit
            self._backup_unsaved = rep
        return rep

    async def heartbeat(self, sample: Sample | None = None) -> SendResult:
        sample = sample or self.latest
        if sample is not None:
            await self.heartbeats.enqueue(sample.to_dict())
        return await self.heartbeats.flush()

    async def refresh_leds(self) -> LedState:
        syncing, link = await self.store.read(read_flags)
        serving = self.hub_serving
        if serving is None and self.s.hub_ping_url:
            serving = False  # not answered yet: still booting
        ctx = LedContext(shutting_down=self.shutting_down, hub_serving=serving,
                         syncing=syncing, link_up=link, wall=time.time())
        st = led_state(self.latest, ctx)
        if st != self.led:
            self.led = st
            self._show_leds()
            rec = {**st.to_dict(), "at": iso_z(time.time())}
            await self.store.write(lambda tx: state.put_json(tx, "led", rec))
        return st

    def _show_leds(self) -> None:
        st = self.led or led_state(None, LedContext(booting=True))
        with self._led_lock:
            if self.leds is not None:
                try:
                    self.leds.apply(st)
                except Exception:  # noqa: BLE001 - a GPIO hiccup must not stop sampling
                    log.exception("cannot drive LEDs")

    # -- loops ----------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        if self.start_report is None:
            self.start()
        self._start_udev_monitor()
        tasks = [asyncio.create_task(self._sample_loop(stop), name="health-sample"),
                 asyncio.create_task(self._led_loop(stop), name="health-leds")]
        if self.renewer is not None:
            tasks.append(asyncio.create_task(self.renewer.run(stop), name="health-tls"))
        if self.backup is not None:  # its own task: a probe may wait for a slow uplink
            tasks.append(asyncio.create_task(self._backup_loop(stop), name="health-backup"))
        if self.updater is not None:
            tasks.append(asyncio.create_task(self.updater.run(stop), name="health-update"))
        try:
            await stop.wait()
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            await self.aclose()
            self.stop()

    async def _sample_loop(self, stop: asyncio.Event) -> None:
        n = 0
        next_at = time.monotonic()
        while not stop.is_set():
            try:
                await self.take_sample(commit=False)
            except Exception:  # noqa: BLE001 - one bad sample must not end the agent
                log.exception("health sample failed")
            n += 1
            # first sample right away, then every heartbeat_every samples (or a modem came):
            # one heartbeat, and every commit_every-th of them a commit
            due = (n - 1) % self.s.heartbeat_every == 0 or self._flush_soon
            if due or len(self._unsaved_samples) >= \
                    (self.s.commit_every + 1) * self.s.heartbeat_every:
                self._flush_soon = False
                if self._hb_task is None or self._hb_task.done():
                    self._hb_task = asyncio.create_task(self._beat())
            # fixed-rate schedule (no drift); after a stall, skip ahead instead of bursting
            next_at += self.s.interval_s
            now = time.monotonic()
            if next_at < now:
                next_at = now + self.s.interval_s
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=next_at - now)

    async def _backup_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.check_backup()
            except Exception:  # noqa: BLE001 - a failed look must not end the agent
                log.exception("backup check failed")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.s.interval_s)

    async def _led_loop(self, stop: asyncio.Event) -> None:
        last_ping = -1e9
        while not stop.is_set():
            if self.s.hub_ping_url and time.monotonic() - last_ping >= self.hub_ping_s:
                last_ping = time.monotonic()
                self.hub_serving = await ping(self.s.hub_ping_url)
            try:
                await self.refresh_leds()
            except Exception:  # noqa: BLE001
                log.exception("LED refresh failed")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.led_poll_s)

    # -- udev -----------------------------------------------------------------------------------
    def _start_udev_monitor(self) -> None:
        if self.udev_source is None:
            return
        if self.udev_source != "pyudev":
            self.feed_udev(self.udev_source)
            return
        try:
            self._monitor = open_monitor()
        except Exception as e:  # noqa: BLE001 - netlink refused (container): no hotplug events
            log.warning("udev monitor unavailable (%s); modem/USB events disabled", e)
            return
        assert self._loop is not None
        self._loop.add_reader(self._monitor.fileno(), self._udev_readable)

    def _udev_readable(self) -> None:
        events = []
        while True:
            try:
                dev = self._monitor.poll(timeout=0)
            except Exception:  # noqa: BLE001
                log.debug("udev poll failed", exc_info=True)
                break
            if dev is None:
                break
            events.append(dev)
        self.feed_udev(events)

    def feed_udev(self, source: Iterable[Any] | Callable[[], Iterable[Any]]) -> None:
        """Handle events from any source (the monitor, or fakes in tests)."""
        events = source() if callable(source) else source
        found = [c for c in (self.udev.handle(ev) for ev in events) if c is not None]
        self._record(found)

    def _record(self, found: list[Any]) -> None:
        for c in found:
            if self._loop is not None and self._loop.is_running():
                # don't block the loop on a commit; keep a reference until it is done
                task = self._loop.create_task(self.store.write(functools.partial(record_event, ev=c)))
                self._pending_writes.add(task)
                task.add_done_callback(self._pending_writes.discard)
            else:
                self.store.write_sync(functools.partial(record_event, ev=c))

    def _modem_appeared(self) -> None:
        self._flush_soon = True  # heartbeats queued while offline can go now

    # -- button ---------------------------------------------------------------------------------
    def _button_pressed(self) -> None:
        self.request_sync(self.s.data_dir, "button")

    def _button_held(self) -> None:
        self.shutting_down = True
        self.led = led_state(None, LedContext(shutting_down=True))
        self._show_leds()
        self.shutdown_fn()


async def ping(url: str, timeout_s: float = 3.0) -> bool:
    """Does the LAN server answer its ping? A bare HTTP/1.0 GET over an asyncio stream:
    cheap, and no HTTP client library held in memory for it."""
    u = urllib.parse.urlsplit(url)
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(u.hostname, u.port or 80)
            try:
                writer.write(f"GET {u.path or '/'} HTTP/1.0\r\nHost: {u.netloc}\r\n\r\n".encode())
                await writer.drain()
                line = await reader.readline()
            finally:
                writer.close()
    except (OSError, TimeoutError):
        return False
    parts = line.split()
    return len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1][:1] in (b"2", b"3", b"4")


REPORTING_MONTHS = 3


def reporting_counts(conn: Any, now: float | None = None) -> list[dict[str, Any]]:
    """The heartbeat's ``reporting``: per monthly data set and each of the last three months
    (before the current one), DHIS2's expected, complete, on-time and received counts."""
    t = time.gmtime(time.time() if now is None else now)
    m = t.tm_year * 12 + t.tm_mon - 1
    months = [f"{(m - i) // 12}{(m - i) % 12 + 1:02d}" for i in range(1, REPORTING_MONTHS + 1)]
    return reporting.completeness(conn, reporting.read_forms(conn), months)
