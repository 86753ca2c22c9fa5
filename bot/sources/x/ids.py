"""X handles and post ids as the API and the snapshot format accept them,
and the status URL built from them."""

from __future__ import annotations

import re

HANDLE = re.compile(r"^[A-Za-z0-9_]{1,15}$")
POST_ID = re.compile(r"^[0-9]{1,25}$")


def status_url(handle: str | None, post_id: str) -> str:
    return f"https://x.com/{handle}/status/{post_id}" if handle else f"https://x.com/i/web/status/{post_id}"
