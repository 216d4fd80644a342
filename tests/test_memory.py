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
junk = [bytes(60_000) for _ in range(800)]  # a pull's worth, in blocks under the threshold
after = [bytes(100) for _ in range(1000)]  # newer objects above them on the heap
del junk
gc.collect()
before = rss()
trim()
print(before, rss())
"""


def test_trim_gives_freed_heap_back() -> None:
    # a fresh interpreter: the test runner's own heap would blur the figure
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    before, after = int(out[0]), int(out[1])
    assert before - after > 30, (before, after)  # of the 48 MB freed
