"""Keep glibc from hoarding memory on a 1 GB Pi.

scrypt allocates 16 MiB per check. With glibc's dynamic mmap threshold, the first
freed 16 MiB block raises the threshold, so later ones come from per-thread arenas and
are never returned: a few concurrent logins left the hub ~100 MB larger. A fixed
threshold keeps big blocks mmapped (returned on free), and two arenas bound the rest.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


def tune_malloc(mmap_threshold: int = 256 * 1024, arenas: int = 2) -> bool:
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and \
            bool(libc.mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False


def trim() -> None:
    """Give freed heap back to the kernel. After a sync cycle's pull (megabytes of JSON
    parsed and dropped) glibc keeps the freed pages; each of the hub's Python processes
    then sat at its peak (about 14 MB of it returned, measured after a pull). The
    process's own libc (``CDLL(None)``): ``find_library`` would run ldconfig each time."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)
