"""One release, one announcement, and titles edited in place: the pure
decider (bot.merge, bot.plan), clock injected, no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from bot.detect import KnownItem, content_hash, decide
from bot.edits import CHANGE_MERGE, CHANGE_TITLE, AlsoLink, next_edit, parse_edit
from bot.intents import AnnouncedEvent, PlannedDelivery, PollState
from bot.merge import BY_LINK, BY_TITLE, MergeRules, also_label, find_release, normalize_title, same_title
from bot.models import ContentKind, Destination, DestinationKind, EventKind, Item, Platform, Route, SourceSpec
from bot.plan import plan_poll
from bot.verdicts import ItemFate

NOW = datetime(2026, 6, 20, 12, 0, tzinfo=timezone.utc)
RULES = MergeRules(window_s=48 * 3600, show_names=("The Backend Engineering Show",))
YOUTUBE = SourceSpec(name="youtube", kind="rss", url="https://yt.example/feed", content=ContentKind.VIDEO)
PODCAST = SourceSpec(name="podcast", kind="rss", url="https://pod.example/rss", content=ContentKind.EPISODE)
BOTH = Route(1, Platform.DISCORD, "100", frozenset({EventKind.EPISODE, EventKind.VIDEO}))
SLACK = Route(2, Platform.SLACK, "C1", frozenset({EventKind.EPISODE, EventKind.VIDEO}))
VIDEO_ONLY = Route(3, Platform.DISCORD, "300", frozenset({EventKind.VIDEO}))
EPISODE_ONLY = Route(4, Platform.DISCORD, "400", frozenset({EventKind.EPISODE}))


def delivery(route: Route) -> PlannedDelivery:
    return PlannedDelivery(Destination(route.platform, DestinationKind.CHANNEL, route.channel), route.id, route.mention)


def podcast_announcement(*, title: str = "#141 - How Postgres Locks Work", routes=(BOTH, SLACK, EPISODE_ONLY),
                         published: datetime = NOW - timedelta(hours=3), summary: str = "All about locks.",
                         event_id: int = 10, item_id: int = 5) -> AnnouncedEvent:
    return AnnouncedEvent(
        event_id=event_id, kind=EventKind.EPISODE, item_id=item_id, source="podcast", title=title,
        url="https://pod.example/e/141", created_at=published + timedelta(minutes=5), published_at=published,
        deliveries=tuple(delivery(r) for r in routes), summary=summary,
        links=("https://pod.example/e/141", "https://cdn.pod.example/141.mp3"),
    )


def video(title: str = "How Postgres Locks Work | The Backend Engineering Show", *, vid: str = "AbCdEfGhIjK",
          published: datetime = NOW - timedelta(hours=1), summary: str = "") -> Item:
    return Item(title=title, link=f"https://www.youtube.com/watch?v={vid}", guid=f"yt:video:{vid}",
                published_at=published, video_id=vid, summary=summary)


def poll_youtube(items: list[Item], announced: tuple[AnnouncedEvent, ...], *,
                 routes=(BOTH, SLACK, VIDEO_ONLY, EPISODE_ONLY), merge: MergeRules | None = RULES):
    decision = decide(spec=YOUTUBE, synced=True, known=[], fetched=items, now=NOW)
    state = PollState(routes=tuple(routes), announced=announced, last_event_id=42)
    return plan_poll(decision, state, source="youtube", now=NOW, merge=merge)


# -- titles -------------------------------------------------------------------------


def test_episode_numbers_and_show_names_are_stripped_before_comparing() -> None:
    names = RULES.show_names
    for title in ("E42: How Postgres Locks Work", "#141 - How Postgres locks work", "Ep. 12 How postgres locks work",
                  "How Postgres Locks Work | The Backend Engineering Show", "Episode 12: How Postgres Locks Work",
                  "How Postgres Locks Work (#141)"):
        assert normalize_title(title, names) == "how postgres locks work", title
    assert normalize_title("e2e testing is hard") == "e2e testing is hard"  # not an episode number
    assert same_title("#141 - How Postgres locks work", "How Postgres Locks Work | The Backend Engineering Show", names)
    assert not same_title("How Postgres Locks Work", "How MySQL Locks Work", names)
    assert same_title("How Postgres Locks Work, explained", "How Postgres locks work explained!", names)
    assert same_title("How Postgres Locks Really Work", "How Postgres Locks Realy Work", names)  # a typo
    assert not same_title("Postgres internals deep dive part 1", "Postgres internals deep dive part 2", names)
    # The show name is configuration, not code: another creator's is not stripped.
    assert not same_title("Locks | Other Show", "Locks", names)
    assert same_title("Locks | Other Show", "Locks", ("Other Show",))


def test_links_to_the_same_video_in_any_form_tie_two_items() -> None:
    anchor = podcast_announcement(title="Something else entirely", summary="Watch it: https://youtu.be/AbCdEfGhIjK.")
    (match,) = find_release(video("A different title"), "youtube", (anchor,), RULES, now=NOW)
    assert match.by == BY_LINK
    # A link to a site's front page ties nothing.
    front = podcast_announcement(title="Something else", summary="More at https://www.youtube.com/")
    assert find_release(video("A different title"), "youtube", (front,), RULES, now=NOW) == []
    assert also_label("https://youtu.be/x", "yt") == "YouTube" and also_label("https://blog.example/a", "blog") == "blog"


# -- merges -------------------------------------------------------------------------


def test_a_video_of_an_episode_announced_edits_that_announcement_instead_of_posting() -> None:
    anchor = podcast_announcement()
    intent = poll_youtube([video()], (anchor,))
    kinds = [e.kind for e in intent.events]
    # One edit for the channels that had the episode; the video-only route
    # still gets the video as its own announcement.
    assert kinds == [EventKind.VIDEO, EventKind.EDIT]
    own, edit = intent.events
    assert [d.route_id for d in own.deliveries] == [VIDEO_ONLY.id]
    assert own.routing is not None and own.routing.merged_into == anchor.event_id
    assert [d.route_id for d in edit.deliveries] == [BOTH.id, SLACK.id, EPISODE_ONLY.id]
    spec = parse_edit(edit.payload)
    assert spec.edit_of == anchor.event_id and spec.change == CHANGE_MERGE
    assert spec.also == (AlsoLink("YouTube", "https://www.youtube.com/watch?v=AbCdEfGhIjK"),)
    assert edit.item == 0  # about the new video (the writer puts its id in)
    (verdict,) = intent.verdicts
    assert verdict.fate is ItemFate.MERGED and verdict.merged_into == anchor.event_id and verdict.merged_by == BY_TITLE
    assert intent.merge_check is not None and intent.merge_check.last_event_id == 42


def test_a_merged_item_that_no_other_channel_takes_makes_no_event_of_its_own() -> None:
    intent = poll_youtube([video()], (podcast_announcement(),), routes=(BOTH, SLACK))
    assert [e.kind for e in intent.events] == [EventKind.EDIT]


def test_a_similar_title_outside_the_window_is_its_own_announcement() -> None:
    old = podcast_announcement(published=NOW - timedelta(days=5))
    intent = poll_youtube([video()], (old,))
    assert [e.kind for e in intent.events] == [EventKind.VIDEO]
    assert {d.route_id for d in intent.events[0].deliveries} == {BOTH.id, SLACK.id, VIDEO_ONLY.id}
    assert intent.verdicts[0].fate is ItemFate.ANNOUNCED


def test_a_different_release_is_not_merged_and_merging_off_changes_nothing() -> None:
    intent = poll_youtube([video("Why Kafka is fast")], (podcast_announcement(),))
    assert [e.kind for e in intent.events] == [EventKind.VIDEO]
    off = poll_youtube([video()], (podcast_announcement(),), merge=None)
    assert [e.kind for e in off.events] == [EventKind.VIDEO] and off.merge_check is None


def test_an_announcement_of_the_same_source_is_never_a_merge() -> None:
    same = replace(podcast_announcement(title="How Postgres Locks Work"), source="youtube")
    assert [e.kind for e in poll_youtube([video()], (same,)).events] == [EventKind.VIDEO]


def test_earlier_edits_are_kept_and_a_link_already_added_is_not_added_again() -> None:
    x_link = AlsoLink("X", "https://x.com/hnasr/status/1")
    anchor = replace(podcast_announcement(), last_edit=next_edit(None, 10, CHANGE_MERGE, also=x_link))
    (own, edit) = poll_youtube([video()], (anchor,)).events
    assert parse_edit(edit.payload).also == (x_link, AlsoLink("YouTube", "https://www.youtube.com/watch?v=AbCdEfGhIjK"))
    done = replace(anchor, last_edit=parse_edit(edit.payload))
    assert [e.kind for e in poll_youtube([video()], (done,)).events] == [EventKind.VIDEO]  # video-only route only


def test_two_announcements_of_one_release_in_one_channel_are_edited_once_there() -> None:
    first = podcast_announcement(routes=(BOTH,))
    second = podcast_announcement(routes=(BOTH, SLACK), event_id=11, item_id=6, title="How Postgres Locks Work")
    second = replace(second, source="blog")
    edits = [e for e in poll_youtube([video()], (first, second)).events if e.kind is EventKind.EDIT]
    assert [[d.route_id for d in e.deliveries] for e in edits] == [[BOTH.id], [SLACK.id]]


# -- title edits ----------------------------------------------------------------------


def _retitled(anchor: AnnouncedEvent, new_title: str):
    old = Item(title=anchor.title, link=anchor.url, guid="g141", published_at=anchor.published_at)
    decided = decide(spec=PODCAST, synced=False, known=[], fetched=[old], now=NOW).new_items[0]
    known = [KnownItem(anchor.item_id, decided.identity, decided.norm_link, decided.title_key, content_hash(old))]
    decision = decide(spec=PODCAST, synced=True, known=known, fetched=[replace(old, title=new_title)], now=NOW)
    state = PollState(routes=(BOTH, SLACK), announced=(anchor,) if anchor.created_at > NOW - timedelta(days=2) else ())
    return plan_poll(decision, state, source="podcast", now=NOW, merge=RULES)


def test_a_title_fixed_within_the_window_edits_its_messages_and_posts_nothing() -> None:
    anchor = podcast_announcement(routes=(BOTH, SLACK))
    intent = _retitled(anchor, "#141 - How Postgres Locks Really Work")
    assert len(intent.updates) == 1
    (edit,) = intent.events
    assert edit.kind is EventKind.EDIT and edit.item_id == anchor.item_id
    spec = parse_edit(edit.payload)
    assert spec.change == CHANGE_TITLE and spec.title == "#141 - How Postgres Locks Really Work"
    assert [d.route_id for d in edit.deliveries] == [BOTH.id, SLACK.id]
    assert edit.routing is not None and edit.routing.edit_of == anchor.event_id


def test_a_change_that_is_not_the_title_or_after_the_window_edits_nothing() -> None:
    anchor = podcast_announcement(routes=(BOTH,))
    assert _retitled(anchor, anchor.title + "  ").events == ()  # whitespace only: the same title
    late = podcast_announcement(routes=(BOTH,), published=NOW - timedelta(days=4))
    intent = _retitled(late, "A new title")
    assert len(intent.updates) == 1 and intent.events == ()  # stored, not announced, not edited


def test_the_newest_edit_is_what_a_title_is_compared_with() -> None:
    anchor = podcast_announcement(routes=(BOTH,))
    anchor = replace(anchor, title="Second", last_edit=next_edit(None, anchor.event_id, CHANGE_TITLE, title="Second"))
    (edit,) = _retitled(anchor, "Third").events
    assert parse_edit(edit.payload).title == "Third"


def test_a_post_linking_a_merged_video_finds_the_announcement_it_was_merged_into() -> None:
    video_url = "https://www.youtube.com/watch?v=AbCdEfGhIjK"
    merged = replace(podcast_announcement(), last_edit=next_edit(None, 10, CHANGE_MERGE,
                                                                 also=AlsoLink("YouTube", video_url)))
    post = Item(title="New one is out https://youtu.be/AbCdEfGhIjK", link="https://x.com/hnasr/status/9",
                guid="x9", published_at=NOW)
    (match,) = find_release(post, "x", (merged,), RULES, now=NOW)
    assert match.anchor.event_id == 10 and match.by == BY_LINK
