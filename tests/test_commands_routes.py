"""What moderators shape about a channel (issue #12), as transcripts on the
shared harness (tests/chat.py): announce adds / only / off / from a feed,
digests, pace and caps, templates, previews, a real test post through the
outbox, backfill, the `feed add` warning and what `status` tells apart."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.models import Caller, DigestPeriod, EventKind, EventPurpose, Platform, SegmentRole
from bot.presenter import present
from bot.plaintext import render_text
from tests.backends import Target
from tests.catalog_helpers import MODERATOR
from tests.chat import FEED_URL, Chat, open_chat


@pytest.fixture
async def chat(db: Target, request: pytest.FixtureRequest) -> AsyncIterator[Chat]:
    """The shared harness (conftest's ``chat``) on each backend: these commands
    are what writes routes' settings, test posts, backfills and digests."""
    marker = request.node.get_closest_marker("chat")
    harness = await open_chat(db, **(marker.kwargs if marker else {}))
    try:
        yield harness
    finally:
        await harness.store.close()

ELSEWHERE = Caller(Platform.DISCORD, "42", "777", is_moderator=True, display_name="mod")


async def test_announce_adds_replaces_and_removes_and_says_what_changed(chat: Chat) -> None:
    await chat.transcript("""
        > announce episode here
        Announcing here: nothing → episode.
        > announce book, video here mention <@&987654321>
        Announcing here: episode → episode, video, book.
        Each announcement mentions 987654321.
        > announce episodes here
        Already announcing episode, video, book here from every feed; nothing changed.
        > announce only episode article here
        Announcing here: episode, video, book → episode, article.
        > announce off article here
        Announcing here: episode, article → episode.
        > announce off video here
        None of those are announced here; still announcing episode.
        > announce off here
        Stopped announcing here: episode → nothing.
        > announce off here
        Nothing is announced in this channel.
        > announce podcasts here
        “podcasts” isn't a kind. Kinds are: episode video article post book profile milestone alert (or all).
        > announce here
        usage: announce <kinds> [from <feed>] here [mention <role>|mention none] [thread|no thread] (adds), announce only <kinds> here (replaces), announce off [<kinds>] here, announce digest daily|weekly|off here, announce pace <interval>|off here, announce cap <posts a day>|off here, announce test here
    """)
    # The mention stays until it is taken away, like every other setting.
    (route,) = [r for r in await chat.store.list_routes()] or [None]
    assert route is None
    assert [a.action for a in reversed(await chat.store.list_audit())] == [
        "announce", "announce", "announce", "announce off", "announce off"]


async def test_the_mention_and_thread_stay_until_changed(chat: Chat) -> None:
    await chat.transcript("""
        > announce episode here mention 987654321 thread
        Announcing here: nothing → episode.
        Each announcement mentions 987654321.
        Each announcement gets a discussion thread.
        > announce video here
        Announcing here: episode → episode, video.
        > announce video here mention none no thread
        Announcing here: episode, video → episode, video.
        Announcements no longer mention anyone.
        No more discussion threads.
    """)


async def test_a_warning_when_alert_leaves_a_channel(chat: Chat) -> None:
    await chat.transcript("""
        > announce episode alert here
        Announcing here: nothing → episode, alert.
        This is now a moderators' channel: failing feeds and broken routes are told here.
        > announce only episode here
        Announcing here: episode, alert → episode.
        ⚠ This channel no longer gets moderator alerts; no channel gets them now: failing feeds and broken routes will go unnoticed.
        > #777> announce alert here
        Announcing here: nothing → alert.
        This is now a moderators' channel: failing feeds and broken routes are told here.
        > announce alert here
        Announcing here: episode → episode, alert.
        This is now a moderators' channel: failing feeds and broken routes are told here.
        > announce off alert here
        Announcing here: episode, alert → episode.
        ⚠ This channel no longer gets moderator alerts; they still go to discord 777.
    """.replace("> #777> ", "#777> "))


async def test_announce_from_a_feed_routes_by_feed(chat: Chat) -> None:
    await chat.transcript("""
        > announce video from youtube here
        Announcing here: nothing → video.
        Feeds: every feed → youtube.
        > announce episode here
        Announcing here: video → episode, video.
        > feed backfill podcast 2
        No channel takes episodes from “podcast”, so there is nowhere to backfill to. `announce episode here` in the channel that should get them.
        > announce episode from podcast here
        Announcing here: episode, video → episode, video.
        Feeds: youtube → podcast, youtube.
        > announce episode from nope here
        There is no feed named “nope”. Feeds: blog, podcast, x, youtube.
        > announce episode from all here
        Announcing here: episode, video → episode, video.
        Feeds: podcast, youtube → every feed.
    """)


async def test_restricting_a_channel_to_a_feed_says_what_else_it_restricts(chat: Chat) -> None:
    await chat.transcript("""
        > announce episode here
        Announcing here: nothing → episode.
        > announce video from youtube here
        Announcing here: episode → episode, video.
        Feeds: every feed → youtube.
        Feeds are the channel's, not a kind's: episode now comes only from youtube too (`announce <kinds> from all here` undoes it).
    """)


async def test_digest_pace_and_cap_say_before_and_after(chat: Chat) -> None:
    await chat.transcript("""
        > announce digest daily here
        Nothing is announced in this channel yet, so there is no digest to set. `announce <kinds> here` first (e.g. `announce episode video here`).
        > announce episode here
        Announcing here: nothing → episode.
        > announce digest daily here
        This channel gets: every item as it comes → a daily digest.
        One message with the period's items goes out at 00:00 UTC every day. Alerts and test posts still come at once.
        > announce cap 10 here
        This channel gets: a daily digest → a daily digest, at most 10 posts a day.
        Past 10 posts a day the rest go into the daily digest; none is dropped, and `status` shows what waits.
        > announce pace 30s here
        This channel gets: a daily digest, at most 10 posts a day → a daily digest, at most 10 posts a day, one post every 30s at most.
        A post that comes sooner waits its turn; nothing is dropped, and alerts don't wait.
        > announce pace soon here
        A pace is an interval like `30s`, `5m` or `1h`, not “soon”.
        > announce cap 0 here
        A daily cap is at least 1 post (`announce cap off here` removes it).
        > announce digest off here
        This channel gets: a daily digest, at most 10 posts a day, one post every 30s at most → at most 10 posts a day, one post every 30s at most.
        > announce cap off here
        This channel gets: at most 10 posts a day, one post every 30s at most → one post every 30s at most.
        > announce digest weekly here
        This channel gets: one post every 30s at most → a weekly digest, one post every 30s at most.
        One message with the period's items goes out at Monday 00:00 UTC every week. Alerts and test posts still come at once.
    """)
    (route,) = await chat.store.list_routes()
    assert (route.digest, route.pace_s, route.daily_cap) == (DigestPeriod.WEEKLY, 30, None)


async def test_templates_from_the_gallery_or_written_and_refused_by_name(chat: Chat) -> None:
    await chat.transcript(r"""
        > template compact here
        Nothing is announced in this channel yet, so there is no template to set. `announce <kinds> here` first (e.g. `announce episode video here`).
        > announce episode here
        Announcing here: nothing → episode.
        > template compact here
        Template here: card (the default) → compact (`New {kind} from {feed}: {title} {url}`).
        `preview <feed> here` shows the newest item with it; `announce test here` posts one.
        > template fancy here
        There is no template “fancy”. Templates: card, link, compact, detailed, chapters, ping (`template list` shows them).
        > template set here {title} {colour}
        There is no placeholder {colour}. Placeholders: {title} {url} {kind} {feed} {published} {duration} {episode} {summary} {chapters} {mention}.
        > template set here {title.__class__}
        “{title.__class__}” isn't a placeholder: only plain names like {title} work (no dots, brackets or code). Placeholders: {title} {url} {kind} {feed} {published} {duration} {episode} {summary} {chapters} {mention}.
        > template set here Fresh: {title}\n{url}
        Template here: compact (`New {kind} from {feed}: {title} {url}`) → your own (`Fresh: {title}\n{url}`).
        `preview <feed> here` shows the newest item with it; `announce test here` posts one.
        > template reset here
        Template here: your own (`Fresh: {title}\n{url}`) → card (the default).
        `preview <feed> here` shows the newest item with it; `announce test here` posts one.
    """)
    listing = (await chat.say("template list")).text.splitlines()
    assert len([line for line in listing if line.startswith("• ")]) == 6
    assert listing[-1] == "Here: card (the default)."


async def test_preview_here_is_what_the_channel_would_get_and_posts_nothing(chat: Chat) -> None:
    await chat.say("announce episode here mention 987654321")
    await chat.say("template set here {mention} {title} {url}")
    reply = await chat.say("preview podcast here")
    assert reply.text == ("The newest item of “podcast” as this channel would get it. Nothing was posted. "
                          "The role is shown, not pinged.")
    view = reply.announcement
    assert view is not None and view.mention is None  # inert: a preview pings nobody
    assert view.plain_body == ("@987654321 Postgres is half as fast in Linux 7.0 https://podcasters.spotify.com"
                               "/pod/show/hnasr/episodes/postgres-is-half-as-fast-in-linux-7-0-e220")
    assert not any(s.role is SegmentRole.MENTION for s in view.body)
    assert [i.title for i in reply.items] == ["Postgres is half as fast in Linux 7.0"]  # for ask --json
    plain = await chat.say("preview podcast")  # the default card
    assert plain.announcement is not None and plain.announcement.body == ()
    assert render_text(plain).splitlines()[1] == "[New episode] Postgres is half as fast in Linux 7.0"
    assert await chat.store.outbox_rows() == []
    await chat.transcript("""
        > preview nope
        There is no feed named “nope”. Feeds: blog, podcast, x, youtube.
        > preview youtube here
        The newest item of “youtube” as this channel would get it (this channel doesn't take videos from “youtube”, so it wouldn't get this one). Nothing was posted. The role is shown, not pinged.
        > preview
        usage: preview <feed> [here]
    """)


async def test_announce_test_posts_for_real_through_the_outbox_marked_as_a_test(chat: Chat) -> None:
    await chat.transcript("""
        > announce test here
        Nothing is announced in this channel yet, so there is no test post to send to set. `announce <kinds> here` first (e.g. `announce episode video here`).
        > announce video here mention 987654321
        Announcing here: nothing → video.
        Each announcement mentions 987654321.
        > announce digest daily here
        This channel gets: every item as it comes → a daily digest.
        One message with the period's items goes out at 00:00 UTC every day. Alerts and test posts still come at once.
        > announce test here
        Posting a test of “Postgres fsync and SSD caches, explained with a demo” (video from youtube) here, through the outbox like a real announcement, with this channel's template. It is marked as a test and mentions nobody.
    """)
    assert chat.queued.calls == 1
    (posted,) = await chat.deliver()  # not held for the digest: a test goes at once
    assert posted.event.purpose is EventPurpose.TEST and posted.destination.id == "555"
    view = present(posted)
    assert view.heading == "Test post: New video" and view.mention is None and view.test
    assert await chat.deliver() == []  # once
    await chat.say("announce test here")  # a test may be repeated: it is not an announcement
    assert len(await chat.deliver()) == 1


async def test_backfill_announces_the_newest_items_once(chat: Chat) -> None:
    await chat.transcript("""
        > announce episode here
        Announcing here: nothing → episode.
        > feed backfill podcast 3
        Queued 3 items of “podcast” (oldest first) to discord 555.
        > feed backfill podcast 3
        The newest 3 items of “podcast” were announced already; nothing new was queued.
        > feed backfill podcast 5
        Queued 2 items of “podcast” (oldest first) to discord 555.
        3 others were announced before: not posted again.
        > feed backfill podcast 51
        Backfill 1 to 50 items at a time, not 51.
        > feed backfill nope 3
        There is no feed named “nope”. Feeds: blog, podcast, x, youtube.
        > feed backfill podcast many
        usage: feed backfill <name> <how many of its newest items, 1 to 50>
    """)
    posted = await chat.deliver()
    dates = [a.item.item.published_at for a in posted if a.item is not None]
    assert len(posted) == 5 and dates[:3] == sorted(dates[:3])  # oldest first, each batch
    assert {a.event.kind for a in posted} == {EventKind.EPISODE}
    assert await chat.deliver() == []


async def test_feed_add_warns_when_no_channel_takes_its_kind(chat: Chat) -> None:
    warned = await chat.say(f"feed add {FEED_URL} name talks")
    assert warned.text.endswith("⚠ No channel takes articles from it yet, so nothing of “talks” will be posted. "
                                "`announce article here` in the channel that should get them.")
    await chat.say("feed remove talks")
    await chat.say("announce article here")
    quiet = await chat.say(f"feed add {FEED_URL} name talks")
    assert "⚠" not in quiet.text


async def test_status_tells_an_item_found_from_an_item_delivered(chat: Chat) -> None:
    await chat.say("announce episode here")
    await chat.say("announce cap 2 here")
    await chat.say("feed backfill podcast 3")
    await chat.deliver()
    lines = (await chat.say("status")).text.splitlines()
    assert ("• podcast [ok]: last success just now, next poll in 15m, 121 items; last new item just now "
            "(“Postgres is half as fast in Linux 7.0”); last delivered just now") in lines
    assert ("• youtube [ok]: last success just now, next poll in 15m, 25 items; last new item just now "
            "(“Postgres fsync and SSD caches, explained with a demo”); last delivered never") in lines
    assert ("• discord 555 (episode): fine; last delivered just now; 2 of 2 posts today; "
            "1 waiting (next in 12h, daily cap of 2 reached)") in lines


async def test_status_lists_how_the_config_file_differs(chat: Chat) -> None:
    chat.drift = ["source “medium” is in the file, not in the database"]
    lines = (await chat.say("status")).text.splitlines()
    assert ("The config file differs from the database (the database is what runs; "
            "`showbot apply-config` makes it match the file):") in lines
    assert "• source “medium” is in the file, not in the database" in lines


async def test_moderators_in_two_channels_shape_each_their_own(chat: Chat) -> None:
    await chat.say("announce episode here")
    await chat.say("announce video here", ELSEWHERE)
    await chat.say("template link here", ELSEWHERE)
    routes = {r.channel: r for r in await chat.store.list_routes()}
    assert routes["555"].template is None and routes["777"].template == "{title} {url}"
    assert MODERATOR.channel == "555"


async def test_backfill_leaves_youtube_shorts_out(chat: Chat) -> None:
    from datetime import timedelta

    from bot.holds import ItemRelease
    from bot.intents import PollIntent, SourceProgress
    from bot.verdicts import ItemFate, ItemVerdict

    source = await chat.store.get_source("youtube")
    newest = await chat.store.feed_items("youtube", 2)
    now = chat.clock()
    # The poll that stored the newest video found it was a Short (its decision record says so).
    await chat.store.write_poll(source, PollIntent(releases=(ItemRelease(newest[0].id, ItemVerdict(
        ItemFate.SHORT, note="a YouTube Short")),)), SourceProgress(now, now + timedelta(minutes=15)))
    await chat.say("announce video here")
    reply = await chat.say("feed backfill youtube 2")
    assert reply.text == ("Queued 1 item of “youtube” (oldest first) to discord 555.\n"
                          "1 YouTube Short left out (the feed has shorts = false).")
    [posted] = await chat.deliver()
    assert posted.item is not None and posted.item.id == newest[1].id
    only_short = await chat.say("feed backfill youtube 1")
    assert only_short.text.startswith("Nothing to backfill: the newest 1 item of “youtube” are all YouTube Shorts")
