"""Real link emulation for tests and benches: a rate-capped, cuttable "modem" uplink.

Two tools, both real (no mocks):

* ``NetnsLink``: a network namespace joined to the root namespace by a veth pair, with a
  ``tbf`` qdisc on the egress of *each* end so both directions are rate-capped, and cuts
  done with ``ip link set ... down``. Needs root. The kernel here has ``tbf`` but no
  ``netem``, so there is no propagation delay or random loss; ``latency_ms`` is tbf's queue
  bound (how much a modem buffers), not a delay.
* ``FlappingProxy``: a userspace asyncio TCP proxy that resets (RST) every live connection
  periodically, can refuse or stall new ones while "down", rate-limits each direction with a
  token bucket and can add a one-way delay. Needs nothing special, so benches also run
  without root.

Safety: addresses come from 10.213.0.0/16 and exist only on the veth pair made here. The
namespace gets no default route, and the root side gets an ``unreachable`` fallback route
for the /30 so nothing meant for the link can ever leak out the real default route, even
while the root end is down (an admin-down interface loses its connected route).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import fcntl
import functools
import ipaddress
import itertools
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

NS_PREFIX = "hubtest-"  # namespaces: hubtest-<pid>-<n>
DEV_PREFIX = "hubt"  # root-side veth: hubt<pid base36>-<n base36> (IFNAMSIZ is 16)
NS_DEV = "uplink0"  # the end inside the namespace; its name only has to be unique there
SUPERNET = ipaddress.IPv4Network("10.213.0.0/16")
SAFETY_METRIC = 4213  # marks our unreachable fallback routes so cleanup_stale finds them
_LOCK_PATH = Path("/run/hubtest-netlink.lock")
_CLONE_NEWNET = 0x40000000

_counter = itertools.count()
_counter_lock = threading.Lock()

DownMode = Literal["link", "blackhole"]


class NetlinkError(RuntimeError):
    """An ``ip``/``tc`` step failed; the message carries the command and its stderr."""


@contextlib.contextmanager
def enter_netns(ns: str) -> Iterator[None]:
    """Move the *calling thread* into the named namespace ``ns`` for the block (sockets
    made there stay in it); other threads are unaffected."""
    own = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        _libc_setns(target)
        try:
            yield
        finally:
            _libc_setns(own)
    finally:
        os.close(target)
        os.close(own)


class NetnsUnavailable(NetlinkError):
    """Namespaces cannot be used here (not root, no iproute2, or forbidden by the sandbox).

    Tests should ``pytest.fail(str(exc))`` rather than skip: CI runs as root, so this
    means the environment is broken, not that the test does not apply.
    """


# --------------------------------------------------------------------------------------
# small helpers


def _run_ip(args: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=20)
    if check and proc.returncode != 0:
        raise NetlinkError(f"`{' '.join(args)}` failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def image_sysctls(repo: Path | None = None) -> list[tuple[str, str]]:
    """The ``net.*`` settings of the hub image's sysctl.d files, in the order sysctl reads
    them: what a hub's network namespace has on a real box."""
    root = (repo or Path(__file__).resolve().parents[2]) / "image/rootfs/etc/sysctl.d"
    out = []
    for path in sorted(root.glob("*.conf")):
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not line.lstrip().startswith(("#", ";")) and key.strip().startswith("net."):
                out.append((key.strip(), value.strip()))
    return out


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _global_lock() -> Iterator[None]:
    # Serialises subnet allocation across concurrent test processes (pytest-xdist, benches).
    with open(_LOCK_PATH, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _libc_setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@functools.cache
def netns_available() -> tuple[bool, str]:
    """(True, "") if this process can create namespaces, veths and tbf qdiscs, else the reason.

    Probes for real (creates and removes a throwaway namespace) because containers often
    let ``ip netns add`` succeed but forbid veth creation or qdiscs.
    """
    if os.geteuid() != 0:
        return False, f"network namespaces need root (euid={os.geteuid()})"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return (
                False,
                f"`{tool}` not found: install iproute2 (scripts/system-deps.d/netlink.txt)",
            )
    ns = f"{NS_PREFIX}{os.getpid()}-probe"
    dev = f"{DEV_PREFIX}{_b36(os.getpid())}-p"
    try:
        _run_ip(["ip", "netns", "add", ns])
        _run_ip(["ip", "link", "add", dev, "type", "veth", "peer", "name", NS_DEV, "netns", ns])
        _run_ip(
            [
                "tc",
                "qdisc",
                "add",
                "dev",
                dev,
                "root",
                "tbf",
                "rate",
                "64kbit",
                "burst",
                "3028",
                "latency",
                "100ms",
            ]
        )
    except (NetlinkError, OSError, subprocess.TimeoutExpired) as exc:
        return False, f"network namespace probe failed: {exc}"
    finally:
        _run_ip(["ip", "link", "del", dev], check=False)
        _run_ip(["ip", "netns", "del", ns], check=False)
    return True, ""


# --------------------------------------------------------------------------------------
# NetnsLink


@dataclass(frozen=True)
class LinkCounters:
    """Bytes/packets on the veth, seen from the hub. Includes Ethernet/IP/TCP headers
    (14 bytes of L2 per frame that a PPP modem would not carry) and retransmissions."""

    hub_tx_bytes: int
    hub_rx_bytes: int
    hub_tx_packets: int
    hub_rx_packets: int

    @property
    def total_bytes(self) -> int:
        return self.hub_tx_bytes + self.hub_rx_bytes

    def __sub__(self, other: LinkCounters) -> LinkCounters:
        return LinkCounters(
            self.hub_tx_bytes - other.hub_tx_bytes,
            self.hub_rx_bytes - other.hub_rx_bytes,
            self.hub_tx_packets - other.hub_tx_packets,
            self.hub_rx_packets - other.hub_rx_packets,
        )


class Flapper:
    """Handle returned by ``NetnsLink.flap``: a thread that cuts the link periodically."""

    def __init__(
        self, link: NetnsLink, every_s: float, down_s: float, mode: DownMode, both: bool
    ) -> None:
        if not 0 < down_s < every_s:
            raise ValueError("need 0 < down_s < every_s")
        self._link, self.every_s, self.down_s = link, every_s, down_s
        self._mode, self._both = mode, both
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.cuts = 0
        self._dead = 0.0
        self._down_since: float | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name=f"flap-{link.ns}", daemon=True)
        self._thread.start()

    @property
    def dead_time_s(self) -> float:
        """Total time the link was down, including a cut in progress."""
        with self._lock:
            extra = time.monotonic() - self._down_since if self._down_since is not None else 0
            return self._dead + extra

    def _loop(self) -> None:
        # Absolute schedule (cut k starts at t0 + k*every_s) so cuts do not drift.
        t0 = time.monotonic()
        try:
            for k in itertools.count(1):
                if self._stop.wait(max(0.0, t0 + k * self.every_s - time.monotonic())):
                    return
                self._link.down(mode=self._mode, both=self._both)
                with self._lock:
                    self._down_since = time.monotonic()
                    self.cuts += 1
                stopped = self._stop.wait(self.down_s)
                self._link.up()
                with self._lock:
                    assert self._down_since is not None
                    self._dead += time.monotonic() - self._down_since
                    self._down_since = None
                if stopped:
                    return
        except BaseException as exc:  # surfaced by stop(); a dead flapper must not pass silently
            self.error = exc

    def stop(self) -> None:
        """Stop cutting and leave the link up. Re-raises an error from the thread."""
        self._stop.set()
        self._thread.join(timeout=30)
        if self.error is not None:
            raise NetlinkError(f"flapper failed: {self.error}") from self.error

    def __enter__(self) -> Flapper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class NetnsLink:
    """A rate-capped veth link between the root namespace and a fresh namespace.

    By default the namespace is the hub (``hub_addr`` = x.x.x.2) and the root namespace is
    national (``national_addr`` = x.x.x.1): start hub processes with ``run()`` or create
    hub sockets inside ``enter()``; national servers in the test process listen on
    ``national_addr`` (or 0.0.0.0). ``hub_side="root"`` swaps the roles.
    """

    def __init__(
        self,
        rate_kbit: float = 256,
        *,
        burst_bytes: int | None = None,
        latency_ms: float = 500,
        hub_side: Literal["ns", "root"] = "ns",
        subnet: str | None = None,
    ) -> None:
        self.rate_kbit = float(rate_kbit)
        self._burst = burst_bytes
        self.latency_ms = latency_ms
        self.hub_side = hub_side
        self._subnet_req = ipaddress.IPv4Network(subnet) if subnet else None
        n = next(_counter)
        pid = os.getpid()
        self.ns = f"{NS_PREFIX}{pid}-{n}"
        self.root_dev = f"{DEV_PREFIX}{_b36(pid)}-{_b36(n)}"
        self.ns_dev = NS_DEV
        self.subnet: ipaddress.IPv4Network | None = None
        self._procs: list[subprocess.Popen[Any]] = []
        self._state = threading.Lock()  # down/up/set_rate may come from a flapper thread
        self._down: tuple[DownMode, bool] | None = None
        self._created = False

    # ---- addresses and names
    @property
    def root_addr(self) -> str:
        return str(self._hosts()[0])

    @property
    def ns_addr(self) -> str:
        return str(self._hosts()[1])

    @property
    def hub_addr(self) -> str:
        return self.ns_addr if self.hub_side == "ns" else self.root_addr

    @property
    def national_addr(self) -> str:
        return self.root_addr if self.hub_side == "ns" else self.ns_addr

    @property
    def is_down(self) -> bool:
        return self._down is not None

    def _hosts(self) -> list[ipaddress.IPv4Address]:
        if self.subnet is None:
            raise NetlinkError("link not created yet (use `with NetnsLink() as link:`)")
        return list(self.subnet.hosts())

    # ---- lifecycle
    def __enter__(self) -> NetnsLink:
        ok, why = netns_available()
        if not ok:
            raise NetnsUnavailable(why)
        try:
            with _global_lock():
                self.subnet = self._subnet_req or self._free_subnet()
                self._create()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> NetnsLink:
        return await asyncio.to_thread(self.__enter__)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.close)

    def _free_subnet(self) -> ipaddress.IPv4Network:
        used: list[ipaddress.IPv4Network] = []
        out = _run_ip(["ip", "-4", "-o", "addr", "show"]).stdout
        out += _run_ip(["ip", "-4", "route", "show", "table", "all"]).stdout
        for word in out.split():
            with contextlib.suppress(ValueError):
                if "/" in word or word.count(".") == 3:
                    used.append(ipaddress.IPv4Network(word, strict=False))
        for x in range(256):
            cand = ipaddress.IPv4Network(f"10.213.{x}.0/30")
            if not any(cand.overlaps(u) and u.prefixlen > 0 for u in used):
                return cand
        raise NetlinkError("no free 10.213.x.0/30 subnet (stale links? run cleanup_stale())")

    def _create(self) -> None:
        assert self.subnet is not None
        ns, rdev, ndev = self.ns, self.root_dev, self.ns_dev
        plen = self.subnet.prefixlen
        self._created = True
        _run_ip(["ip", "netns", "add", ns])
        # Create the peer straight inside the namespace: no name clash in the root namespace.
        _run_ip(["ip", "link", "add", rdev, "type", "veth", "peer", "name", ndev, "netns", ns])
        # IPv6 off on both ends: router solicitations/MLD would pollute the byte counters.
        self._disable_ipv6()
        _run_ip(["ip", "addr", "add", f"{self.root_addr}/{plen}", "dev", rdev])
        _run_ip(["ip", "-n", ns, "addr", "add", f"{self.ns_addr}/{plen}", "dev", ndev])
        # Fallback so traffic for the /30 never takes the real default route (see module doc).
        _run_ip(
            ["ip", "route", "add", "unreachable", str(self.subnet), "metric", str(SAFETY_METRIC)]
        )
        self._apply_qdiscs()
        _run_ip(["ip", "link", "set", "dev", rdev, "up"])
        _run_ip(["ip", "-n", ns, "link", "set", "dev", ndev, "up"])
        _run_ip(["ip", "-n", ns, "link", "set", "dev", "lo", "up"])

    def _disable_ipv6(self) -> None:
        p = Path(f"/proc/sys/net/ipv6/conf/{self.root_dev}/disable_ipv6")
        if p.exists():
            p.write_text("1")
        _run_ip(
            [
                "ip",
                "netns",
                "exec",
                self.ns,
                "sh",
                "-c",
                f"[ ! -e /proc/sys/net/ipv6/conf/{self.ns_dev}/disable_ipv6 ] || "
                f"echo 1 > /proc/sys/net/ipv6/conf/{self.ns_dev}/disable_ipv6",
            ]
        )

    def close(self) -> None:
        """Kill processes started in the namespace, remove veth, namespace and route.

        Idempotent and best effort: every step runs even if an earlier one failed.
        """
        errors: list[str] = []
        for p in self._procs:
            if p.poll() is None:
                p.kill()
            with contextlib.suppress(Exception):
                p.wait(timeout=5)
            for pipe in (p.stdin, p.stdout, p.stderr):
                if pipe is not None:
                    pipe.close()
        if not self._created:
            return
        self._created = False
        # Anything else still inside (children of run() processes) would keep it alive.
        _kill_ns_pids(self.ns)
        for cmd in (
            ["ip", "link", "del", self.root_dev],
            ["ip", "netns", "del", self.ns],
        ):
            proc = _run_ip(cmd, check=False)
            if (
                proc.returncode != 0
                and "Cannot find" not in proc.stderr
                and "No such" not in proc.stderr
            ):
                errors.append(f"{' '.join(cmd)}: {proc.stderr.strip()}")
        if self.subnet is not None:
            _run_ip(
                [
                    "ip",
                    "route",
                    "del",
                    "unreachable",
                    str(self.subnet),
                    "metric",
                    str(SAFETY_METRIC),
                ],
                check=False,
            )
        if errors:
            raise NetlinkError("cleanup incomplete: " + "; ".join(errors))

    # ---- shaping
    def _burst_bytes(self) -> int:
        if self._burst is not None:
            return self._burst
        # At least two full frames (tbf drops packets bigger than burst), else ~20 ms of rate.
        return max(2 * 1514, int(self.rate_kbit * 1000 / 8 * 0.02))

    def _tbf_args(self) -> list[str]:
        return [
            "tbf",
            "rate",
            f"{self.rate_kbit:g}kbit",
            "burst",
            str(self._burst_bytes()),
            "latency",
            f"{self.latency_ms:g}ms",
        ]

    def _apply_qdiscs(self) -> None:
        _run_ip(["tc", "qdisc", "replace", "dev", self.root_dev, "root", *self._tbf_args()])
        _run_ip(
            ["tc", "-n", self.ns, "qdisc", "replace", "dev", self.ns_dev, "root", *self._tbf_args()]
        )

    def set_rate(self, kbit: float, *, burst_bytes: int | None = None) -> None:
        """Change the cap of both directions (takes effect immediately, even mid-transfer)."""
        with self._state:
            self.rate_kbit = float(kbit)
            if burst_bytes is not None:
                self._burst = burst_bytes
            if self._down is None or self._down[0] != "blackhole":
                self._apply_qdiscs()

    def sysctl(self, settings: list[tuple[str, str]]) -> None:
        """Set per-namespace sysctls (``net.*``) in the namespace."""
        for key, value in settings:
            _run_ip(["ip", "netns", "exec", self.ns, "sysctl", "-qw", f"{key}={value}"])

    # ---- cuts
    def _hub_dev_cmd(self, state: str) -> list[str]:
        if self.hub_side == "ns":
            return ["ip", "-n", self.ns, "link", "set", "dev", self.ns_dev, state]
        return ["ip", "link", "set", "dev", self.root_dev, state]

    def _national_dev_cmd(self, state: str) -> list[str]:
        if self.hub_side == "ns":
            return ["ip", "link", "set", "dev", self.root_dev, state]
        return ["ip", "-n", self.ns, "link", "set", "dev", self.ns_dev, state]

    def down(self, *, mode: DownMode = "link", both: bool = False) -> None:
        """Cut the link.

        mode="link" (default, like a modem whose ppp0 vanishes): the hub-side interface goes
        admin-down. The hub then gets ENETUNREACH at once for new connects; national sees
        silence (its connects time out); in-flight TCP stalls and retransmits with backoff.
        ``both=True`` also downs the national end (national then gets EHOSTUNREACH).
        mode="blackhole": interfaces stay up, every packet is dropped in both directions
        (pfifo limit 0), so connects time out from both sides.
        Queued packets are lost either way, as on a real drop.
        """
        with self._state:
            if self._down is not None:
                return
            if mode == "link":
                _run_ip(self._hub_dev_cmd("down"))
                if both:
                    _run_ip(self._national_dev_cmd("down"))
            elif mode == "blackhole":
                drop = ["root", "pfifo", "limit", "0"]
                _run_ip(["tc", "qdisc", "replace", "dev", self.root_dev, *drop])
                _run_ip(["tc", "-n", self.ns, "qdisc", "replace", "dev", self.ns_dev, *drop])
            else:
                raise ValueError(f"unknown mode {mode!r}")
            self._down = (mode, both)

    def up(self) -> None:
        """Restore the link after ``down()`` (no-op if it is up)."""
        with self._state:
            if self._down is None:
                return
            mode, both = self._down
            if mode == "link":
                if both:
                    _run_ip(self._national_dev_cmd("up"))
                _run_ip(self._hub_dev_cmd("up"))
            else:
                self._apply_qdiscs()
            self._down = None

    def flap(
        self, every_s: float, down_s: float, *, mode: DownMode = "link", both: bool = False
    ) -> Flapper:
        """Cut the link for ``down_s`` at t = every_s, 2*every_s, ... (period, not gap).

        Returns a ``Flapper`` with ``.stop()``, ``.cuts`` and ``.dead_time_s``.
        """
        return Flapper(self, every_s, down_s, mode, both)

    # ---- processes and sockets in the namespace
    def run(self, cmd: list[str], **popen_kw: Any) -> subprocess.Popen[Any]:
        """Start ``cmd`` inside the namespace; it is killed on close() if still running."""
        if not self._created:
            raise NetlinkError("link not created")
        # `ip netns exec` execs cmd in place, so proc.pid/kill() address cmd itself.
        proc: subprocess.Popen[Any] = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, *cmd], **popen_kw
        )
        self._procs.append(proc)
        return proc

    @contextlib.contextmanager
    def enter(self) -> Iterator[None]:
        """Move the *calling thread* into the namespace for the block.

        Sockets created inside keep living in the namespace after the block, so a test can
        make hub-side sockets (or run an asyncio client whose connections are all opened
        inside the block) without a subprocess. Other threads are unaffected.
        """
        with enter_netns(self.ns):
            yield

    def bytes_counters(self) -> LinkCounters:
        """Bytes/packets that crossed the veth so far (root-side sysfs counters)."""
        base = Path("/sys/class/net") / self.root_dev / "statistics"

        def rd(name: str) -> int:
            return int((base / name).read_text())

        tx, rx, txp, rxp = rd("tx_bytes"), rd("rx_bytes"), rd("tx_packets"), rd("rx_packets")
        if self.hub_side == "ns":  # root tx = towards the hub
            return LinkCounters(rx, tx, rxp, txp)
        return LinkCounters(tx, rx, txp, rxp)

    def qdisc_stats(self) -> str:
        """``tc -s qdisc`` of both ends (drops/overlimits), for debugging a bench."""
        a = _run_ip(["tc", "-s", "qdisc", "show", "dev", self.root_dev]).stdout
        b = _run_ip(["tc", "-n", self.ns, "-s", "qdisc", "show", "dev", self.ns_dev]).stdout
        return f"root {self.root_dev}:\n{a}ns {self.ns_dev}:\n{b}"


def _kill_ns_pids(ns: str) -> None:
    out = _run_ip(["ip", "netns", "pids", ns], check=False).stdout
    for word in out.split():
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(word), 9)


def cleanup_stale(*, include_live: bool = False) -> list[str]:
    """Remove namespaces, veths and fallback routes left by crashed runs.

    Only touches names with our prefixes, and by default only those whose creating pid is
    dead (a parallel test run keeps its links). Returns what was removed.
    """
    removed: list[str] = []

    def stale(pid_txt: str, base: int) -> bool:
        try:
            pid = int(pid_txt, base)
        except ValueError:
            return False
        return include_live or (pid != os.getpid() and not _pid_alive(pid))

    for line in _run_ip(["ip", "netns", "list"], check=False).stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        if name.startswith(NS_PREFIX) and stale(name[len(NS_PREFIX) :].split("-")[0], 10):
            _kill_ns_pids(name)
            _run_ip(["ip", "netns", "del", name], check=False)
            removed.append(f"netns {name}")
    for line in _run_ip(
        ["ip", "-o", "link", "show", "type", "veth"], check=False
    ).stdout.splitlines():
        parts = line.split(":")
        if len(parts) < 2:
            continue
        name = parts[1].strip().split("@")[0]
        if name.startswith(DEV_PREFIX) and stale(name[len(DEV_PREFIX) :].split("-")[0], 36):
            _run_ip(["ip", "link", "del", name], check=False)
            removed.append(f"link {name}")
    # Fallback routes whose veth address is gone.
    addrs = _run_ip(["ip", "-4", "-o", "addr", "show"], check=False).stdout
    live = [
        ipaddress.IPv4Interface(w).network
        for w in addrs.split()
        if w.startswith("10.213.") and "/" in w
    ]
    routes = _run_ip(["ip", "-4", "route", "show", "type", "unreachable"], check=False).stdout
    for line in routes.splitlines():
        words = line.split()
        if len(words) < 2 or f"metric {SAFETY_METRIC}" not in line:
            continue
        with contextlib.suppress(ValueError):
            net = ipaddress.IPv4Network(words[1])
            if net.subnet_of(SUPERNET) and (include_live or net not in live):
                _run_ip(
                    ["ip", "route", "del", "unreachable", str(net), "metric", str(SAFETY_METRIC)],
                    check=False,
                )
                removed.append(f"route unreachable {net}")
    return removed


# --------------------------------------------------------------------------------------
# FlappingProxy


class _TokenBucket:
    """Shared per direction across connections: a modem link is one pipe, not per socket."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(256.0, rate / 20)  # ~50 ms of burst, like a small modem buffer
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self.lock = asyncio.Lock()  # FIFO between connections

    async def take(self, n: int) -> None:
        async with self.lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            self.tokens -= n  # may go negative: then we owe time, which keeps the average exact
            if self.tokens < 0:
                await asyncio.sleep(-self.tokens / self.rate)


@dataclass(frozen=True)
class ProxyStats:
    bytes_up: int  # client -> target payload bytes forwarded (no TCP/IP headers)
    bytes_down: int  # target -> client
    connections: int  # accepted in total
    live: int  # open right now
    cuts: int  # reset/stall events
    connections_reset: int  # connections aborted with RST by cuts
    dead_time_s: float  # total time refused/stalled, including a cut in progress


class _Conn:
    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.target: asyncio.StreamWriter | None = None
        self.tasks: list[asyncio.Task[None]] = []


def _abort(writer: asyncio.StreamWriter | None) -> None:
    # SO_LINGER {on, 0} + close = the kernel sends RST: the peer sees ECONNRESET.
    if writer is None:
        return
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FlappingProxy:
    """TCP proxy listen_host:listen_port -> target that behaves like a flaky modem uplink.

    * every ``every_s`` seconds (at t = every_s, 2*every_s, ...) a cut happens, or on demand
      with ``cut()``. mode="reset": every live connection is aborted with RST (both the
      client and the target see ECONNRESET) and, if ``down_s`` > 0, the listener is closed
      for ``down_s`` so new connects get ECONNREFUSED. mode="stall": nothing is reset; no
      byte moves for ``down_s`` (connects still complete: the kernel does the handshake).
    * ``up_rate`` / ``down_rate`` (bytes/s; ``rate`` sets both) cap client->target and
      target->client with a token bucket shared by all connections.
    * ``delay_s`` adds one-way delay per direction (pipelined, so it does not cut the rate);
      the only way to model RTT here since the kernel lacks netem.
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        every_s: float | None = None,
        down_s: float = 0.0,
        mode: Literal["reset", "stall"] = "reset",
        rate: float | None = None,
        up_rate: float | None = None,
        down_rate: float | None = None,
        delay_s: float = 0.0,
    ) -> None:
        if every_s is not None and not 0 <= down_s < every_s:
            raise ValueError("need 0 <= down_s < every_s")
        if mode not in ("reset", "stall"):
            raise ValueError(f"unknown mode {mode!r}")
        self.target = (target_host, target_port)
        self.listen_host = listen_host
        self.port = listen_port
        self.every_s, self.down_s, self.mode, self.delay_s = every_s, down_s, mode, delay_s
        self.up_rate = up_rate if up_rate is not None else rate
        self.down_rate = down_rate if down_rate is not None else rate
        self.bytes_up = self.bytes_down = 0
        self.connections = self.cuts = self.connections_reset = 0
        self._dead = 0.0
        self._down_since: float | None = None
        self._conns: set[_Conn] = set()
        self._server: asyncio.base_events.Server | None = None
        self._bg: set[asyncio.Task[None]] = set()
        self._buckets: dict[str, _TokenBucket | None] = {}
        self._link_up: asyncio.Event | None = None

    # ---- lifecycle
    async def start(self) -> FlappingProxy:
        self._link_up = asyncio.Event()
        self._link_up.set()
        self._buckets = {
            "up": _TokenBucket(self.up_rate) if self.up_rate else None,
            "down": _TokenBucket(self.down_rate) if self.down_rate else None,
        }
        await self._listen()
        if self.every_s:
            self._spawn(self._flapper(self.every_s))
        return self

    async def stop(self) -> None:
        for t in list(self._bg):
            t.cancel()
        await asyncio.gather(*self._bg, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            self._server = None
        for c in list(self._conns):
            self._close_conn(c, rst=True)
        self._end_window()

    async def __aenter__(self) -> FlappingProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @classmethod
    def thread(cls, target_host: str, target_port: int, **kwargs: Any) -> ThreadedProxy:
        """Same proxy on its own event loop thread, for sync code: ``with ... as p:``."""
        return ThreadedProxy(cls(target_host, target_port, **kwargs))

    def stats(self) -> ProxyStats:
        extra = time.monotonic() - self._down_since if self._down_since is not None else 0.0
        return ProxyStats(
            self.bytes_up,
            self.bytes_down,
            self.connections,
            len(self._conns),
            self.cuts,
            self.connections_reset,
            self._dead + extra,
        )

    @property
    def is_down(self) -> bool:
        return self._down_since is not None

    # ---- cuts
    async def cut(self, down_s: float | None = None) -> None:
        """Cut now: reset (or stall) as configured, then stay down ``down_s`` in background."""
        down = self.down_s if down_s is None else down_s
        self.cuts += 1
        if self.mode == "reset":
            for c in list(self._conns):
                self._close_conn(c, rst=True)
                self.connections_reset += 1
        if down <= 0 or self.is_down:
            return
        self._down_since = time.monotonic()
        if self.mode == "reset" and self._server is not None:
            self._server.close()  # new connects now get ECONNREFUSED
            self._server = None
        else:
            assert self._link_up is not None
            self._link_up.clear()
        self._spawn(self._reopen_after(down))

    async def _reopen_after(self, down: float) -> None:
        await asyncio.sleep(down)
        self._end_window()
        if self.mode == "reset":
            await self._listen()

    def _end_window(self) -> None:
        if self._down_since is not None:
            self._dead += time.monotonic() - self._down_since
            self._down_since = None
        if self._link_up is not None:
            self._link_up.set()

    async def _flapper(self, every: float) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for k in itertools.count(1):
            await asyncio.sleep(max(0.0, t0 + k * every - loop.time()))
            await self.cut()

    async def _listen(self) -> None:
        # Re-listen on the same port after a refuse window; retry briefly if still in use.
        for attempt in range(50):
            try:
                self._server = await asyncio.start_server(
                    self._handle, self.listen_host, self.port, reuse_address=True
                )
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or attempt == 49 or self.port == 0:
                    raise
                await asyncio.sleep(0.02)
        assert self._server is not None
        self.port = self._server.sockets[0].getsockname()[1]

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)
        return task

    # ---- forwarding
    async def _handle(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        conn = _Conn(cw)
        self._conns.add(conn)
        self.connections += 1
        try:
            try:
                tr, tw = await asyncio.open_connection(*self.target)
            except OSError:
                self._close_conn(conn, rst=True)  # target down: the client sees a reset
                return
            conn.target = tw
            if conn not in self._conns:  # cut while connecting
                _abort(tw)
                return
            up = asyncio.ensure_future(self._pump(cr, tw, "up"))
            down = asyncio.ensure_future(self._pump(tr, cw, "down"))
            conn.tasks = [up, down]
            done, _ = await asyncio.wait([up, down], return_when=asyncio.FIRST_EXCEPTION)
            if any(not t.cancelled() and t.exception() for t in done):
                self._close_conn(conn, rst=True)  # a reset on one side propagates as a reset
            else:
                await asyncio.gather(up, down, return_exceptions=True)
                self._close_conn(conn, rst=False)
        except asyncio.CancelledError:
            self._close_conn(conn, rst=True)
            raise

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        direction: Literal["up", "down"],
    ) -> None:
        bucket = self._buckets.get(direction)
        chunk = 65536 if bucket is None else int(min(16384, max(256, bucket.rate / 20)))
        # Two stages so a one-way delay does not serialise reads and writes.
        q: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=256)

        async def ingress() -> None:
            assert self._link_up is not None
            while True:
                data = await reader.read(chunk)
                # While stalled, don't spend tokens: bytes queued now would burst out at `up`.
                await self._link_up.wait()
                if bucket is not None and data:
                    await bucket.take(len(data))  # serialisation on the "wire"
                await q.put((time.monotonic() + self.delay_s, data))
                if not data:
                    return

        async def egress() -> None:
            assert self._link_up is not None
            while True:
                due, data = await q.get()
                if (wait := due - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                await self._link_up.wait()  # stall mode: hold bytes while down
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()  # half-close passes through
                    return
                writer.write(data)
                if direction == "up":
                    self.bytes_up += len(data)
                else:
                    self.bytes_down += len(data)
                await writer.drain()  # backpressure: keep the proxy's buffer small

        # Either stage failing (e.g. ECONNRESET on read) must end the pump, not strand the other.
        stages = [asyncio.ensure_future(ingress()), asyncio.ensure_future(egress())]
        try:
            done, _ = await asyncio.wait(stages, return_when=asyncio.FIRST_EXCEPTION)
            for t in done:
                if not t.cancelled() and (exc := t.exception()) is not None:
                    raise exc
        finally:
            for t in stages:
                t.cancel()

    def _close_conn(self, conn: _Conn, *, rst: bool) -> None:
        if conn not in self._conns:
            return
        self._conns.discard(conn)
        current = asyncio.current_task()
        for t in conn.tasks:
            if t is not current:
                t.cancel()
        if rst:
            _abort(conn.client)
            _abort(conn.target)
        else:
            conn.client.close()
            if conn.target is not None:
                conn.target.close()


class ThreadedProxy:
    """``FlappingProxy`` on a private event loop thread (for sync tests and benches)."""

    def __init__(self, proxy: FlappingProxy) -> None:
        self.proxy = proxy
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="flapping-proxy", daemon=True
        )

    def _call(self, fn: Callable[[], Awaitable[object]], timeout: float = 10) -> object:
        async def wrap() -> object:
            return await fn()

        fut: Future[object] = asyncio.run_coroutine_threadsafe(wrap(), self._loop)
        return fut.result(timeout)

    def __enter__(self) -> ThreadedProxy:
        self._thread.start()
        try:
            self._call(self.proxy.start)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop.is_running():
            with contextlib.suppress(Exception):
                self._call(self.proxy.stop)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    @property
    def port(self) -> int:
        return self.proxy.port

    def stats(self) -> ProxyStats:
        return self._call(self._stats)  # type: ignore[return-value]

    async def _stats(self) -> ProxyStats:
        return self.proxy.stats()

    def cut(self, down_s: float | None = None) -> None:
        self._call(lambda: self.proxy.cut(down_s))
