"""The A/B slots, through RAUC (#13): the ``Installer`` seam and the real ``RaucInstaller``.

The update agent (``updater``) decides *when*; an ``Installer`` does the few things only
the boot hardware can: say which slot booted, check a bundle's signature, write the other
slot, and mark a slot good, bad or active. ``RaucInstaller`` runs the ``rauc`` command
(Debian's ``rauc`` 1.8), which talks to the RAUC service over D-Bus for ``status`` and
``install``; ``info`` reads the bundle itself.

* ``status``: ``rauc status --detailed --output-format=json``: the compatible, the booted
  slot's bootname, the primary (next boot) slot and each slot's installed bundle version.
* ``check_bundle``: ``rauc info --keyring=<[update] keyring>`` (or system.conf's): a bundle
  whose signature does not chain to the keyring is refused before anything is written.
  RAUC that says it skipped verification (no keyring anywhere) is a refusal too.
* ``install``: ``rauc install <bundle>``: the inactive slot, then that slot is primary.
* ``mark_good`` / ``mark_bad``: ``rauc status mark-good|mark-bad booted``;
  ``mark_active(slot)``: ``rauc status mark-active <slot>`` (which slot boots next).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import UpdateError

INFO_TIMEOUT_S = 300.0
INSTALL_TIMEOUT_S = 3600.0  # a slow SD card writing a 1 GB root file system
STATUS_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Slot:
    name: str                 # RAUC's slot name, e.g. rootfs.1
    bootname: str | None      # the bootloader's name for it, e.g. B
    state: str | None         # booted, active or inactive
    boot_status: str | None   # good or bad, as the bootloader has it
    version: str | None       # the version of the bundle installed into it (None: none)


@dataclass(frozen=True)
class SystemStatus:
    compatible: str | None
    booted: str | None        # bootname of the slot running now
    primary: str | None       # slot name the bootloader tries next
    slots: tuple[Slot, ...] = field(default_factory=tuple)

    def slot(self, name_or_bootname: str | None) -> Slot | None:
        return next((s for s in self.slots if name_or_bootname in (s.name, s.bootname)), None)

    @property
    def version(self) -> str | None:
        """The release running now (None: the slot was flashed, not installed by RAUC)."""
        s = self.slot(self.booted)
        return s.version if s else None

    @property
    def primary_bootname(self) -> str | None:
        s = self.slot(self.primary)
        return s.bootname if s else None


@dataclass(frozen=True)
class BundleInfo:
    version: str
    compatible: str


class Installer(Protocol):
    """What the update agent needs from the boot hardware."""

    def status(self) -> SystemStatus: ...

    def check_bundle(self, path: Path) -> BundleInfo: ...

    def install(self, path: Path) -> None: ...

    def mark_good(self) -> None: ...

    def mark_bad(self) -> None: ...

    def mark_active(self, slot: str) -> None: ...


def rauc_error(*outputs: str) -> str:
    """RAUC's reason in one line, without its progress chatter."""
    lines = [ln.strip() for out in outputs for ln in out.splitlines() if ln.strip()]
    picked = [ln for ln in lines if ln.startswith("LastError:")] or \
        [ln for ln in lines if "rauc-Message" not in ln and "%" not in ln[:5]
         and ln not in ("installing", "idle")] or lines
    return "; ".join(picked)[-500:] or "no reason given"


def parse_status(doc: Any) -> SystemStatus:
    """``rauc status --detailed --output-format=json`` as RAUC 1.8 prints it."""
    if not isinstance(doc, dict):
        raise UpdateError("rauc status printed no JSON object")
    slots = []
    for item in doc.get("slots") or []:
        if not isinstance(item, dict):
            continue
        for name, s in item.items():
            if not isinstance(s, dict):
                continue
            bundle = (s.get("slot_status") or {}).get("bundle") or {}
            version = bundle.get("version") if isinstance(bundle, dict) else None
            slots.append(Slot(str(name), _text(s.get("bootname")), _text(s.get("state")),
                              _text(s.get("boot_status")), _text(version)))
    return SystemStatus(_text(doc.get("compatible")), _text(doc.get("booted")),
                        _text(doc.get("boot_primary")), tuple(slots))


def _text(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


@dataclass
class RaucInstaller:
    """The real slots, through the ``rauc`` command."""

    rauc: str = "rauc"
    keyring: str = ""            # empty: system.conf's keyring
    conf: str = ""               # empty: RAUC's own system.conf lookup
    env: Mapping[str, str] | None = None  # e.g. DBUS_SYSTEM_BUS_ADDRESS (tests)

    def _cmd(self, *args: str, keyring: bool = False) -> list[str]:
        out = [self.rauc]
        if self.conf:
            out.append(f"--conf={self.conf}")
        if keyring and self.keyring:
            out.append(f"--keyring={self.keyring}")
        return out + list(args)

    def _run(self, cmd: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        env = None if self.env is None else {**os.environ, **self.env}
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  env=env, check=False)
        except FileNotFoundError:
            raise UpdateError(f"{self.rauc} is not installed") from None
        except (OSError, subprocess.TimeoutExpired) as e:
            raise UpdateError(f"{' '.join(cmd[:3])} failed: {e}") from None

    def status(self) -> SystemStatus:
        res = self._run(self._cmd("status", "--detailed", "--output-format=json"),
                        STATUS_TIMEOUT_S)
        if res.returncode != 0:
            raise UpdateError(f"rauc status failed: {rauc_error(res.stderr, res.stdout)}")
        try:
            return parse_status(json.loads(res.stdout))
        except ValueError:
            raise UpdateError("rauc status printed no JSON") from None

    def check_bundle(self, path: Path) -> BundleInfo:
        res = self._run(self._cmd("info", "--output-format=json", str(path), keyring=True),
                        INFO_TIMEOUT_S)
        if res.returncode != 0:
            raise UpdateError(f"RAUC refused the bundle: {rauc_error(res.stderr, res.stdout)}")
        if "skipping signature verification" in res.stderr:
            raise UpdateError("RAUC could not check the bundle's signature: no keyring is set "
                              "([update] keyring, or [keyring] in RAUC's system.conf)")
        try:
            doc = json.loads(res.stdout)
        except ValueError:
            raise UpdateError("rauc info printed no JSON") from None
        version = doc.get("version") if isinstance(doc, dict) else None
        compatible = doc.get("compatible") if isinstance(doc, dict) else None
        if not isinstance(version, str) or not isinstance(compatible, str):
            raise UpdateError("the bundle's manifest names no version or compatible")
        return BundleInfo(version, compatible)

    def install(self, path: Path) -> None:
        res = self._run(self._cmd("install", str(path)), INSTALL_TIMEOUT_S)
        if res.returncode != 0:
            raise UpdateError(f"rauc install failed: {rauc_error(res.stdout, res.stderr)}")

    def _mark(self, what: str, slot: str = "booted") -> None:
        res = self._run(self._cmd("status", what, slot), STATUS_TIMEOUT_S)
        if res.returncode != 0:
            raise UpdateError(f"rauc status {what} {slot} failed: "
                              f"{rauc_error(res.stderr, res.stdout)}")

    def mark_good(self) -> None:
        self._mark("mark-good")

    def mark_bad(self) -> None:
        self._mark("mark-bad")

    def mark_active(self, slot: str) -> None:
        """``booted``, ``other`` or a slot name: the slot the bootloader tries next."""
        self._mark("mark-active", slot)
