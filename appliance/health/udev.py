"""USB modem and USB storage events from udev (pyudev).

A modem appearing (a serial port of a 2G/3G/4G stick, a ModemManager candidate, or a
WWAN/USB/PPP network interface) means the uplink may be back: ask the sync daemon for
a cycle now rather than at the next timer. A USB storage partition appearing is
recorded; backups and sync bundles use it.

The event source is injectable: anything iterable yielding objects with ``.action``,
``.subsystem``, ``.device_type``, ``.sys_name`` and ``.properties`` (pyudev's
``Device`` has exactly these), so tests feed fakes and the agent feeds a real
``pyudev.Monitor``.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import trigger
from ..dhis2.timefmt import iso_z
from ..store import Store
from ..store import health as hstore
from ..store.db import Tx

log = logging.getLogger(__name__)

MODEM = "modem"
STORAGE = "usb-storage"

# USB serial drivers of cellular modems (Huawei/ZTE sticks use "option"; Quectel/Sierra
# expose qcserial/sierra ports; many modems present cdc_acm AT ports).
MODEM_TTY_DRIVERS = {"option", "option1", "qmi_wwan", "cdc_acm", "qcserial", "sierra",
                     "usb_wwan", "cdc_mbim"}
# USB network drivers of modems in router/NCM/MBIM mode and phone tethering.
MODEM_NET_DRIVERS = {"qmi_wwan", "cdc_ether", "cdc_ncm", "cdc_mbim", "huawei_cdc_ncm",
                     "rndis_host", "ipheth", "sierra_net"}
MODEM_NET_NAME = re.compile(r"^(wwan\d+|wwp\w+|wwx\w+|usb\d+|ppp\d+)$")
EVENT_LOG_MAX = 1000
MODEM_DEBOUNCE_S = 10.0  # one stick makes 3-5 ttys and a net iface in a burst


@dataclass(frozen=True)
class Classified:
    kind: str            # MODEM | STORAGE
    action: str          # add | remove | change | present (enumerated at start)
    name: str
    detail: dict[str, Any]


def _props(event: Any) -> Mapping[str, str]:
    try:
        return event.properties or {}
    except Exception:  # noqa: BLE001 - a device removed under us raises from pyudev
        return {}


def classify(event: Any) -> str | None:
    """MODEM, STORAGE or None for anything else. Never raises."""
    try:
        subsystem = event.subsystem
        devtype = event.device_type
        name = str(event.sys_name or "")
    except Exception:  # noqa: BLE001 - vanished devices; treat as "other"
        return None
    props = _props(event)
    driver = props.get("ID_USB_DRIVER", "")
    if props.get("ID_MM_CANDIDATE") == "1" and subsystem in ("tty", "net", "usbmisc", "wwan"):
        return MODEM
    if subsystem == "tty" and driver in MODEM_TTY_DRIVERS:
        return MODEM
    if subsystem == "net" and (MODEM_NET_NAME.match(name) or driver in MODEM_NET_DRIVERS
                               or devtype == "wwan" or props.get("DEVTYPE") == "wwan"):
        return MODEM
    if subsystem == "wwan":  # kernel WWAN framework ports (wwan0at0, wwan0mbim0)
        return MODEM
    if subsystem == "block" and props.get("ID_BUS") == "usb":
        if devtype == "partition":
            return STORAGE
        if devtype == "disk" and props.get("ID_FS_USAGE") == "filesystem":
            return STORAGE  # a stick formatted without a partition table
    return None


def _detail(event: Any) -> dict[str, Any]:
    props = _props(event)
    keys = ("DEVNAME", "ID_VENDOR", "ID_MODEL", "ID_SERIAL_SHORT", "ID_USB_DRIVER",
            "ID_FS_TYPE", "ID_FS_LABEL", "ID_FS_UUID", "INTERFACE")
    out: dict[str, Any] = {k.lower(): props[k] for k in keys if props.get(k)}
    out["subsystem"] = getattr(event, "subsystem", None)
    return out


def record_event(tx: Tx, ev: Classified) -> None:
    hstore.add_event(tx, at=iso_z(time.time()), kind=ev.kind, action=ev.action, name=ev.name,
                     detail=ev.detail, keep=EVENT_LOG_MAX)


class UdevWatcher:
    """Classifies events, tracks which modems are present, pokes the sync daemon."""

    def __init__(self, data_dir: str | Path, *,
                 request_sync: Callable[[str | Path, str], bool] = trigger.request_sync,
                 on_modem: Callable[[], None] | None = None,
                 debounce_s: float = MODEM_DEBOUNCE_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.data_dir = data_dir
        self.request_sync = request_sync
        self.on_modem = on_modem
        self.debounce_s = debounce_s
        self._monotonic = monotonic
        self._last_sync_request: float | None = None
        self.modems: set[str] = set()
        self.storage: set[str] = set()
        self.seen = False  # enumerated or saw an event: modem_present is then known

    def modem_present(self) -> bool | None:
        return bool(self.modems) if self.seen else None

    def handle(self, event: Any) -> Classified | None:
        """Handle one event; returns what to record (or None for devices we ignore)."""
        kind = classify(event)
        self.seen = True
        if kind is None:
            return None
        action = getattr(event, "action", None) or "present"
        name = str(event.sys_name)
        tracked = self.modems if kind == MODEM else self.storage
        if action == "remove":
            tracked.discard(name)
        else:
            tracked.add(name)
        if kind == MODEM and action == "add":
            self._poke_sync()
        if kind == STORAGE and action == "add":
            log.info("USB storage appeared: %s", name)
        return Classified(kind, action, name, _detail(event))

    def _poke_sync(self) -> None:
        now = self._monotonic()
        if self._last_sync_request is not None and now - self._last_sync_request < self.debounce_s:
            return
        self._last_sync_request = now
        delivered = self.request_sync(self.data_dir, "modem")
        log.info("modem appeared: sync requested (%s)", "delivered" if delivered else
                 "sync daemon not listening")
        if self.on_modem is not None:
            self.on_modem()

    def enumerate(self, devices: Iterable[Any]) -> list[Classified]:
        """Initial state from devices already present (no sync request for those)."""
        self.seen = True
        out = []
        for dev in devices:
            kind = classify(dev)
            if kind is None:
                continue
            name = str(dev.sys_name)
            (self.modems if kind == MODEM else self.storage).add(name)
            out.append(Classified(kind, "present", name, _detail(dev)))
        return out

    def feed(self, source: Iterable[Any] | Callable[[], Iterable[Any]],
             store: Store | None = None) -> list[Classified]:
        """Handle every event of an (injected) source, recording to ``store`` if given."""
        events = source() if callable(source) else source
        out = []
        for ev in events:
            c = self.handle(ev)
            if c is None:
                continue
            out.append(c)
            if store is not None:
                store.write_sync(functools.partial(record_event, ev=c))
        return out


# -- real udev ---------------------------------------------------------------------------
SUBSYSTEMS = ("tty", "net", "block", "usbmisc", "wwan")


def present_devices(context: Any = None) -> list[Any]:
    """Devices of the watched subsystems already present (pyudev enumeration)."""
    import pyudev

    ctx = context or pyudev.Context()
    out: list[Any] = []
    for sub in SUBSYSTEMS:
        try:
            out.extend(ctx.list_devices(subsystem=sub))
        except Exception:  # noqa: BLE001 - sysfs layout varies; enumerate what we can
            log.debug("cannot enumerate %s devices", sub, exc_info=True)
    return out


def open_monitor(context: Any = None) -> Any:
    """A started pyudev netlink monitor for the watched subsystems."""
    import pyudev

    ctx = context or pyudev.Context()
    mon = pyudev.Monitor.from_netlink(ctx)
    for sub in SUBSYSTEMS:
        mon.filter_by(sub)
    mon.start()
    return mon
