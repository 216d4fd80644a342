"""supervisord event listener that feeds systemd's watchdog only while the hub answers.

    [eventlistener:watchdog]
    command=python -m appliance.provisioning.watchdog --url http://127.0.0.1:80/api/system/ping
    events=TICK_5

On every TICK_5 event it GETs the hub's ``/api/system/ping``. If the hub answered 200 it
sends ``WATCHDOG=1`` to ``$NOTIFY_SOCKET`` (and ``READY=1`` the first time, which is
what makes ``upazila-hub.service``, ``Type=notify``, "started"). If the hub does not
answer, nothing is sent: after ``WatchdogSec`` systemd restarts the whole unit. That
catches what supervisord cannot see: a hub process that is alive but hung, a hub
supervisord gave up on, and a hung supervisord (no ticks, no pings).

The unit sets ``NotifyAccess=all`` because this listener is a child of supervisord,
not the main process; it is long-lived, so systemd can always attribute its messages
to the unit (a short-lived ``systemd-notify`` can exit before PID 1 looks it up).

Standard library only and no imports from the rest of the appliance on purpose.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from typing import TextIO


def sd_notify(message: str, sock_path: str | None = None) -> bool:
    """Send one sd_notify datagram; False when not under systemd or the send failed."""
    path = sock_path if sock_path is not None else os.environ.get("NOTIFY_SOCKET", "")
    if not path:
        return False
    if path.startswith("@"):  # abstract namespace
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.sendto(message.encode(), path)
        return True
    except OSError as e:
        log(f"sd_notify failed: {e}")
        return False


def ping(url: str, timeout: float) -> tuple[bool, str]:
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            r.read(64)
            ok = r.status == 200
            detail = f"HTTP {r.status}"
    except urllib.error.HTTPError as e:
        ok, detail = False, f"HTTP {e.code}"
    except (OSError, ValueError) as e:  # refused, timeout, reset, bad URL
        ok, detail = False, str(getattr(e, "reason", e))
    return ok, f"{detail} in {1000 * (time.monotonic() - t0):.0f} ms"


def log(msg: str) -> None:
    print(f"watchdog: {msg}", file=sys.stderr, flush=True)


class Watchdog:
    def __init__(self, url: str, timeout: float, sock_path: str | None = None) -> None:
        self.url = url
        self.timeout = timeout
        self.sock_path = sock_path
        self.ready = False
        self.healthy: bool | None = None

    def tick(self) -> bool:
        ok, detail = ping(self.url, self.timeout)
        if ok != self.healthy:  # log changes only: one line per outage, not one per tick
            log(f"hub {'answers' if ok else 'does not answer'} at {self.url}: {detail}")
            self.healthy = ok
        if ok:
            msg = f"WATCHDOG=1\nSTATUS=hub answering ({detail})"
            if not self.ready:
                msg = "READY=1\n" + msg
            if sd_notify(msg, self.sock_path):
                self.ready = True
        else:
            sd_notify(f"STATUS=hub not answering: {detail}", self.sock_path)
        return ok


def serve(dog: Watchdog, stdin: TextIO, stdout: TextIO) -> int:
    """The supervisor event listener protocol: READY, one event, RESULT, repeat."""
    while True:
        stdout.write("READY\n")
        stdout.flush()
        header = stdin.readline()
        if not header:
            return 0  # supervisord went away
        fields = dict(tok.split(":", 1) for tok in header.split() if ":" in tok)
        stdin.read(int(fields.get("len", "0")))
        if fields.get("eventname", "").startswith("TICK"):
            dog.tick()
        stdout.write("RESULT 2\nOK")
        stdout.flush()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m appliance.provisioning.watchdog",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="the hub's /api/system/ping URL")
    p.add_argument("--timeout", type=float, default=4.0,
                   help="seconds to wait for the hub (below the 5 s tick)")
    p.add_argument("--once", action="store_true",
                   help="ping once, notify if the hub answers, exit 0/1 (no supervisord)")
    args = p.parse_args(argv)
    dog = Watchdog(args.url, args.timeout)
    # supervisord stops us with SIGTERM: a clean exit, not "terminated by SIGTERM"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if args.once:
        return 0 if dog.tick() else 1
    return serve(dog, sys.stdin, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
