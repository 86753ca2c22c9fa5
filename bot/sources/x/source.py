"""The ``x`` source kind: an X profile and its posts, through one of three providers.

- ``api``: X API v2. The profile (a user read, ~$0.010) is fetched at most
  every ``profile_every`` (default daily); the timeline at the source's own
  interval with ``since_id``, so a quiet day costs nothing but requests.
- ``snapshot``: a profile snapshot (JSON, or the plain-text page form) from
  a URL or, for operators, a file; its recent posts are the items.
- ``rss``: posts from an RSS bridge, exactly like an rss source.

Fetching touches no storage and diffs nothing: the poller reads the previous
snapshot before the fetch and hands it in (the API provider needs its
``taken_at`` and ``user_id``), then diffs the new snapshot against it
(``bot.profile.profile_changes``, pure) and writes both in one transaction.
Posts go through the same pure ``decide`` as every feed item.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal, Mapping

from bot.clock import Clock
from bot.config import XSourceOptions
from bot.errors import SourceError
from bot.models import Source
from bot.profile import ProfileSnapshot
from bot.sources.http import HttpFetcher
from bot.sources.rss import Fetched, RssSource
from bot.sources.x.api import DEFAULT_API_BASE, XApiClient, newest_post_id
from bot.sources.x.snapshot import fetch_snapshot


class XSource:
    # What the poller looks for (bot.poller.ProfileSourceKind) to pass the
    # previous snapshot to fetch.
    takes_previous_snapshot: Literal[True] = True

    def __init__(
        self,
        fetcher: HttpFetcher,
        rss: RssSource,
        *,
        bearer_token: str | None,
        clock: Clock,
        options: Mapping[str, XSourceOptions] | None = None,
    ) -> None:
        self._fetcher = fetcher
        self._rss = rss
        self._token = bearer_token
        self._clock = clock
        self._options = dict(options or {})

    async def fetch(self, source: Source, previous: ProfileSnapshot | None) -> Fetched:
        """Posts, the new snapshot when one was taken, and the API cursor.
        ``previous`` is the last stored snapshot of this source, or None."""
        spec = source.spec
        if spec.provider == "rss":
            return await self._rss.fetch(source)
        if spec.provider == "snapshot":
            if not spec.url:
                raise SourceError("snapshot provider needs a url")
            snapshot = await fetch_snapshot(spec.url, handle=spec.handle or "", fetcher=self._fetcher,
                                            clock=self._clock)
            return Fetched(snapshot.recent_posts, snapshot=snapshot)
        return await self._fetch_api(source, previous)

    async def _fetch_api(self, source: Source, previous: ProfileSnapshot | None) -> Fetched:
        spec = source.spec
        handle = spec.handle or ""
        client = XApiClient(self._fetcher, bearer_token=self._token,
                            base_url=spec.api_base_url or DEFAULT_API_BASE, clock=self._clock)
        snapshot = await client.fetch_profile(handle) if self._profile_due(source, previous) else None
        known = snapshot or previous
        user_id = known.user_id if known is not None else None
        if not user_id:
            raise SourceError(f"X API: no user id known for @{handle}")
        posts = await client.fetch_posts(user_id, source.cursor, handle=handle)
        return Fetched(tuple(posts), snapshot=snapshot, cursor=newest_post_id(posts) or source.cursor)

    def _profile_due(self, source: Source, previous: ProfileSnapshot | None) -> bool:
        # Without a user id (none yet, or a snapshot from another provider)
        # the timeline can't be read: the profile read is due now.
        if previous is None or not previous.user_id:
            return True
        every = self._options.get(source.spec.name, XSourceOptions()).profile_every_s
        return self._clock() - previous.taken_at >= timedelta(seconds=every)
