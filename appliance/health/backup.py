"""How far the litestream backup is behind, for heartbeats and ``/api/hub/status``.

Source: litestream's control socket (``socket:`` in litestream.yml, 0600). Its ``GET
/list`` gives each database's ``last_sync_at``: when litestream last finished a replica
sync that left the replica at the database's position (an idle database is re-checked
every second). So ``lag_s = now - last_sync_at`` bounds the data a dead card would lose.
Why not the alternatives in litestream 0.5.17: the Prometheus ``addr:`` endpoint has
operation and error counters but no time of the last replication, and would open a TCP
port; ``litestream ltx`` lists the replica's files but costs an SSH login over the
uplink every time.

litestream keeps the reason of a failure in its log only; when the replica is more than
``probe_after_s`` behind, ``litestream ltx -level 0`` (the same config, key and pinned
host key) is run, at most every ``probe_every_s``, and its error is the report's
``error`` ("ssh: handshake failed: ssh: host key mismatch").

When litestream has never replicated since the agent has been watching, the lag counts
from ``watching_since``, so a backup broken from the first day still grows a lag.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import litestream
from ..config import Config
from ..dhis2.timefmt import iso_z
from .syncstatus import parse_iso

log = logging.getLogger(__name__)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+):[^@\s]*@")
MAX_ERROR = 300


@dataclass(frozen=True)
class BackupSettings:
    db: Path
    socket: Path
    litestream_config: Path | None  # None: no probe (no hub.toml to find it beside)
    litestream: str
    secret: str = ""  # a password in the replica URL: never in a report
    probe_after_s: float = 120.0
    probe_every_s: float = 300.0
    timeout_s: float = 60.0

    @classmethod
    def from_config(cls, config: Config) -> BackupSettings | None:
        replica = str(config.get("backup", "replica"))
        if not replica:
            return None
        data_dir = Path(config.data_dir)
        u = replica.split("://", 1)[-1].split("@", 1)
        secret = u[0].split(":", 1)[1] if len(u) == 2 and ":" in u[0] else ""
        return cls(db=(data_dir / "hub.db").absolute(),
                   socket=litestream.socket_path(data_dir),
                   litestream_config=litestream.config_path(config.source)
                   if config.source is not None else None,
                   litestream=litestream.binary(), secret=secret)


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("litestream", timeout=timeout)
        self.path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def control_get(sock: Path, path: str, timeout_s: float = 3.0) -> Any:
    """GET on litestream's control socket; JSON, or OSError/ValueError."""
    conn = _UnixHTTPConnection(sock, timeout_s)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read(1 << 20)
        if resp.status != 200:
            raise OSError(f"litestream answered {resp.status} to {path}")
        return json.loads(body)
    except http.client.HTTPException as e:
        raise OSError(f"litestream's control socket: {e}") from None
    finally:
        conn.close()


def last_sync(sock: Path, db: Path) -> float | None:
    """litestream's ``last_sync_at`` for ``db`` (epoch s); None: no replication since it
    started. OSError: litestream does not answer."""
    doc = control_get(sock, "/list")
    for entry in doc.get("databases") or []:
        if Path(str(entry.get("path", ""))).resolve() == db.resolve():  # symlinks, ..
            at = parse_iso(entry.get("last_sync_at"))
            return at.timestamp() if at is not None else None
    raise OSError(f"litestream does not replicate {db}")


class BackupMonitor:
    def __init__(self, settings: BackupSettings) -> None:
        self.s = settings
        self._probe_at = -1e18
        self._probe_error: str | None = None

    def clean(self, text: str) -> str:
        text = _URL_PASSWORD.sub(r"\1:(hidden)@", text)
        if self.s.secret:
            text = text.replace(self.s.secret, "(hidden)")
        return text.strip()[:MAX_ERROR]

    def check(self, previous: dict[str, Any] | None, now: float | None = None) -> dict[str, Any]:
        """The report (blocking: run in a worker thread). ``previous``: the last report, for
        the last replication seen before a litestream restart and ``watching_since``."""
        now = time.time() if now is None else now
        prev = previous or {}
        parsed = parse_iso(prev.get("last_replicated_at"))
        last = parsed.timestamp() if parsed is not None else None
        since = parse_iso(prev.get("watching_since"))
        watching = since.timestamp() if since is not None else now
        down: str | None = None
        try:
            seen = last_sync(self.s.socket, self.s.db)
            if seen is not None and (last is None or seen > last):
                last = seen
        except (OSError, ValueError) as e:
            down = f"litestream is not running or not answering ({e})"
        lag = max(0.0, now - (last if last is not None else watching))
        error = None
        if down is not None or lag > self.s.probe_after_s:
            error = self.clean(self._why(now, lag, down))
        else:
            self._probe_error = None
        return {"last_replicated_at": iso_z(last) if last is not None else None,
                "lag_s": round(lag, 1), "error": error, "checked_at": iso_z(now),
                "watching_since": iso_z(watching)}

    def _why(self, now: float, lag: float, down: str | None) -> str:
        """litestream 0.5.17 exits at start when the server is unreachable (supervisord
        starts it again), so "not running" comes with the server's reason too."""
        if now - self._probe_at >= self.s.probe_every_s:
            self._probe_at = now
            self._probe_error = self.probe()
        server = f"backup server: {self._probe_error}" if self._probe_error else None
        if down and server:
            return f"{down}; {server}"
        return down or server or (
            f"the backup server answers, but litestream has not replicated for {lag:.0f} s")

    def probe(self) -> str | None:
        """litestream's own reason it cannot reach the replica; None: it can."""
        if self.s.litestream_config is None:
            return None
        cmd = [self.s.litestream, "ltx", "-no-expand-env", "-config",
               str(self.s.litestream_config), "-level", "0", str(self.s.db)]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, check=False,
                                 timeout=self.s.timeout_s)
        except subprocess.TimeoutExpired:
            return f"the backup server did not answer within {self.s.timeout_s:.0f} s"
        except OSError as e:
            return self.clean(f"cannot run litestream: {e}")
        if res.returncode == 0:
            return None
        lines = (res.stderr.strip() or res.stdout.strip()).splitlines()
        last = lines[-1] if lines else f"exit code {res.returncode}"
        return self.clean(last.removeprefix("Error: "))


def heartbeat_backup(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """The heartbeat's ``backup`` (null: no [backup] replica on this hub)."""
    if report is None:
        return None
    return {k: report.get(k) for k in ("last_replicated_at", "lag_s", "error")}
