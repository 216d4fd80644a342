"""The front push button (to ground, internal pull-up), through gpiozero.

Short press: ask the sync daemon for a cycle now. Hold for ``[gpio] hold_s`` seconds:
clean shutdown (``[gpio] poweroff_command``), so nobody pulls the plug on a writing SD card.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


POWEROFF_COMMAND = ("touch", "/run/upazila-hub/poweroff")


def poweroff(command: tuple[str, ...] | list[str] = POWEROFF_COMMAND) -> None:
    """The real shutdown. systemd then stops the agent cleanly (marker removed). The agent
    runs as user hub, whom logind refuses ``systemctl poweroff`` without polkit; the default
    command asks the image's root unit upazila-poweroff.path instead."""
    try:
        res = subprocess.run(list(command), capture_output=True, text=True, check=False,
                             timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        log.error("the button's shutdown failed: %s: %s", " ".join(command), e)
        return
    if res.returncode != 0:
        log.error("the button's shutdown failed: %s exited %d: %s", " ".join(command),
                  res.returncode, (res.stderr or res.stdout).strip()[:300])


class ButtonHandler:
    def __init__(self, pin: int | str, *, hold_s: float, on_press: Callable[[], Any],
                 on_hold: Callable[[], Any], pin_factory: Any = None,
                 bounce_s: float | None = 0.05) -> None:
        from gpiozero import Button

        self.on_press = on_press
        self.on_hold = on_hold
        self._held = False
        self._lock = threading.Lock()
        self.button = Button(pin, pull_up=True, hold_time=hold_s, bounce_time=bounce_s,
                             pin_factory=pin_factory)
        self.button.when_pressed = self._pressed
        self.button.when_held = self._on_held
        self.button.when_released = self._released

    def _pressed(self) -> None:
        with self._lock:
            self._held = False

    def _on_held(self) -> None:
        with self._lock:
            if self._held:
                return
            self._held = True
        log.warning("button held: shutting down")
        _safely(self.on_hold)

    def _released(self) -> None:
        with self._lock:
            was_held, self._held = self._held, False
        if not was_held:  # a release after a hold is not also a press
            log.info("button pressed: sync requested")
            _safely(self.on_press)

    def close(self) -> None:
        self.button.close()


def _safely(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except Exception:  # noqa: BLE001 - a failing action must not kill gpiozero's thread
        log.exception("button action failed")
