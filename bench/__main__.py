"""``make bench``: run every benchmark in one go and print the target ratios together.

Each bench module exposes ``main() -> dict`` whose ``targets`` entry is a list of
``(name, measured, target, unit, ok)`` rows (``ok`` None: a figure shown beside the
targets, not a target); the rest is printed as detail.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path

BENCHES = ["bench.hub_bench", "bench.sync_bench", "bench.wire_bench", "bench.day_bench",
           "bench.fleet_bench", "bench.health_bench",
           "bench.search_bench", "bench.tracker_sync_bench", "bench.tls_bench",
           "bench.backup_bench", "bench.board_bench", "bench.image_bench"]


def main(argv: list[str]) -> int:
    wanted = [b for b in BENCHES if not argv or any(a in b for a in argv)]
    rows: list[tuple[str, str, str, str, str]] = []
    results = {}
    failed = False
    for name in wanted:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            print(f"== {name}: not available ({e})")
            continue
        print(f"== {name}", flush=True)
        t0 = time.monotonic()
        try:
            res = mod.main()
        except Exception as e:  # one bench failing must not hide the others' figures
            print(f"   FAILED: {e!r}")
            failed = True
            continue
        res["bench_s"] = round(time.monotonic() - t0, 1)  # not "wall_s": a bench may report one
        results[name] = res
        for t in res.get("targets", []):
            label, measured, target, unit, ok = t
            # ok None: a figure printed beside the targets, not one itself
            rows.append((label, f"{measured}", f"{target}", unit,
                         "info" if ok is None else "ok" if ok else "MISSED"))
    print("\nTargets (DESIGN.md §8), measured in this run:")
    w = max((len(r[0]) for r in rows), default=10)
    for label, measured, target, unit, ok in rows:
        print(f"  {label:<{w}}  {measured:>12} {unit:<8} target {target:<10} {ok}")
    out = Path("artifacts") / "bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nfull figures: {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
