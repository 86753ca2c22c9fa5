"""Who is asking: a Slack user id -> ``Caller``, moderator or not.

Configured admin ids are moderators; otherwise workspace admins and owners
per ``users.info``, cached for a few minutes (every command would otherwise
cost a Web API call).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.api import describe
from bot.models import Caller, Platform

log = logging.getLogger("showbot.slack")


class Callers:
    def __init__(
        self, client: AsyncWebClient, admin_user_ids: frozenset[str], *,
        ttl_s: float = 300.0, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._admin_ids = admin_user_ids
        self._ttl_s = ttl_s
        self.clock = clock
        self._cache: dict[str, tuple[float, bool, str | None]] = {}

    async def caller_for(self, user_id: str, channel: str, display_name: str | None = None) -> Caller:
        is_moderator, name = await self._moderator(user_id)
        return Caller(platform=Platform.SLACK, user_id=user_id, channel=channel,
                      is_moderator=is_moderator, display_name=display_name or name)

    async def _moderator(self, user_id: str) -> tuple[bool, str | None]:
        if user_id in self._admin_ids:
            return True, None
        now = self.clock()
        cached = self._cache.get(user_id)
        if cached is not None and cached[0] > now:
            return cached[1], cached[2]
        try:
            resp = await self._client.users_info(user=user_id)
        except (SlackApiError, SlackClientError, aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            log.warning("users.info failed for %s (%s); treating as not a moderator", user_id, describe(exc))
            return False, None
        user = resp.get("user") or {}
        is_mod = bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))
        profile = user.get("profile") or {}
        name = profile.get("display_name") or user.get("real_name") or user.get("name") or None
        self._cache[user_id] = (now + self._ttl_s, is_mod, name)
        return is_mod, name
