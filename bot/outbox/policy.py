"""How hard and how often the outbox tries: the ``[delivery]`` config."""

from __future__ import annotations

from dataclasses import dataclass

from bot.backoff import backoff_s


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    # Destinations of one platform delivered at once (each keeps its own
    # order). 50: Discord's global limit is 50 requests a second, so more in
    # flight can't go faster, and fewer leaves its limit unused.
    concurrency: int = 50
    # A post that failed for a reason of its own destination waits
    # retry_base, doubling per failure, up to retry_cap.
    retry_base_s: float = 5.0
    retry_cap_s: float = 3600.0
    # While a whole platform fails (5xx, timeouts, unreachable), one post
    # probes it at least this often, whatever the outage's length; when a
    # probe works, everything waiting goes out.
    probe_every_s: float = 15.0
    # A claimed delivery whose process stopped answering is taken over after this.
    lease_s: float = 60.0
    # Rows claimed per destination at once (one claim transaction, in order).
    per_destination: int = 20
    # How often the outbox looks for due work when nothing woke it.
    tick_s: float = 1.0

    def retry_delay_s(self, failures: int, retry_after_s: float | None, *, platform_down: bool) -> float:
        """Seconds before the next attempt of a row that failed ``failures`` times."""
        if retry_after_s is not None:
            return max(retry_after_s, 0.0)  # the platform said when: exactly then
        delay = backoff_s(failures, self.retry_base_s, self.retry_cap_s)
        # An outage is the platform's, not this row's: never wait past the
        # next probe, so the row is ready the moment the platform is back.
        return min(delay, self.probe_every_s) if platform_down else delay
