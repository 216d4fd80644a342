"""Push chunk size that follows the measured link (pure).

A chunk should take about ``target_s`` (1 s) on the wire: long enough that per-request
overhead (headers, import summary, round trip: ~1 KB) stays a few percent, short enough
that a cut wastes little (a chunk cut early in its upload is sent again whole; see
``push.RESEND_BELOW``). At 256 kbit/s that is ~5,000 values. Size = measured throughput
x target time / measured bytes per value, growing at most 4x per success (the first
chunks also measure the link) and halving on a failure.
The target time shrinks as the recent error rate grows, and is kept under a third of the
measured time between cuts: on a link that drops every few seconds only short chunks get
through, and a cut then wastes little. Only chunks lost in flight count as failures (a
connection refused while the link is down sent nothing and says nothing about size).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ChunkSizer:
    size: int = 500
    min_size: int = 25
    max_size: int = 10000
    target_s: float = 1.0
    alpha: float = 0.3               # EWMA weight of the newest sample
    throughput: float | None = None  # body bytes per second
    bytes_per_value: float | None = None
    error_rate: float = 0.0
    uptime_s: float | None = None    # EWMA of the time between chunks lost in flight
    last_failure: float | None = None

    def __post_init__(self) -> None:
        self.size = self._clamp(self.size)

    def _clamp(self, n: float) -> int:
        return int(max(self.min_size, min(self.max_size, n)))

    def _ewma(self, old: float | None, new: float) -> float:
        return new if old is None else (1 - self.alpha) * old + self.alpha * new

    def effective_target_s(self, now: float | None = None) -> float:
        target = self.target_s * (1.0 - 0.75 * min(1.0, self.error_rate))
        if self.uptime_s is not None:
            # a long quiet spell since the last cut counts as evidence of a better link
            quiet = (now - self.last_failure) if now is not None and \
                self.last_failure is not None else 0.0
            target = min(target, max(self.uptime_s, quiet) / 3)
        return max(target, 0.25)

    def next_size(self) -> int:
        return self.size

    def success(self, n_values: int, body_bytes: int, seconds: float,
                now: float | None = None) -> int:
        """Record an acknowledged chunk; returns the next size."""
        self.error_rate = self._ewma(self.error_rate, 0.0)
        if n_values <= 0:
            return self.size
        self.bytes_per_value = self._ewma(self.bytes_per_value, body_bytes / n_values)
        if seconds > 0:
            self.throughput = self._ewma(self.throughput, body_bytes / seconds)
        if self.throughput and self.bytes_per_value:
            ideal = self.throughput * self.effective_target_s(now) / self.bytes_per_value
            # grow from the size actually sent: a short tail chunk says little about the link
            grown = min(ideal, max(self.size, n_values) * 4)
            self.size = self._clamp(grown)
        return self.size

    def failure(self, now: float | None = None) -> int:
        """Record a chunk lost in flight (a cut or timeout); returns the next size."""
        self.error_rate = self._ewma(self.error_rate, 1.0)
        if now is not None:
            if self.last_failure is not None:
                self.uptime_s = self._ewma(self.uptime_s, now - self.last_failure)
            self.last_failure = now
        self.size = self._clamp(self.size // 2)
        return self.size

    def upload_s(self, n_values: int) -> float | None:
        """Upper estimate of how long ``n_values`` take to go up (the measured throughput
        includes national's import time, so it underestimates the link)."""
        if not self.throughput or not self.bytes_per_value:
            return None
        return n_values * self.bytes_per_value / self.throughput

    def timeout_s(self, n_values: int, floor: float = 20.0) -> float:
        """How long to wait for a chunk before calling the link dead (generous: national may
        take a while to import, and the first chunk has no measurement yet)."""
        if not self.throughput or not self.bytes_per_value:
            return floor
        expected = n_values * self.bytes_per_value / self.throughput
        return max(floor, 4 * expected)
