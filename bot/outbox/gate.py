"""Per-platform health as the outbox sees it: open, or probing after failures.

Open: up to ``concurrency`` destinations at once. After failures that look
like the platform's own (5xx, timeouts, unreachable: not a rate limit, not a
refusal of one channel) from two attempts in a row with no success between,
the platform is probed: one delivery at a time, the next no later than
``probe_every`` after the last failed one. The first success opens it again.
A rate limit that covers the whole platform (Discord's global limit) pauses
it until the platform's own Retry-After.

Pure bookkeeping on an injected clock; the outbox asks ``budget`` before
claiming work and reports each outcome.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.backoff import backoff_s

# Failures in a row (no success between) that make a platform "down". One
# is not enough: a single channel's 500 must not slow every other channel.
DOWN_AFTER = 2


class PlatformGate:
    def __init__(self, *, concurrency: int, probe_base_s: float, probe_every_s: float) -> None:
        self._concurrency = concurrency
        self._probe_base_s = probe_base_s
        self._probe_every_s = probe_every_s
        self._failures = 0  # in a row, platform-wide kind only
        self._probe_at: datetime | None = None
        self._paused_until: datetime | None = None
        self.in_flight = 0

    @property
    def down(self) -> bool:
        return self._failures >= DOWN_AFTER

    def budget(self, now: datetime) -> int:
        """How many more destinations may start delivering now."""
        if self._paused_until is not None:
            if now < self._paused_until:
                return 0
            self._paused_until = None
        if self.down:
            if self.in_flight or (self._probe_at is not None and now < self._probe_at):
                return 0
            return 1
        return max(0, self._concurrency - self.in_flight)

    def next_change(self) -> datetime | None:
        """When ``budget`` may grow without an outcome being reported."""
        times = [t for t in (self._paused_until, self._probe_at if self.down else None) if t is not None]
        return min(times) if times else None

    def succeeded(self) -> bool:
        """Returns True when this success ends an outage."""
        was_down = self.down
        self._failures = 0
        self._probe_at = None
        return was_down

    def failed(self, now: datetime) -> None:
        """A platform-wide kind of failure (not a rate limit, not permanent)."""
        self._failures += 1
        if self.down:
            probes = self._failures - DOWN_AFTER + 1
            delay = backoff_s(probes, self._probe_base_s, self._probe_every_s)
            self._probe_at = now + timedelta(seconds=delay)

    def pause(self, until: datetime) -> None:
        """A rate limit over the whole platform: nothing starts before ``until``."""
        if self._paused_until is None or until > self._paused_until:
            self._paused_until = until
