"""The shared harness for command tests: one ``chat`` fixture (tests/conftest.py).

A real SQLite file with the catalogue fixture, the real ``Commands``, a
fixed clock, feeds answered from memory (``FakeFeeds``: what the RSS source
would return, without a network), and the real outbox delivering to
recording adapters at the platform edge, so a test post or a backfill is
followed all the way to what a channel receives.

Transcript tests read like the chat they check::

    await chat.transcript('''
        > announce episode here
        Announcing here: nothing → episode.
        member> status
        Sorry, `status` is for moderators only. `help` lists what everyone can use.
    ''')

``> `` is a moderator in Discord channel 555, ``member> `` a member there,
``#777> `` a moderator in channel 777; the lines after it are the reply's
text, exactly.

``@pytest.mark.chat(catalog=False, book=BookConfig(...))`` starts from an
empty store, or with a book configured.
"""

from __future__ import annotations

import difflib
import random
import textwrap
from dataclasses import dataclass, field
from datetime import datetime, timezone

from bot.clock import FrozenClock
from bot.commands import Commands
from bot.config import BookConfig
from bot.errors import FeedParseError, FetchError
from bot.models import Announcement, Caller, Item, ParsedFeed, Platform, Reply
from bot.outbox import Outbox
from bot.storage import Storage
from tests.backends import Target, open_target
from tests.catalog_helpers import MEMBER, MODERATOR, NOW, load_catalog
from tests.fake_chat import RecordingAdapter

FEED_URL = "https://talks.example.org/feed.xml"
FEED = ParsedFeed(
    title="Backend Talks Weekly",
    items=(
        Item(title="Connection pools in depth", guid="t2", link="https://talks.example.org/2",
             summary="Pools, sizing and Little's law.",
             published_at=datetime(2026, 6, 1, tzinfo=timezone.utc)),
        Item(title="Sponsored: our new cloud", guid="t1", link="https://talks.example.org/1",
             summary="A word from our sponsor.", published_at=datetime(2026, 5, 1, tzinfo=timezone.utc)),
    ),
)


class FakeFeeds:
    """preview(url) as the RSS source would answer it, without a network.
    ``feeds[url]`` overrides the default answer for one URL."""

    def __init__(self) -> None:
        self.fetched: list[str] = []
        self.feeds: dict[str, ParsedFeed] = {}

    async def __call__(self, url: str) -> ParsedFeed:
        self.fetched.append(url)
        if url.endswith("/page.html"):
            raise FeedParseError("not a feed: the server sent an HTML page (text/html)")
        if url.endswith("/missing.xml"):
            raise FetchError("HTTP 404 Not Found")
        return self.feeds.get(url, FEED)


@dataclass
class Counter:
    calls: int = 0

    async def __call__(self) -> None:
        self.calls += 1

    def tick(self) -> None:
        self.calls += 1


@dataclass
class Chat:
    store: Storage
    clock: FrozenClock
    feeds: FakeFeeds = field(default_factory=FakeFeeds)
    changed: Counter = field(default_factory=Counter)  # on_sources_changed
    queued: Counter = field(default_factory=Counter)  # on_queued
    drift: list[str] = field(default_factory=list)  # what the config file would differ by
    book: BookConfig | None = None
    adapters: dict[Platform, RecordingAdapter] = field(default_factory=dict)
    commands: Commands = field(init=False)
    outbox: Outbox = field(init=False)

    def __post_init__(self) -> None:
        async def drift() -> list[str]:
            return list(self.drift)

        self.commands = Commands(self.store, clock=self.clock, preview=self.feeds,
                                 on_sources_changed=self.changed, on_queued=self.queued.tick,
                                 health=lambda: {"discord": True, "slack": False}, drift=drift,
                                 rng=random.Random(7), book_config=self.book)
        self.adapters = {p: RecordingAdapter(p) for p in Platform}
        self.outbox = Outbox(self.store, dict(self.adapters), clock=self.clock)

    async def say(self, text: str, who: Caller = MODERATOR) -> Reply:
        return await self.commands(text, who)

    async def deliver(self) -> list[Announcement]:
        """Run the outbox once; what was posted by it, in order."""
        before = {p: len(a.sent) for p, a in self.adapters.items()}
        await self.outbox.dispatch_once()
        return [s for p, a in self.adapters.items() for s in a.sent[before[p]:]]

    async def transcript(self, script: str) -> None:
        """Say each ``> `` line and check the reply text that follows it."""
        steps: list[tuple[Caller, str, list[str]]] = []
        for line in textwrap.dedent(script).strip("\n").splitlines():
            prompt, sep, said = line.partition("> ")
            if sep and (prompt in ("", "member") or prompt.startswith("#")) and not line.startswith(" "):
                who = MEMBER if prompt == "member" else MODERATOR
                if prompt.startswith("#"):
                    who = Caller(MODERATOR.platform, MODERATOR.user_id, prompt[1:], True, "mod")
                steps.append((who, said, []))
            else:
                assert steps, f"the transcript starts with a reply: {line!r}"
                steps[-1][2].append(line)
        transcript = []
        expected = []
        for who, said, want in steps:
            reply = await self.say(said, who)
            prompt = "member" if not who.is_moderator else ("" if who.channel == MODERATOR.channel
                                                            else f"#{who.channel}")
            transcript += [f"{prompt}> {said}", *reply.text.splitlines()]
            expected += [f"{prompt}> {said}", *want]
        if transcript != expected:
            diff = "\n".join(difflib.unified_diff(expected, transcript, "expected", "got", lineterm=""))
            raise AssertionError("the chat went differently:\n" + diff)


async def open_chat(path: Target, *, catalog: bool = True, book: BookConfig | None = None) -> Chat:
    """The harness on a SQLite file, or on a PostgreSQL database (tests/backends.py)."""
    store = await open_target(path)
    if catalog:
        await load_catalog(store)
    return Chat(store, FrozenClock(NOW), book=book)
