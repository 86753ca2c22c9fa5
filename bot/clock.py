"""Time is injected everywhere: tests pass a fixed or stepping clock."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def parse_utc(value: object) -> datetime | None:
    """An API's ISO 8601 time ("...Z", an offset, or none: taken as UTC) as
    an aware UTC datetime; None when it is absent or malformed."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)  # Python 3.11 reads a trailing "Z"
    except ValueError:
        return None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


class FrozenClock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        from datetime import timedelta

        self.now = self.now + timedelta(**delta)
