"""udev: classification of fake events, the sync hook over a real Unix datagram socket,
and one pass over this machine's real /sys through pyudev."""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from appliance.health.udev import MODEM, STORAGE, UdevWatcher, classify, present_devices
from appliance.store import Store


@dataclass
class Ev:
    action: str | None
    subsystem: str
    sys_name: str
    device_type: str | None = None
    properties: dict[str, str] = field(default_factory=dict)


HUAWEI_TTY = Ev("add", "tty", "ttyUSB0", None, {"ID_USB_DRIVER": "option", "ID_VENDOR": "HUAWEI",
                                                "DEVNAME": "/dev/ttyUSB0"})
QUECTEL_QMI_TTY = Ev("add", "tty", "ttyUSB2", None, {"ID_USB_DRIVER": "qmi_wwan"})
ACM = Ev("add", "tty", "ttyACM0", None, {"ID_USB_DRIVER": "cdc_acm"})
MM_CANDIDATE = Ev("add", "usbmisc", "cdc-wdm0", None, {"ID_MM_CANDIDATE": "1"})
WWAN0 = Ev("add", "net", "wwan0", "wwan", {"INTERFACE": "wwan0"})
USB0 = Ev("add", "net", "usb0", None, {"INTERFACE": "usb0", "ID_USB_DRIVER": "rndis_host"})
PPP0 = Ev("add", "net", "ppp0", None, {"INTERFACE": "ppp0"})
NCM_ENX = Ev("add", "net", "enx0c5b8f279a64", None, {"ID_USB_DRIVER": "huawei_cdc_ncm"})
STICK_PART = Ev("add", "block", "sda1", "partition",
                {"ID_BUS": "usb", "ID_FS_TYPE": "vfat", "ID_FS_LABEL": "BACKUP", "DEVNAME": "/dev/sda1"})
STICK_NOPART = Ev("add", "block", "sdb", "disk", {"ID_BUS": "usb", "ID_FS_USAGE": "filesystem"})
STICK_DISK = Ev("add", "block", "sda", "disk", {"ID_BUS": "usb"})  # the disk under sda1
SD_PART = Ev("add", "block", "mmcblk0p2", "partition", {"ID_PATH": "platform-mmc"})
ETH0 = Ev("add", "net", "eth0", None, {"ID_NET_DRIVER": "bcmgenet"})
CONSOLE = Ev("add", "tty", "ttyAMA0", None, {})
KEYBOARD = Ev("add", "input", "event3", None, {"ID_BUS": "usb", "ID_INPUT_KEYBOARD": "1"})


@pytest.mark.parametrize("ev,kind", [
    (HUAWEI_TTY, MODEM), (QUECTEL_QMI_TTY, MODEM), (ACM, MODEM), (MM_CANDIDATE, MODEM),
    (WWAN0, MODEM), (USB0, MODEM), (PPP0, MODEM), (NCM_ENX, MODEM),
    (STICK_PART, STORAGE), (STICK_NOPART, STORAGE),
    (STICK_DISK, None), (SD_PART, None), (ETH0, None), (CONSOLE, None), (KEYBOARD, None),
])
def test_classify(ev: Ev, kind: str | None) -> None:
    assert classify(ev) == kind


def test_classify_survives_a_device_that_vanished() -> None:
    class Gone:
        action = "remove"

        @property
        def subsystem(self) -> str:
            raise OSError("no such device")

    assert classify(Gone()) is None


@pytest.fixture
def sync_socket() -> Iterator[tuple[Path, socket.socket]]:
    """The sync daemon's end: a real datagram socket bound at <data dir>/sync.sock."""
    d = Path(tempfile.mkdtemp(prefix="hs"))  # short path: AF_UNIX paths max 108 bytes
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(d / "sync.sock"))
    s.settimeout(2)
    yield d, s
    s.close()
    shutil.rmtree(d, ignore_errors=True)


def _drain(s: socket.socket) -> list[bytes]:
    out = []
    s.setblocking(False)
    try:
        while True:
            out.append(s.recv(100))
    except BlockingIOError:
        pass
    finally:
        s.settimeout(2)
    return out


def test_modem_appearing_requests_sync_and_is_recorded(sync_socket: tuple[Path, socket.socket]) -> None:
    data_dir, sock = sync_socket
    watcher = UdevWatcher(data_dir)  # the real trigger.request_sync
    with Store.memory() as store:
        found = watcher.feed([KEYBOARD, HUAWEI_TTY, STICK_PART], store)
        assert sock.recv(100) == b"modem"
        assert [(c.kind, c.action, c.name) for c in found] == \
            [(MODEM, "add", "ttyUSB0"), (STORAGE, "add", "sda1")]
        rows = store.read_sync(lambda c: c.execute(
            "SELECT kind, action, name, detail FROM health_event ORDER BY id").fetchall())
        assert [(r[0], r[1], r[2]) for r in rows] == \
            [("modem", "add", "ttyUSB0"), ("usb-storage", "add", "sda1")]
        assert json.loads(rows[1][3])["id_fs_label"] == "BACKUP"
    assert watcher.modem_present() is True and watcher.storage == {"sda1"}


def test_one_modem_burst_is_one_sync_request(sync_socket: tuple[Path, socket.socket]) -> None:
    data_dir, sock = sync_socket
    now = [100.0]
    watcher = UdevWatcher(data_dir, monotonic=lambda: now[0])
    # a stick enumerates several AT ports and a net interface within a second
    burst = [HUAWEI_TTY, Ev("add", "tty", "ttyUSB1", None, {"ID_USB_DRIVER": "option"}), WWAN0]
    watcher.feed(burst)
    assert sock.recv(100) == b"modem"
    assert _drain(sock) == []
    watcher.feed([Ev("remove", "tty", n, None, {"ID_USB_DRIVER": "option"})
                  for n in ("ttyUSB0", "ttyUSB1")] + [Ev("remove", "net", "wwan0", "wwan")])
    assert watcher.modem_present() is False
    now[0] += 60  # re-plugged a minute later: a new request
    watcher.feed([PPP0])
    assert sock.recv(100) == b"modem"


def test_injectable_source_may_be_a_callable(sync_socket: tuple[Path, socket.socket]) -> None:
    data_dir, sock = sync_socket
    watcher = UdevWatcher(data_dir)
    assert watcher.modem_present() is None  # nothing seen yet: unknown
    watcher.feed(lambda: iter([ETH0]))
    assert watcher.modem_present() is False
    watcher.feed(lambda: iter([USB0]))
    assert sock.recv(100) == b"modem"


def test_sync_daemon_not_running_is_not_an_error(tmp_path: Path) -> None:
    watcher = UdevWatcher(tmp_path)  # no socket bound there
    assert [c.kind for c in watcher.feed([WWAN0])] == [MODEM]


# -- this machine's real udev ---------------------------------------------------------------------------
def test_real_pyudev_enumeration_and_monitor() -> None:
    pyudev = pytest.importorskip("pyudev")
    ctx = pyudev.Context()
    devices = list(ctx.list_devices())
    assert devices, "no devices under /sys"
    kinds = [classify(d) for d in devices]  # every real device: classify never raises
    assert all(k in (MODEM, STORAGE, None) for k in kinds)
    watcher = UdevWatcher("/nonexistent")
    present = watcher.enumerate(present_devices(ctx))
    assert all(c.action == "present" for c in present)
    assert watcher.modem_present() in (True, False)
    try:
        mon = pyudev.Monitor.from_netlink(ctx)
        mon.filter_by("tty")
        mon.filter_by("net")
        mon.filter_by("block")
        mon.start()
    except OSError as e:
        pytest.skip(f"netlink sockets not permitted in this sandbox: {e}")
    got = mon.poll(timeout=0)  # nothing plugged in right now: returns at once
    assert got is None or classify(got) in (MODEM, STORAGE, None)
