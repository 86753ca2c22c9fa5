"""Capped exponential backoff, shared by polling and delivery."""

from __future__ import annotations


def backoff_s(failures: int, base_s: float, cap_s: float, retry_after_s: float | None = None) -> float:
    """Seconds to wait after ``failures`` failures in a row (1 = the first).

    Never gives up (a source that was down for a day comes back by itself);
    a server's own Retry-After wins when it asks for longer.
    """
    if failures <= 0:
        return base_s
    delay = min(cap_s, base_s * (2 ** min(failures - 1, 32)))
    if retry_after_s is not None and retry_after_s > delay:
        delay = min(retry_after_s, max(cap_s, retry_after_s))
    return delay
