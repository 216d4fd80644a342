"""A UHC LAN in network namespaces: the hub, its clients (tablets, laptops) and an
"internet" DNS server, for the hub's resolver (``appliance dns``) and the tests built on it.

Topology (every namespace made and removed here)::

    client ns "tablet"  eth0 10.77.0.10/24 ─┐
    client ns "phone"   eth0 (DHCP)        ─┤  hub ns: br0 10.77.0.1/24 (the LAN, a bridge
                                            │  like an access point's), wan0 10.99.0.1/30
    upstream ns  eth0 10.99.0.2/30 ─────────┘  (the "internet" side, cut with cut_upstream())

Addresses exist only inside these namespaces (nothing in the root namespace, no default
route anywhere), so they cannot clash with the link harness's 10.213.0.0/16, with another
test run, or send a packet off this machine. ``Lan(hub_ns=link.ns, upstream=False)`` adds
the LAN (bridge and clients) to an existing hub namespace instead, e.g. a ``NetnsLink``
whose root side plays national.

Client namespaces get /etc/netns/<ns>/resolv.conf naming the hub: ``ip netns exec`` (so
``run()`` and ``getent()``) bind-mounts it over /etc/resolv.conf, which is how a tablet
given the hub as DNS server by DHCP resolves names through the system resolver.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .harness import NetlinkError, _pid_alive, _run_ip, enter_netns

NS_PREFIX = "hubdns-"  # hubdns-<pid>-<n>-<role>
HUB_ADDR = "10.77.0.1"
LAN_PREFIX = 24
HUB_WAN_ADDR = "10.99.0.1"
UPSTREAM_ADDR = "10.99.0.2"
BRIDGE = "br0"
REPO = Path(__file__).resolve().parents[2]

_count = 0
_count_lock = threading.Lock()


class Lan:
    """The hub's LAN: ``with Lan({"tablet": "10.77.0.10", "phone": None}) as lan:``.

    ``clients`` maps a role to its static address on the LAN, or None for a client that
    gets one by DHCP (its interface comes up without an address).
    """

    def __init__(self, clients: dict[str, str | None] | None = None, *,
                 hub_ns: str | None = None, upstream: bool = True) -> None:
        global _count
        with _count_lock:
            _count += 1
            n = _count
        self.prefix = f"{NS_PREFIX}{os.getpid()}-{n}"
        self.clients = dict(clients if clients is not None else {"tablet": "10.77.0.10"})
        self._own_hub = hub_ns is None
        self.hub_ns = hub_ns or f"{self.prefix}-hub"
        self.upstream_ns = f"{self.prefix}-up" if upstream else None
        self.hub_addr = HUB_ADDR
        self.upstream_addr = UPSTREAM_ADDR if upstream else None
        self.bridge = BRIDGE
        self._made: list[str] = []
        self._procs: list[subprocess.Popen[Any]] = []

    def ns(self, client: str) -> str:
        return f"{self.prefix}-{client}"

    # ---- lifecycle
    def __enter__(self) -> Lan:
        try:
            self._create()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _add_ns(self, name: str) -> None:
        _run_ip(["ip", "netns", "add", name])
        self._made.append(name)
        _run_ip(["ip", "-n", name, "link", "set", "lo", "up"])

    def _create(self) -> None:
        if self._own_hub:
            self._add_ns(self.hub_ns)
        hub = self.hub_ns
        _run_ip(["ip", "-n", hub, "link", "add", BRIDGE, "type", "bridge"])
        _run_ip(["ip", "-n", hub, "addr", "add", f"{HUB_ADDR}/{LAN_PREFIX}", "dev", BRIDGE])
        _run_ip(["ip", "-n", hub, "link", "set", BRIDGE, "up"])
        for i, (role, addr) in enumerate(self.clients.items()):
            ns = self.ns(role)
            self._add_ns(ns)
            port = f"lan{i}"
            # both ends made straight inside their namespaces: no name in the root one
            _run_ip(["ip", "link", "add", "name", port, "netns", hub, "type", "veth",
                     "peer", "name", "eth0", "netns", ns])
            _run_ip(["ip", "-n", hub, "link", "set", port, "master", BRIDGE, "up"])
            if addr:
                _run_ip(["ip", "-n", ns, "addr", "add", f"{addr}/{LAN_PREFIX}", "dev", "eth0"])
            _run_ip(["ip", "-n", ns, "link", "set", "eth0", "up"])
            self.set_resolver(role, HUB_ADDR)
        if self.upstream_ns:
            self._add_ns(self.upstream_ns)
            _run_ip(["ip", "link", "add", "name", "wan0", "netns", hub, "type", "veth",
                     "peer", "name", "eth0", "netns", self.upstream_ns])
            _run_ip(["ip", "-n", hub, "addr", "add", f"{HUB_WAN_ADDR}/30", "dev", "wan0"])
            _run_ip(["ip", "-n", self.upstream_ns, "addr", "add", f"{UPSTREAM_ADDR}/30",
                     "dev", "eth0"])
            _run_ip(["ip", "-n", hub, "link", "set", "wan0", "up"])
            _run_ip(["ip", "-n", self.upstream_ns, "link", "set", "eth0", "up"])

    def close(self) -> None:
        """Stop every process started here, then remove namespaces, veths and resolv.confs.

        Idempotent and best effort: every step runs even if an earlier one failed."""
        for p in self._procs:
            stop(p)
        self._procs.clear()
        for ns in self._made:
            _kill_ns(ns)
            _run_ip(["ip", "netns", "del", ns], check=False)
            shutil.rmtree(f"/etc/netns/{ns}", ignore_errors=True)
        self._made.clear()
        if not self._own_hub:  # a borrowed hub namespace keeps only what it had
            _run_ip(["ip", "-n", self.hub_ns, "link", "del", BRIDGE], check=False)

    # ---- the LAN
    def set_resolver(self, client: str, addr: str) -> None:
        d = Path("/etc/netns") / self.ns(client)
        d.mkdir(parents=True, exist_ok=True)
        # one try, short timeout: a resolver that does not answer fails the test quickly
        (d / "resolv.conf").write_text(f"nameserver {addr}\noptions timeout:2 attempts:1\n")

    def cut_upstream(self) -> None:
        """The hub's internet side goes down (like a modem whose link drops)."""
        _run_ip(["ip", "-n", self.hub_ns, "link", "set", "wan0", "down"])

    def restore_upstream(self) -> None:
        _run_ip(["ip", "-n", self.hub_ns, "link", "set", "wan0", "up"])

    def set_hub_address(self, addr: str) -> None:
        """Replace the hub's LAN address (a new DHCP lease from the UHC router)."""
        _run_ip(["ip", "-n", self.hub_ns, "addr", "flush", "dev", BRIDGE])
        _run_ip(["ip", "-n", self.hub_ns, "addr", "add", f"{addr}/{LAN_PREFIX}", "dev", BRIDGE])
        self.hub_addr = addr

    # ---- processes
    def run(self, ns: str, cmd: list[str], **popen_kw: Any) -> subprocess.Popen[Any]:
        """Start ``cmd`` in namespace ``ns``; stopped (TERM, then KILL) by close()."""
        popen_kw.setdefault("start_new_session", True)
        proc: subprocess.Popen[Any] = subprocess.Popen(["ip", "netns", "exec", ns, *cmd],
                                                       **popen_kw)
        self._procs.append(proc)
        return proc

    def exec(self, ns: str, cmd: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True,
                              text=True, timeout=timeout)

    def getent(self, client: str, name: str) -> list[str]:
        """Addresses for ``name`` through the client's system resolver (glibc, resolv.conf)."""
        res = self.exec(self.ns(client), ["getent", "ahostsv4", name], timeout=15)
        return sorted({line.split()[0] for line in res.stdout.splitlines() if line.strip()})

    @contextlib.contextmanager
    def enter(self, ns: str) -> Iterator[None]:
        """Move the calling thread into ``ns`` for the block (sockets made there stay)."""
        with enter_netns(ns):
            yield

    def start_upstream_dns(self, records: dict[str, str], log: Path) -> subprocess.Popen[Any]:
        """A real DNS server on the "internet" side: dnsmasq answering ``records`` (name ->
        IPv4) and REFUSED for anything else (it has no upstream of its own)."""
        if self.upstream_ns is None or self.upstream_addr is None:
            raise NetlinkError("this Lan has no upstream namespace")
        argv = ["/usr/sbin/dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
                "--no-hosts", "--no-resolv", "--bind-interfaces", "--pid-file=",
                f"--listen-address={self.upstream_addr}", "--port=53", "--log-facility=-",
                "--user=nobody"]
        argv += [f"--host-record={name},{addr}" for name, addr in records.items()]
        proc = self.run(self.upstream_ns, argv, stdout=log.open("ab"),
                        stderr=subprocess.STDOUT)
        wait_dns(self, self.upstream_ns, self.upstream_addr, next(iter(records)), proc=proc)
        return proc


def start_hub_dns(lan: Lan, hub_toml: Path, data_dir: Path, run_dir: Path, log: Path, *,
                  name: str, extra: list[str] | None = None,
                  timeout: float = 15) -> subprocess.Popen[Any]:
    """``appliance dns`` in the hub namespace, as supervisord runs it, until ``name`` answers.

    The process execs dnsmasq, so the Popen is dnsmasq itself; Lan.close() stops it.
    """
    cmd = [sys.executable, "-m", "appliance.cli", "dns", "--config", str(hub_toml),
           "--data-dir", str(data_dir), "--run-dir", str(run_dir), *(extra or [])]
    proc = lan.run(lan.hub_ns, cmd, cwd=REPO, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    wait_dns(lan, lan.hub_ns, lan.hub_addr, name, proc=proc, timeout=timeout, log=log)
    return proc


def wait_dns(lan: Lan, ns: str, server: str, name: str, *, proc: subprocess.Popen[Any],
             timeout: float = 15, log: Path | None = None) -> None:
    """Until ``server`` answers ``name`` (any rcode) from inside ``ns``; fail if proc dies."""
    import dns.exception
    import dns.message
    import dns.query

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            out = log.read_text(errors="replace")[-3000:] if log else ""
            raise NetlinkError(f"DNS server exited ({proc.returncode}) before answering:\n{out}")
        try:
            with lan.enter(ns):
                dns.query.udp(dns.message.make_query(name, "A"), server, timeout=0.5)
            return
        except (dns.exception.Timeout, OSError):
            if time.monotonic() > deadline:
                raise NetlinkError(f"no DNS answer from {server} in {ns} after {timeout}s") \
                    from None
            time.sleep(0.1)


def stop(proc: subprocess.Popen[Any], timeout: float = 5) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=timeout)
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def _kill_ns(ns: str) -> None:
    out = _run_ip(["ip", "netns", "pids", ns], check=False).stdout
    for word in out.split():
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(word), signal.SIGKILL)


def cleanup_stale_lans() -> list[str]:
    """Remove namespaces left by crashed runs (only those whose creating pid is dead)."""
    removed = []
    for line in _run_ip(["ip", "netns", "list"], check=False).stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        if not name.startswith(NS_PREFIX):
            continue
        try:
            pid = int(name[len(NS_PREFIX):].split("-")[0])
        except ValueError:
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            _kill_ns(name)
            _run_ip(["ip", "netns", "del", name], check=False)
            shutil.rmtree(f"/etc/netns/{name}", ignore_errors=True)
            removed.append(name)
    return removed
