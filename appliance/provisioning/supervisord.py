"""supervisord.conf (and litestream.yml) for one hub, rendered from its hub.toml.

systemd runs ``supervisord -n -c <etc>/supervisord.conf`` (``systemd/upazila-hub.service``);
supervisord runs the appliance's programs, each a separate process so that a stuck sync
never blocks the LAN server (DESIGN.md section 3):

========== ======== ==================================================================
program    priority why
========== ======== ==================================================================
dns        3        only with ``[dns] enabled``: dnsmasq, answering ``[tls] name`` with the
                    hub's LAN address (and DHCP in access-point mode); ``appliance dns``
                    execs it. Up before the hub: a tablet looks the name up first.
litestream 5        only with ``[backup] replica``. Starts a moment before the hub and,
                    since supervisord stops in reverse priority, stops after every
                    writer: the hub's last commits are shipped, and the hub's final
                    close never checkpoints away a WAL litestream has not copied
                    (that would force a full snapshot over a 2G link).
hub        10       the LAN server: first of the appliance programs, the one the
                    clinics wait for. SIGTERM, then up to 45 s to finish in-flight
                    writes (aiohttp drains requests, the store's writer commits).
sync       20       the sync worker (when this build has it).
health     30       the health agent: LEDs, button, heartbeats (when this build has it).
watchdog   40       event listener: on every TICK_5 it pings the hub and sends systemd
                    ``WATCHDOG=1`` only if the hub answered (``watchdog.py``).
========== ======== ==================================================================

Output goes to syslog (journald's /dev/log), tagged with the program name; nothing is
written to files on the SD card unless ``log_dir`` is given (development and tests).
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .. import litestream
from ..config import Config

# seconds supervisord waits after SIGTERM before SIGKILL, per program. The systemd unit's
# TimeoutStopSec must exceed their sum: supervisord stops programs one after another.
STOP_WAIT = {"dns": 5, "watchdog": 5, "health": 15, "sync": 30, "hub": 45, "litestream": 30}
PRIORITY = {"dns": 3, "litestream": 5, "hub": 10, "sync": 20, "health": 30, "watchdog": 40}
# a program that dies sooner than this after a start counts as a failed start
START_SECS = {"dns": 2, "litestream": 3, "hub": 3, "sync": 5, "health": 5, "watchdog": 1}
# no "give up" on an unattended box: supervisord waits one more second after each
# failed start; the watchdog restarts the whole unit when the hub stays down anyway
START_RETRIES = 1000


@dataclass
class Layout:
    """Where things are on the machine; the defaults are the SD image's."""

    config: Path = Path("/etc/upazila-hub/hub.toml")
    data_dir: Path = Path("/var/lib/upazila-hub")
    run_dir: Path = Path("/run/upazila-hub")  # tmpfs: socket and pid file, never the SD card
    litestream_config: Path = Path("/etc/upazila-hub/litestream.yml")
    appliance: list[str] = field(default_factory=lambda: default_appliance())
    python: str = field(default_factory=lambda: sys.executable)
    litestream: str = field(default_factory=lambda: default_litestream())
    log_dir: Path | None = None  # also write <program>.log here (development and tests)


def default_appliance() -> list[str]:
    """The ``appliance`` script of the running interpreter's environment (the image's venv)."""
    script = Path(sys.executable).parent / "appliance"
    return [str(script)] if script.exists() else [sys.executable, "-m", "appliance.cli"]


def default_litestream() -> str:
    return litestream.binary()


def available_programs() -> dict[str, bool]:
    """Which appliance programs this build has (sync and health land separately)."""
    out = {name: importlib.util.find_spec(f"appliance.{name}.command") is not None
           for name in ("sync", "health")}
    out["dns"] = importlib.util.find_spec("appliance.provisioning.dnscommand") is not None
    return out


def hub_ping_url(config: Config) -> str:
    host, _, port = str(config.get("hub", "listen")).rpartition(":")
    host = "127.0.0.1" if host in ("", "0.0.0.0", "*") else host
    if host in ("::", "[::]"):
        host = "[::1]"
    return f"http://{host}:{port or 8080}/api/system/ping"


def programs(config: Config, layout: Layout,
             available: dict[str, bool] | None = None) -> dict[str, list[str]]:
    """``{name: argv}`` of every program this hub runs, in start order."""
    available = available_programs() if available is None else available
    common = ["--config", str(layout.config), "--data-dir", str(layout.data_dir)]
    out: dict[str, list[str]] = {}
    if config.get("dns", "enabled") and available.get("dns", True):
        # as the service user: CAP_NET_BIND_SERVICE (the unit's) binds port 53; DHCP's
        # CAP_NET_ADMIN comes from the image's dnsmasq copy (see appliance/provisioning/
        # dnscommand.py). A root supervisord (tests) starts it as root: dnsmasq drops
        # to its own user.
        out["dns"] = [*layout.appliance, "dns", *common, "--run-dir", str(layout.run_dir)]
    if config.get("backup", "replica"):
        # -no-expand-env: a '$' in a password must stay a '$'
        out["litestream"] = [layout.litestream, "replicate", "-no-expand-env",
                             "-config", str(layout.litestream_config)]
    out["hub"] = [*layout.appliance, "hub", *common]
    for name in ("sync", "health"):
        if available.get(name):
            out[name] = [*layout.appliance, name, *common]
    out["watchdog"] = [layout.python, "-m", "appliance.provisioning.watchdog",
                       "--url", hub_ping_url(config)]
    return out


def _q(s: str) -> str:
    return s.replace("%", "%%")  # supervisord expands %(ENV_X)s in every value


def render(config: Config, layout: Layout, available: dict[str, bool] | None = None) -> str:
    run = layout.run_dir
    lines = [
        "; generated by `appliance provision` from " + _q(str(layout.config)) + "; do not edit:",
        "; regenerate with `appliance provision supervisord-conf --config ... --out ...`",
        "[supervisord]",
        "nodaemon=true",
        # its own log goes to stdout in the foreground, which systemd hands to journald
        "logfile=/dev/null",
        "logfile_maxbytes=0",
        f"pidfile={_q(str(run / 'supervisord.pid'))}",
        f"childlogdir={_q(str(run))}",
        "umask=027",
        "",
        "[unix_http_server]",
        f"file={_q(str(run / 'supervisor.sock'))}",
        "chmod=0700",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{_q(str(run / 'supervisor.sock'))}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
    ]
    for name, argv in programs(config, layout, available).items():
        listener = name == "watchdog"
        lines += [
            "",
            f"[{'eventlistener' if listener else 'program'}:{name}]",
            f"command={_q(shlex.join(argv))}",
            f"directory={_q(str(layout.data_dir))}",
            f"priority={PRIORITY[name]}",
            "autostart=true",
            "autorestart=true",
            f"startsecs={START_SECS[name]}",
            f"startretries={START_RETRIES}",
            "stopsignal=TERM",
            f"stopwaitsecs={STOP_WAIT[name]}",
            # any helper a program forks dies with it
            "stopasgroup=true",
            "killasgroup=true",
            # only the watchdog speaks for the unit: libraries in the other programs
            # (libsystemd under pyudev sends "ERRNO=...") must not reach systemd
            'environment=PYTHONUNBUFFERED="1"' + ("" if listener else ',NOTIFY_SOCKET=""'),
        ]
        if listener:
            # stdout is the event protocol channel; its logs are on stderr
            lines += ["events=TICK_5", "buffer_size=4", "stdout_logfile=NONE",
                      "stderr_syslog=true", _logfile("stderr", name, layout)]
        else:
            lines += ["redirect_stderr=true", "stdout_syslog=true",
                      _logfile("stdout", name, layout)]
    return "\n".join(lines) + "\n"


def _logfile(channel: str, name: str, layout: Layout) -> str:
    if layout.log_dir is None:
        return f"{channel}_logfile=NONE"
    return f"{channel}_logfile={_q(str(layout.log_dir / f'{name}.log'))}\n" \
           f"{channel}_logfile_maxbytes=1MB\n{channel}_logfile_backups=1"


def litestream_yaml(config: Config, layout: Layout, sftp_key_path: Path | None,
                    host_key: str = "") -> str:
    """litestream.yml for the hub's one database. JSON strings are valid YAML scalars.

    The control socket (0600, the service user's) is how the health agent reads the
    time of the last successful replication (``appliance/health/backup.py``).
    """
    replica = {"url": config.get("backup", "replica")}
    if sftp_key_path is not None:
        replica["key-path"] = str(sftp_key_path)
    if host_key:  # without it litestream's SFTP client trusts any server
        replica["host-key"] = host_key
    sock = litestream.socket_path(layout.data_dir)
    lines = ["# generated by `appliance provision apply`; holds the replica URL (may carry a",
             "# password): mode 0600",
             # INFO is a line per compaction, a few a minute at idle: the journal on the SD
             # card would write them all day; warnings and errors still go to it
             "logging:", "  level: warn",
             "socket:", "  enabled: true", f"  path: {json.dumps(str(sock))}",
             "dbs:", f"  - path: {json.dumps(str(layout.data_dir / 'hub.db'))}", "    replica:"]
    lines += [f"      {k}: {json.dumps(v)}" for k, v in replica.items()]
    return "\n".join(lines) + "\n"
