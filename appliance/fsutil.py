"""File helpers for an SD card that loses power: what is renamed must also be fsynced."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in ``path`` durable (best effort: some filesystems refuse)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: str | bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` so that a power cut leaves the old file or the new one.

    The data is fsynced before the rename and the directory after it. Without the first
    fsync ext4 commits the rename (at most ``commit=`` seconds later) long before it writes
    the delayed data (the image lets dirty pages wait 10 minutes): a card whose plug is
    pulled in between boots with an empty file. ``mode`` holds from the first byte.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # two processes never share it
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            # the umask must not narrow it (0644: the group reads it); only ever widens what
            # O_CREAT gave, so a filesystem that refuses (vfat) leaves it no wider than asked
            with contextlib.suppress(OSError):
                os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
