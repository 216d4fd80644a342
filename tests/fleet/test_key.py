"""The fleet service key file: created once, atomically, even by racing processes."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

import pytest

from appliance.errors import FleetError
from appliance.fleet import tokens


def _load(path: str, start: multiprocessing.synchronize.Event, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    start.wait()
    try:
        out.put(tokens.load_key(Path(path)).hex())
    except Exception as e:  # reported to the parent, which asserts on it
        out.put(f"error: {e}")


def test_racing_processes_agree_on_one_key(tmp_path: Path) -> None:
    """`provision generate` enrols hubs with parallel `add-hub` processes; none may read a key
    another is still writing (it once saw a 0-byte key and called it damaged)."""
    ctx = multiprocessing.get_context("fork")
    for round_ in range(5):
        path = tmp_path / f"r{round_}" / "fleet.key"
        start, out = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_load, args=(str(path), start, out)) for _ in range(8)]
        for p in procs:
            p.start()
        start.set()
        got = [out.get(timeout=30) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        assert not [g for g in got if g.startswith("error")], got
        assert len(set(got)) == 1
        assert path.read_bytes().hex() == got[0]
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert [p.name for p in path.parent.iterdir()] == ["fleet.key"]  # no temp files left


def test_damaged_key_is_refused_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "fleet.key"
    path.write_bytes(b"short")
    with pytest.raises(FleetError, match="damaged"):
        tokens.load_key(path)
    assert path.read_bytes() == b"short"  # tokens wrapped with the old key stay recoverable
