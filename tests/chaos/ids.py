"""Message ids shaped like the real platforms' ones, derived from the clock.

Realistic ids matter: discord.py pages ``history(after=...)`` by comparing
snowflakes, and Slack clients compare ``ts`` strings as times. Both
generators are strictly increasing, even across a restart of the fake
(``advance_past`` is fed the largest id restored from the ledger) and when
the clock steps back.
"""

from __future__ import annotations

import time
from typing import Callable

DISCORD_EPOCH_MS = 1_420_070_400_000  # 2015-01-01T00:00:00Z, Discord's snowflake epoch
_COUNTER_BITS = 22  # worker id, process id and increment: the low 22 bits


class Snowflakes:
    """``(ms since 2015-01-01) << 22 | counter``: increasing, unique, time-derived."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._last = 0

    def advance_past(self, snowflake: int) -> None:
        self._last = max(self._last, snowflake)

    def next(self) -> int:
        ms = int(self._clock() * 1000) - DISCORD_EPOCH_MS
        candidate = ms << _COUNTER_BITS
        # Same millisecond (or a clock that went back): bump the counter part.
        self._last = max(candidate, self._last + 1)
        return self._last

    @staticmethod
    def time_of(snowflake: int) -> float:
        """Unix seconds a snowflake was made at (what discord.py's snowflake_time reads)."""
        return ((snowflake >> _COUNTER_BITS) + DISCORD_EPOCH_MS) / 1000


class SlackTs:
    """``"<epoch seconds>.<6 digits>"``: Slack's message ts, unique and increasing."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._last_us = 0

    def advance_past(self, ts: str) -> None:
        self._last_us = max(self._last_us, ts_to_us(ts))

    def next(self) -> str:
        self._last_us = max(int(self._clock() * 1_000_000), self._last_us + 1)
        return us_to_ts(self._last_us)


def ts_to_us(ts: str) -> int:
    """'1700000000.000123' -> microseconds, for exact comparisons (no float rounding)."""
    seconds, _, fraction = ts.partition(".")
    return int(seconds) * 1_000_000 + int((fraction + "000000")[:6])


def us_to_ts(us: int) -> str:
    return f"{us // 1_000_000}.{us % 1_000_000:06d}"
