"""When newly saved data starts a cycle (pure: the caller passes its clock).

A save waits ``debounce_s`` for the rest of its form (a form is many saves), but no longer
than ``DEBOUNCE_CAP`` debounces from the first unsent save, so a steady trickle still goes.

On the modem, each push is its own gzip stream, its own pre-push check and its own import
summary: a form compressed alone costs ~1.5x what it costs beside the forms entered
before it (the shared data element and combo UIDs), and the check and reply cost ~1 KB
whatever the chunk's size. On reporting day the hub stores a form every minute or so for
hours, and the debounce alone pushed about once a minute. So after a cycle that pushed
data values or tracker records, new saves wait until ``batch_s`` has passed since that
cycle started: the first form after a quiet spell goes within the debounce, and a busy
morning goes in a few large pushes (the day bench's month in 22 separately gzipped
pushes comes to 0.85x B, in 8 to 0.66x B). A person's "sync now" (button, page, CLI), a
modem appearing and the timer are not held. ``batch_s = 0`` pushes after every debounce,
for a hub on a fixed line.
"""

from __future__ import annotations

from dataclasses import dataclass

DEBOUNCE_CAP = 3.0   # a steady trickle of local data still syncs within 3x debounce


@dataclass
class DataTrigger:
    debounce_s: float
    batch_s: float = 0.0
    first_save: float | None = None   # the first save no cycle has carried yet
    due_at: float | None = None       # when a "local-data" cycle runs, if nothing else does
    pushed_at: float | None = None    # when the last cycle that pushed data started

    @property
    def window_end(self) -> float | None:
        """Until when saves after the last push wait, if they wait at all."""
        if self.pushed_at is None or self.batch_s <= 0:
            return None
        return self.pushed_at + self.batch_s

    @property
    def held(self) -> bool:
        """The next "local-data" cycle waits for the batch window, not the debounce."""
        return self.due_at is not None and self.due_at == self.window_end

    def saved(self, now: float) -> None:
        """New data was stored at ``now``."""
        if self.first_save is None:
            self.first_save = now
        due = min(now + self.debounce_s,
                  self.first_save + DEBOUNCE_CAP * max(self.debounce_s, 1.0))
        window = self.window_end
        self.due_at = due if window is None else max(due, window)

    def wait(self, now: float) -> float | None:
        """Seconds until a "local-data" cycle is due (<= 0: now), or None."""
        return None if self.due_at is None else self.due_at - now

    def started(self) -> None:
        """A cycle (any reason) started: it reads everything pending, these saves too."""
        self.first_save = self.due_at = None

    def ran(self, started: float, pushed: bool) -> None:
        """A cycle that started at ``started`` ended; ``pushed``: it sent data values or
        tracker records."""
        if pushed:
            self.pushed_at = started

    def left_pending(self, now: float) -> None:
        """The cycle ended with data still pending (saved while it ran, or cut off)."""
        if self.due_at is None:
            self.saved(now)
