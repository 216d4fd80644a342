"""glibc keeps freed heap; ``memory.trim`` gives it back (the sync daemon after each
cycle, the health agent after each commit, the hub once a minute)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import gc
from appliance.memory import trim, tune_malloc
def rss():
    for ln in open("/proc/self/status"):
        if ln.startswith("VmRSS:"):
            return int(ln.split()[1]) // 1024
tune_malloc()  # as every appliance process starts (cli.py)
start = rss()
# a pull's worth, in blocks under the threshold, each followed by a block that stays: the
# freed ones sit between live ones, so free() cannot give them back by shrinking the heap
junk, kept = [], []
for _ in range(800):
    junk.append(b"x" * 60_000)
    kept.append(b"y" * 1_000)
peak = rss()
del junk
gc.collect()
trim()
print(start, peak, rss())
"""


def test_trim_gives_freed_heap_back() -> None:
    # a fresh interpreter: the test runner's own heap would blur the figure
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    start, peak, after = (int(x) for x in out)
    assert peak - start > 40, out  # the blocks were resident
    # and after trim they are not: glibc kept them without it (55 MB of Debian's 3.11), an
    # allocator that returns them by itself passes too
    assert after - start < 10, out
