"""Storage faults seen by the long-running loops (polling, delivery, heartbeat).

A full disk or a read-only database fails every write until a human acts.
Logging a traceback per row would bury the one line that matters, so each
loop reports its failures here: one clear line when writes start failing,
one a minute while they keep failing, one when they work again. ``writable``
is what ``showbot health`` (and /readyz) report.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from bot.errors import StorageError

log = logging.getLogger("showbot.storage")


class StorageFaults:
    def __init__(self, *, every_s: float = 60.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._every_s = every_s
        self._monotonic = monotonic
        self._failing_since: float | None = None
        self._last_logged: float | None = None
        self._failures = 0
        self.last_error: str | None = None

    @property
    def writable(self) -> bool:
        return self._failing_since is None

    def failed(self, exc: StorageError, doing: str, *, waiting: int = 0) -> None:
        """A write failed. ``waiting``: results held in memory until it works."""
        now = self._monotonic()
        self._failures += 1
        self.last_error = str(exc)
        if self._failing_since is None:
            self._failing_since = now
        if self._last_logged is not None and now - self._last_logged < self._every_s:
            return
        self._last_logged = now
        held = f"; {waiting} delivery result(s) held in memory until it can" if waiting else ""
        log.error("the database cannot be written (%s, while %s): retrying%s; %d failed write(s) so far",
                  exc, doing, held, self._failures)

    def succeeded(self) -> None:
        if self._failing_since is None:
            return
        down_s = self._monotonic() - self._failing_since
        log.warning("the database can be written again after %.0fs (%d failed write(s))",
                    down_s, self._failures)
        self._failing_since = self._last_logged = None
        self._failures = 0
        self.last_error = None
