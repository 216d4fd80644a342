"""The Raspberry Pi's A/B boot (#13): RAUC's custom backend over autoboot.txt and the
firmware's one-shot tryboot (image/rootfs/usr/local/sbin/upazila-rauc-tryboot), called the
way RAUC calls it, over a directory standing in for the card's first partition. Only the
hardware is a fake (``PiFirmware``: the firmware's documented choice of partition and the
kernel passing systemd's reboot argument on); RAUC itself drives the backend in
tests/health/test_updater_tryboot.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..rauckit import TRYBOOT_BACKEND, PiFirmware


@pytest.fixture
def pi(tmp_path: Path) -> PiFirmware:
    fw = PiFirmware(tmp_path)
    fw.flash()
    return fw


def out(pi: PiFirmware, *args: str) -> str:
    return pi.backend(*args).stdout.strip()


def states(pi: PiFirmware) -> tuple[str, str, str]:
    return out(pi, "get-primary"), out(pi, "get-state", "A"), out(pi, "get-state", "B")


def test_script_is_bash_and_executable() -> None:
    assert TRYBOOT_BACKEND.read_text().startswith("#!/bin/bash\n")
    assert TRYBOOT_BACKEND.stat().st_mode & 0o111


def test_new_card_boots_a_and_only_a(pi: PiFirmware) -> None:
    assert states(pi) == ("A", "good", "bad")
    assert out(pi, "get-current") == "A"
    assert pi.reboot() == "A" and pi.power_cut() == "A"


def test_install_trial_and_commit(pi: PiFirmware) -> None:
    # rauc install: the target marked bad before it is written, then made primary
    pi.backend("set-state", "B", "bad")
    assert states(pi) == ("A", "good", "bad")
    pi.backend("set-primary", "B")
    assert pi.autoboot() == {"all": 2, "tryboot": 3}  # committed A; B only on a tryboot
    assert pi.reboot_param.read_text() == "0 tryboot\n"  # systemctl reboot passes it on
    assert states(pi) == ("B", "good", "good")
    # the update agent keeps A until the quiet hours: a power cut meanwhile boots A
    pi.backend("set-primary", "A")
    assert not pi.reboot_param.exists() and states(pi) == ("A", "good", "bad")
    pi.backend("set-primary", "B")
    assert pi.reboot() == "B"  # the trial: once
    assert out(pi, "get-current") == "B"
    assert (pi.dt / "tryboot").read_bytes() == b"\0\0\0\1"
    assert states(pi) == ("A", "good", "bad")  # not committed: the next boot is A's
    pi.backend("set-state", "B", "good")  # rauc status mark-good
    assert pi.autoboot() == {"all": 3, "tryboot": 3}
    assert states(pi) == ("B", "bad", "good")
    assert pi.reboot() == "B" and pi.power_cut() == "B"
    # the next release goes to A the same way
    pi.backend("set-state", "A", "bad")
    pi.backend("set-primary", "A")
    assert pi.autoboot() == {"all": 3, "tryboot": 2}
    assert pi.reboot() == "A"
    pi.backend("set-state", "A", "good")
    assert pi.autoboot() == {"all": 2, "tryboot": 2} and pi.reboot() == "A"


def test_trial_marked_bad_goes_back(pi: PiFirmware) -> None:
    pi.backend("set-primary", "B")
    assert pi.reboot() == "B"
    pi.backend("set-state", "B", "bad")  # rauc status mark-bad: the agent gave up
    assert pi.autoboot() == {"all": 2, "tryboot": 2}
    assert states(pi) == ("A", "good", "bad")
    pi.reboot_param.parent.mkdir(parents=True, exist_ok=True)
    pi.reboot_param.write_text("0 tryboot\n")  # even a stray tryboot reboot: A
    assert pi.reboot() == "A"


@pytest.mark.parametrize("how", ["reboot", "power_cut"])
def test_trial_that_dies_falls_back_by_itself(pi: PiFirmware, how: str) -> None:
    """A hang (watchdog), panic or power cut during the trial: the firmware cleared the
    flag as it booted B, so whatever restarts the Pi boots A; A's next mark-good (every
    start of the update agent) clears the [tryboot] that still names B."""
    pi.backend("set-primary", "B")
    assert pi.reboot() == "B"
    assert getattr(pi, how)() == "A"
    assert pi.autoboot() == {"all": 2, "tryboot": 3}
    pi.backend("set-state", "A", "good")
    assert pi.autoboot() == {"all": 2, "tryboot": 2}
    assert states(pi) == ("A", "good", "bad")


def test_mark_good_of_committed_slot_keeps_an_armed_trial(pi: PiFirmware) -> None:
    pi.backend("set-primary", "B")
    pi.backend("set-state", "A", "good")
    assert pi.autoboot() == {"all": 2, "tryboot": 3} and out(pi, "get-primary") == "B"


def test_debian_kernel_cannot_start_a_trial(tmp_path: Path) -> None:
    """Debian's mainline kernel does not hand "tryboot" to the firmware: the trial reboot
    boots the committed slot again. Nothing breaks; the new release never runs."""
    pi = PiFirmware(tmp_path, kernel_tryboot=False)
    pi.flash()
    pi.backend("set-primary", "B")
    assert pi.reboot() == "A"
    assert states(pi) == ("A", "good", "bad")  # /run is gone: nothing armed


def test_refusals(pi: PiFirmware) -> None:
    res = pi.backend("set-state", "A", "bad", check=False)
    assert res.returncode == 1 and "committed slot" in res.stderr
    res = pi.backend("set-state", "B", "good", check=False)
    assert res.returncode == 1 and "not running" in res.stderr
    res = pi.backend("set-primary", "C", check=False)
    assert res.returncode == 1 and "unknown slot 'C'" in res.stderr
    res = pi.backend("frobnicate", check=False)
    assert res.returncode == 1 and "usage" in res.stderr
    assert pi.autoboot() == {"all": 2, "tryboot": 2}


@pytest.mark.parametrize("text", ["", "garbage\n", "[all]\nboot_partition=9\n"])
def test_garbled_autoboot_reads_as_the_firmware_would(pi: PiFirmware, text: str) -> None:
    (pi.bootsel / "autoboot.txt").write_text(text)
    assert states(pi) == ("A", "good", "bad")
    pi.backend("set-primary", "B")
    assert pi.autoboot() == {"all": 2, "tryboot": 3}  # written whole again


def test_current_slot_without_the_firmware_node_comes_from_cmdline(pi: PiFirmware) -> None:
    for f in pi.dt.iterdir():
        f.unlink()
    pi.cmdline.write_text("console=ttyAMA0 root=PARTUUID=7570617a-06 rauc.slot=B ro\n")
    assert out(pi, "get-current") == "B"
    pi.cmdline.write_text("root=/dev/vda2\n")
    res = pi.backend("get-current", check=False)
    assert res.returncode == 1 and "cannot tell which slot" in res.stderr


def test_autoboot_is_replaced_whole_with_crlf_tolerated(pi: PiFirmware) -> None:
    (pi.bootsel / "autoboot.txt").write_bytes(
        b"[all]\r\ntryboot_a_b=1\r\nboot_partition=3\r\n[tryboot]\r\nboot_partition=3\r\n")
    assert states(pi) == ("B", "bad", "good")
    pi.backend("set-primary", "A")
    text = (pi.bootsel / "autoboot.txt").read_text()
    assert text == "[all]\ntryboot_a_b=1\nboot_partition=3\n[tryboot]\nboot_partition=2\n"
    assert len(text) < 512  # the firmware reads at most 512 bytes
    assert sorted(p.name for p in pi.bootsel.iterdir()) == ["autoboot.txt"]
