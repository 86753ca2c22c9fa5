"""The ``x`` source kind: an X profile and its posts, through one of three providers.

- ``api``: X API v2. The profile (a user read, ~$0.010) is fetched at most
  every ``profile_every`` (default daily); the timeline at the source's own
  interval with ``since_id``, so a quiet day costs nothing but requests.
- ``snapshot``: a profile snapshot (JSON, or the plain-text page form) from
  a URL or, for operators, a file; its recent posts are the items.
- ``rss``: posts from an RSS bridge, exactly like an rss source.

Posts go through the same pure ``decide`` as every feed item; the profile
diff (``bot.profile.diff_snapshots``, also pure) yields profile, book and
milestone changes that the poller writes in the same transaction.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Mapping

from bot.clock import Clock
from bot.config import XSourceOptions
from bot.detect import BookMatcher
from bot.errors import SourceError
from bot.models import Item, Source
from bot.profile import Every, ProfileSnapshot, diff_snapshots
from bot.sources.http import HttpFetcher
from bot.sources.rss import Fetched, RssSource
from bot.sources.x import DEFAULT_API_BASE, XApiClient, fetch_snapshot, newest_post_id, parse_snapshot_json, snapshot_to_json
from bot.storage import SnapshotRow, Store


def snapshot_row(snapshot: ProfileSnapshot) -> SnapshotRow:
    pinned = snapshot.pinned
    return SnapshotRow(
        taken_at=snapshot.taken_at, followers=snapshot.followers, following=snapshot.following,
        posts=snapshot.posts, bio=snapshot.bio,
        pinned_id=pinned.id if pinned else None, pinned_text=pinned.text if pinned else None,
        pinned_url=pinned.url if pinned else None,
        raw_json=snapshot_to_json(snapshot).decode("utf-8"),
    )


class XProfileSource:
    def __init__(
        self,
        store: Store,
        fetcher: HttpFetcher,
        rss: RssSource,
        *,
        bearer_token: str | None,
        clock: Clock,
        options: Mapping[str, XSourceOptions] | None = None,
        is_book_news: BookMatcher | None = None,
        user_agent: str = "showbot/0.1",
        timeout_s: float = 20,
    ) -> None:
        self._store = store
        self._fetcher = fetcher
        self._rss = rss
        self._token = bearer_token
        self._clock = clock
        self._options = dict(options or {})
        self._is_book_news = is_book_news
        self._user_agent = user_agent
        self._timeout_s = timeout_s
        self._clients: dict[str, XApiClient] = {}

    async def close(self) -> None:
        self._clients.clear()  # they share the fetcher, which the app closes

    def _client(self, base_url: str) -> XApiClient:
        if base_url not in self._clients:
            self._clients[base_url] = XApiClient(
                self._fetcher, bearer_token=self._token, base_url=base_url, clock=self._clock,
            )
        return self._clients[base_url]

    async def fetch(self, source: Source) -> Fetched:
        spec = source.spec
        if spec.provider == "rss":
            return await self._rss.fetch(source)
        handle = spec.handle or ""
        previous = await self._previous(source)
        if spec.provider == "snapshot":
            if not spec.url:
                raise SourceError("snapshot provider needs a url")
            snapshot: ProfileSnapshot | None = await fetch_snapshot(
                spec.url, handle=handle, fetcher=self._fetcher, clock=self._clock)
            assert snapshot is not None
            return await self._with_changes(source, previous, snapshot, snapshot.recent_posts, None)
        client = self._client(spec.api_base_url or DEFAULT_API_BASE)
        options = self._options.get(spec.name, XSourceOptions())
        snapshot = None
        if previous is None or self._clock() - previous.taken_at >= timedelta(seconds=options.profile_every_s):
            snapshot = await client.fetch_profile(handle)
        user_id = (snapshot or previous).user_id if (snapshot or previous) else None
        if not user_id:
            raise SourceError(f"X API: no user id known for @{handle}")
        posts = await client.fetch_posts(user_id, source.cursor, handle=handle)
        cursor = newest_post_id(posts) or source.cursor
        if snapshot is None:
            return Fetched(tuple(posts), cursor=cursor)
        return await self._with_changes(source, previous, snapshot, tuple(posts), cursor)

    async def _previous(self, source: Source) -> ProfileSnapshot | None:
        raw = await self._store.latest_snapshot_json(source.id)
        return parse_snapshot_json(raw) if raw else None

    async def _with_changes(
        self, source: Source, previous: ProfileSnapshot | None, snapshot: ProfileSnapshot,
        posts: tuple[Item, ...], cursor: str | None,
    ) -> Fetched:
        options = self._options.get(source.spec.name, XSourceOptions())
        milestones = options.milestones or Every(options.milestone_every)
        changes = diff_snapshots(
            previous, snapshot, milestones=milestones, is_book_news=self._is_book_news,
            # A dip below a threshold and back must not announce it twice.
            best_followers=await self._store.max_followers(source.id),
        )
        return Fetched(posts, snapshot=snapshot, changes=tuple(changes), cursor=cursor)
