"""SD card state: how much was written to it, and whether the kernel remounted it
read-only (what ext4 does after I/O errors: the card is failing)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DISKSTATS_PATH = "/proc/diskstats"
MOUNTS_PATH = "/proc/mounts"
SYS_DEV_BLOCK = "/sys/dev/block"
SECTOR = 512  # /proc/diskstats counts 512-byte sectors whatever the device's block size


def data_device(data_dir: str | os.PathLike[str],
                sys_dev_block: str | os.PathLike[str] = SYS_DEV_BLOCK) -> str | None:
    """Kernel name of the whole disk holding ``data_dir`` (mmcblk0p2 -> mmcblk0)."""
    try:
        st = os.stat(data_dir)
    except OSError:
        return None
    node = Path(sys_dev_block, f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}")
    try:
        real = node.resolve(strict=True)
    except OSError:
        return None  # tmpfs, overlay or other device without a block node
    if (real / "partition").exists():
        return real.parent.name
    return real.name


def read_sectors_written(device: str,
                         diskstats: str | os.PathLike[str] = DISKSTATS_PATH) -> int | None:
    """Sectors written since boot to ``device`` (field 10 of /proc/diskstats)."""
    try:
        text = Path(diskstats).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 10 and parts[2] == device:
            try:
                return int(parts[9])
            except ValueError:
                return None
    return None


def read_written_mb(device: str | None,
                    diskstats: str | os.PathLike[str] = DISKSTATS_PATH) -> float | None:
    """MiB written to ``device`` since boot: the SD wear indicator sent in heartbeats."""
    if not device:
        return None
    sectors = read_sectors_written(device, diskstats)
    return None if sectors is None else round(sectors * SECTOR / (1024 * 1024), 1)


@dataclass(frozen=True)
class Mount:
    device: str
    mountpoint: str
    fstype: str
    options: tuple[str, ...]

    @property
    def read_only(self) -> bool:
        return "ro" in self.options


def _unescape(field: str) -> str:
    # /proc/mounts escapes space, tab, newline and backslash as \ooo octal
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and len(field) >= i + 4 and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mount_of(path: str | os.PathLike[str],
             mounts: str | os.PathLike[str] = MOUNTS_PATH) -> Mount | None:
    """The mount holding ``path``: the longest mount point that is a prefix of it
    (the last such line wins, as later mounts shadow earlier ones)."""
    try:
        text = Path(mounts).read_text()
    except OSError:
        return None
    target = os.path.realpath(path)
    best: Mount | None = None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        mp = _unescape(parts[1])
        inside = target == mp or target.startswith(mp.rstrip("/") + "/")
        if inside and (best is None or len(mp) >= len(best.mountpoint)):
            best = Mount(_unescape(parts[0]), mp, parts[2], tuple(parts[3].split(",")))
    return best


def is_read_only(path: str | os.PathLike[str],
                 mounts: str | os.PathLike[str] = MOUNTS_PATH) -> bool | None:
    m = mount_of(path, mounts)
    return None if m is None else m.read_only
