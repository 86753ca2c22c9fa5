"""The YouTube checks one poll needs, fetched together: no storage, no decisions.

The poller asks for the videos that need it (new videos about to be
announced, held ones, tracked premieres) and hands the ``VideoFacts`` to
the pure decider (``bot.holds``):

- Shorts: a HEAD of ``/shorts/{id}`` per new video (``shorts.py``);
- live state: with ``YOUTUBE_API_KEY``, videos.list in batches of 50
  (``api.py``); without a key, or when the API fails (quota, bad key,
  network), the watch page's playability (``playability.py``). A failing
  API is logged once when it starts failing (and once when it works
  again), not every poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import replace
from typing import TypeVar

from bot.config import YouTubeConfig
from bot.models import VideoFacts
from bot.sources.http import HttpFetcher
from bot.sources.youtube.addresses import YouTubeAddresses
from bot.sources.youtube.api import LiveDetails, YouTubeApiError, facts_from_details, fetch_live_details
from bot.sources.youtube.playability import fetch_playability
from bot.sources.youtube.shorts import fetch_is_short

log = logging.getLogger("showbot.youtube")
T = TypeVar("T")


class YouTubeChecks:
    def __init__(self, fetcher: HttpFetcher, config: YouTubeConfig = YouTubeConfig(),
                 api_key: str | None = None, *, concurrency: int = 4) -> None:
        self._fetcher = fetcher
        self._config = config
        self._key = api_key
        self.addresses = YouTubeAddresses(config.base_url)
        self._limit = asyncio.Semaphore(concurrency)
        self._api_failing: str | None = None  # the reason last logged, until the API answers again
        self._said_no_key = False
        self.api_calls = 0  # videos.list calls made (1 quota unit each)

    @property
    def has_key(self) -> bool:
        return self._key is not None

    async def _bounded(self, work: Awaitable[T]) -> T:
        async with self._limit:
            return await work

    async def fetch_facts(self, *, shorts_ids: Sequence[str] = (),
                          live_ids: Sequence[str] = ()) -> dict[str, VideoFacts]:
        facts: dict[str, VideoFacts] = {}
        shorts_ids = list(dict.fromkeys(shorts_ids))
        live_ids = list(dict.fromkeys(live_ids))
        answers = await asyncio.gather(*(self._bounded(fetch_is_short(self._fetcher, self.addresses, v))
                                         for v in shorts_ids))
        for video_id, (short, error) in zip(shorts_ids, answers):
            facts[video_id] = VideoFacts(video_id, short=short, short_error=error)
        # Shorts are checked only for a source that drops them (shorts =
        # false): a confirmed one is never announced, so its watch page or
        # API slot would be wasted.
        live_ids = [v for v in live_ids if v not in facts or facts[v].short is not True]
        if not live_ids:
            return facts
        live = await self._live_from_api(live_ids)
        if live is None:
            pages = await asyncio.gather(*(self._bounded(fetch_playability(self._fetcher, self.addresses, v))
                                           for v in live_ids))
            for video_id, page in zip(live_ids, pages):
                base = facts.get(video_id, VideoFacts(video_id))
                facts[video_id] = replace(base, playable=page.playable, playability=page.status,
                                          playable_error=page.error)
        else:
            for video_id in live_ids:
                found = facts_from_details(video_id, live.get(video_id))
                base = facts.get(video_id, VideoFacts(video_id))
                facts[video_id] = replace(base, live=found.live, scheduled_start_at=found.scheduled_start_at,
                                          actual_start_at=found.actual_start_at, actual_end_at=found.actual_end_at)
        return facts

    async def _live_from_api(self, ids: Sequence[str]) -> dict[str, LiveDetails] | None:
        """The API's answer, or None: no key, or it failed (then the
        keyless rule applies; said in the log once per outage)."""
        if self._key is None:
            if not self._said_no_key:  # once a process: it is a setting, not an event
                log.info("YOUTUBE_API_KEY is not set: premieres and live streams are held until their "
                         "watch page plays, instead of announced as premieres")
                self._said_no_key = True
            return None
        try:
            self.api_calls += (len(ids) + 49) // 50
            found = await fetch_live_details(self._fetcher, self._config.api_base_url, self._key, ids)
        except YouTubeApiError as exc:
            if self._api_failing != exc.reason:
                log.warning("%s; checking watch pages instead until it answers again", exc)
                self._api_failing = exc.reason
            return None
        if self._api_failing is not None:
            log.info("YouTube Data API answers again")
            self._api_failing = None
        return dict(found)
