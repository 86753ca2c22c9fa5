"""The announcements every renderer is checked against (tests/golden/):
one case per shape a channel can receive."""

from __future__ import annotations

from datetime import datetime, timezone

from bot.models import (
    Announcement,
    Chapter,
    ContentKind,
    Destination,
    DestinationKind,
    Event,
    EventKind,
    EventPurpose,
    Item,
    Platform,
    StoredItem,
)

WHEN = datetime(2026, 6, 19, 9, 30, tzinfo=timezone.utc)
MENTIONS = {Platform.DISCORD: "987654321098765432", Platform.SLACK: "S0ROLE1", Platform.CONSOLE: None}

# A podcast episode whose feed lists chapters out of time order, 12 of them.
EPISODE = Item(
    title="CPU and Kernel Page Faults",
    link="https://podcasters.spotify.com/pod/show/hnasr/episodes/page-faults",
    guid="ep-215",
    summary="What happens when a process touches memory that isn't mapped yet: minor and major "
            "faults, the page cache, and why a cold Postgres is slow. " * 3,
    published_at=WHEN,
    duration_s=48 * 60 + 37,
    episode_number=215,
    image_url="https://d3t3ozftmdmh3i.cloudfront.net/ep215.jpg",
    chapters=tuple(Chapter(s, t) for s, t in [
        (150, "The Discovery"), (0, "Intro"), (420, "Virtual memory"), (746, "Page tables"),
        (1020, "TLB"), (1530, "What is a Page fault?"), (1800, "Minor faults"), (2100, "Major faults"),
        (2400, "The page cache"), (2640, "Postgres and faults"), (2800, "Huge pages"), (2900, "Summary"),
    ]),
)
VIDEO = Item(
    title="Postgres fsync and SSD caches, explained with a demo",
    link="https://www.youtube.com/watch?v=abc123",
    guid="yt:abc123",
    summary="A demo of fsync on consumer SSDs.",
    published_at=WHEN,
    duration_s=1250,
    video_id="abc123",
    image_url="https://i.ytimg.com/vi/abc123/hqdefault.jpg",
    chapters=(Chapter(0, "Intro"), Chapter(95, "What fsync promises"), Chapter(746, "The demo")),
)
ARTICLE = Item(
    title="What I learned writing a book",
    link="https://medium.com/@hnasr/what-i-learned-writing-a-book-1234",
    guid="medium-1234",
    summary="Three years, two rewrites and one very patient editor.",
    published_at=WHEN,
)
HOSTILE = Item(
    title="@everyone <!channel> **free** [link](https://evil.example)",
    link="https://example.com/post?a=1&b=2",
    guid="hostile",
    summary="<@&123> & <b>bold</b> @here",
    published_at=WHEN,
)


def stored(item: Item, kind: ContentKind, source: str, item_id: int = 1) -> StoredItem:
    return StoredItem(item_id, source, kind, item.guid or "x", item, WHEN)


def event(kind: EventKind, title: str, url: str | None, item_id: int | None = 1, **payload: object) -> Event:
    return Event(7, kind, title, url, WHEN, item_id, dict(payload))


def announce(platform: Platform, ev: Event, item: StoredItem | None, *, mention: bool = True,
             template: str | None = None, direct: bool = False,
             entries: tuple[tuple[Event, StoredItem | None], ...] = ()) -> Announcement:
    kind = DestinationKind.USER if direct else DestinationKind.CHANNEL
    return Announcement(
        outbox_id=1, idempotency_key="key-1", event=ev,
        destination=Destination(platform, kind, "U42" if direct else "C1"),
        item=item, mention=MENTIONS[platform] if mention and not direct else None,
        template=template, entries=entries,
    )


def cases(platform: Platform) -> dict[str, Announcement]:
    episode = stored(EPISODE, ContentKind.EPISODE, "podcast")
    video = stored(VIDEO, ContentKind.VIDEO, "youtube", 2)
    article = stored(ARTICLE, ContentKind.ARTICLE, "medium", 3)
    test_event = Event(8, EventKind.EPISODE, EPISODE.title, EPISODE.link, WHEN, 1, {}, EventPurpose.TEST)
    digest_entries = (
        (event(EventKind.EPISODE, EPISODE.title, EPISODE.link), episode),
        (event(EventKind.VIDEO, VIDEO.title, VIDEO.link, 2), video),
        (event(EventKind.MILESTONE, "@hnasr passed 90,000 followers", "https://x.com/hnasr", None), None),
    )
    digest = Event(9, EventKind.DIGEST, "Daily digest", None, WHEN, None,
                   {"period": "daily", "period_end": "2026-06-20T00:00:00.000000+00:00", "event_ids": [1, 2, 3]},
                   EventPurpose.DIGEST)
    return {
        "episode": announce(platform, event(EventKind.EPISODE, EPISODE.title, EPISODE.link), episode),
        "video": announce(platform, event(EventKind.VIDEO, VIDEO.title, VIDEO.link, 2), video, mention=False),
        "article": announce(platform, event(EventKind.ARTICLE, ARTICLE.title, ARTICLE.link, 3), article,
                            mention=False),
        "book": announce(platform, event(EventKind.BOOK, ARTICLE.title, ARTICLE.link, 3), article),
        "book_follow_up": announce(platform, event(EventKind.BOOK, "Book news from @hnasr: Root Cause is out",
                                                   "https://x.com/hnasr/status/1", None, follow_up_of=3), None),
        "milestone": announce(platform, event(EventKind.MILESTONE, "@hnasr passed 90,000 followers",
                                              "https://x.com/hnasr", None), None, mention=False),
        "profile": announce(platform, event(EventKind.PROFILE, "@hnasr changed their bio: Author of Root Cause",
                                            "https://x.com/hnasr", None), None, mention=False),
        "alert": announce(platform, event(EventKind.ALERT, "Feed “youtube” has failed 5 times in a row: HTTP 503",
                                          None, None), None, mention=False, template="{title} {url}"),
        "test_post": announce(platform, test_event, episode),
        "template_compact": announce(platform, event(EventKind.VIDEO, VIDEO.title, VIDEO.link, 2), video,
                                     template="New {kind} from {feed}: {title} {url}"),
        "template_chapters": announce(platform, event(EventKind.VIDEO, VIDEO.title, VIDEO.link, 2), video,
                                      mention=False, template="{title} ({duration})\n{chapters}\n{url}"),
        "digest": announce(platform, digest, None, mention=False, entries=digest_entries),
        "direct_message": announce(platform, event(EventKind.VIDEO, VIDEO.title, VIDEO.link, 2), video,
                                   direct=True),
        "hostile": announce(platform, event(EventKind.POST, HOSTILE.title, HOSTILE.link, 4),
                            stored(HOSTILE, ContentKind.POST, "x", 4), mention=False),
    }
