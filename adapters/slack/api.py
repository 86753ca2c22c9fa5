"""The Slack Web API as this adapter uses it: clients, retries, errors.

Two clients on one token. Replies to members keep slack_sdk's retry
handlers (a dropped connection, one 429 honoured in process): a member is
waiting. Announcements use a client WITHOUT retry handlers: the outbox owns
retries, so a 429 or 5xx comes straight back with Slack's Retry-After, and
a post is never repeated by the SDK behind the outbox's back (a retried
post after a dropped connection is how duplicates happen).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

Sleep = Callable[[float], Awaitable[None]]

# Errors after which posting to that channel cannot work until a human acts.
PERMANENT_ERRORS = frozenset(
    {
        "not_in_channel",
        "channel_not_found",
        "is_archived",
        "account_inactive",
        "invalid_auth",
        "not_authed",
        "token_revoked",
        "token_expired",
        "missing_scope",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "ekm_access_denied",
        "user_not_found",
        "user_disabled",
        "cannot_dm_bot",
        "team_access_not_granted",
    }
)
# What a reply into a thread whose parent message was deleted may get back:
# the follow-up is then posted on its own rather than retried forever.
THREAD_GONE_ERRORS = frozenset({"thread_not_found", "invalid_thread_ts", "message_not_found"})


class _RateLimitRetry(AsyncRateLimitErrorRetryHandler):
    """slack_sdk's 429 retry, honouring Retry-After, with an injectable sleep (tests)."""

    def __init__(self, max_retry_count: int, sleep: Sleep) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self._sleep = sleep

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        if response is None:  # pragma: no cover - same contract as the parent
            raise error  # type: ignore[misc]
        state.next_attempt_requested = True
        await self._sleep(retry_after(response.headers) or 1.0)
        state.increment_current_attempt()


def reply_client(token: str, base_url: str, *, rate_limit_retries: int, sleep: Sleep | None) -> AsyncWebClient:
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        logger=logging.getLogger("showbot.slack.web"),
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(),
            _RateLimitRetry(rate_limit_retries, sleep or asyncio.sleep),
        ],
    )


def announcement_client(token: str, base_url: str, *, timeout_s: int = 20) -> AsyncWebClient:
    return AsyncWebClient(
        token=token, base_url=base_url, timeout=timeout_s,
        logger=logging.getLogger("showbot.slack.web"), retry_handlers=[],
    )


def retry_after(headers: Any) -> float | None:
    """Retry-After from slack_sdk's header shapes (str values or lists of str)."""
    if not headers:
        return None
    for key in list(headers.keys()):
        if str(key).lower() == "retry-after":
            value = headers[key]
            if isinstance(value, (list, tuple)):
                value = value[0] if value else None
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return None
    return None


def api_error(exc: SlackApiError) -> str:
    data = getattr(exc.response, "data", None)
    if isinstance(data, dict):
        return str(data.get("error") or "unknown_error")
    return "unknown_error"


def status_of(exc: SlackApiError) -> int:
    status = getattr(exc.response, "status_code", 200)
    return status if isinstance(status, int) else 200


def describe(exc: BaseException) -> str:
    """A one-line reason for logs: never a token, never a request body."""
    if isinstance(exc, SlackApiError):
        return f"slack api error {api_error(exc)} (HTTP {status_of(exc)})"
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__
