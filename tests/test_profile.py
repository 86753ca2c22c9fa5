"""Snapshot diffing: profile, book and milestone changes, and the storage shape."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config import XSourceOptions
from bot.detect import make_book_matcher
from bot.errors import FeedParseError
from bot.models import EventKind
from bot.profile import (
    Every,
    PinnedPost,
    ProfileChange,
    ProfileSnapshot,
    bio_links,
    crossed_milestone,
    diff_snapshots,
    profile_changes,
    same_pinned,
)
from bot.sources.x import parse_snapshot
from bot.storage.sqlite.schema import MIGRATIONS
from tests.xstub import FIXTURES

T0 = datetime(2026, 4, 1, 12, tzinfo=timezone.utc)
T1 = datetime(2026, 5, 1, 12, tzinfo=timezone.utc)
BOOK = make_book_matcher(["Root Cause"], ["https://amzn.to/4cfQjJj"])
MILESTONES = [80_000, 88_000, 90_000]


def seed(n: str, taken_at: datetime) -> ProfileSnapshot:
    data = (FIXTURES / f"profile_{n}.txt").read_bytes()
    return parse_snapshot(data, handle="hnasr", taken_at=taken_at)


def snap(**kw: object) -> ProfileSnapshot:
    base: dict[str, object] = {"handle": "hnasr", "taken_at": T1, "followers": 1000,
                               "following": 10, "posts": 100, "bio": "Backend engineer"}
    base.update(kw)
    return ProfileSnapshot(**base)  # type: ignore[arg-type]


def kinds(changes: list[ProfileChange]) -> list[EventKind]:
    return [c.kind for c in changes]


# ------------------------------------------------------------------- the seeds


def test_seed_000_then_001_is_bio_pinned_one_book_and_a_milestone() -> None:
    old, new = seed("000", T0), seed("001", T1)
    changes = diff_snapshots(old, new, milestones=MILESTONES, is_book_news=BOOK)
    assert kinds(changes) == [EventKind.PROFILE, EventKind.PROFILE, EventKind.BOOK,
                              EventKind.MILESTONE]
    bio, pinned, book, milestone = changes

    assert bio.payload["field"] == "bio"
    assert "Author of pglocks.org" in bio.payload["old"]
    assert "Author of Root Cause amzn.to/4cfQjJj" in bio.payload["new"]
    assert bio.payload["book_news"] is True
    assert bio.url == "https://x.com/hnasr"
    assert bio.title.startswith("@hnasr changed their bio: Backend and Database Courses")

    assert pinned.payload["field"] == "pinned"
    assert pinned.payload["old"] is None
    assert pinned.payload["new"]["text"].startswith("I wrote a new book")
    assert pinned.payload["book_news"] is True
    assert pinned.title.startswith("@hnasr pinned: I wrote a new book")

    # One book event for both reasons: a channel hears the book news once.
    assert book.payload["reasons"] == ["bio", "pinned"]
    assert book.payload["links"] == ["https://amzn.to/4cfQjJj"]  # added to the bio; the page has no post URL
    assert book.title.startswith("Book news from @hnasr: I wrote a new book")
    assert len(book.title) <= 150
    assert book.url == "https://amzn.to/4cfQjJj"

    assert milestone.title == "@hnasr passed 88,000 followers"
    assert milestone.payload == {"handle": "hnasr", "threshold": 88_000, "followers": 88_800,
                                 "previous": 86_000}


def test_seeds_with_keywords_only_still_find_the_book() -> None:
    changes = diff_snapshots(seed("000", T0), seed("001", T1), milestones=[],
                             is_book_news=make_book_matcher(["Root Cause"]))
    assert kinds(changes) == [EventKind.PROFILE, EventKind.PROFILE, EventKind.BOOK]


def test_seeds_backwards_is_only_a_bio_change() -> None:
    # 000 shows no pinned post (unknown, not an unpin), followers went down,
    # and the new bio no longer mentions the book.
    changes = diff_snapshots(seed("001", T0), seed("000", T1), milestones=MILESTONES,
                             is_book_news=BOOK)
    assert kinds(changes) == [EventKind.PROFILE]
    assert changes[0].payload["book_news"] is False


def test_garbage_snapshot_raises_and_the_previous_one_stays() -> None:
    # The pipeline's rule, shown end to end: a parse failure means no diff,
    # and the next good snapshot is compared with the last good one.
    previous = seed("000", T0)
    with pytest.raises(FeedParseError):
        parse_snapshot(b"<html><body>Something went wrong. Try reloading.</body></html>",
                       handle="hnasr", taken_at=T1)
    changes = diff_snapshots(previous, seed("001", T1 + timedelta(hours=1)),
                             milestones=MILESTONES, is_book_news=BOOK)
    assert kinds(changes).count(EventKind.MILESTONE) == 1


# ------------------------------------------------------------------ the rules


def test_first_snapshot_emits_nothing() -> None:
    assert diff_snapshots(None, seed("001", T1), milestones=MILESTONES, is_book_news=BOOK) == []


def test_the_same_snapshot_twice_emits_nothing() -> None:
    s = seed("001", T1)
    later = dataclasses.replace(s, taken_at=T1 + timedelta(days=1))
    assert diff_snapshots(s, later, milestones=MILESTONES, is_book_news=BOOK) == []


def test_bio_change_without_the_book_is_profile_only() -> None:
    changes = diff_snapshots(snap(bio="Engineer"), snap(bio="Engineer at Esri"),
                             milestones=[], is_book_news=BOOK)
    assert kinds(changes) == [EventKind.PROFILE]
    assert changes[0].payload == {"handle": "hnasr", "field": "bio", "old": "Engineer",
                                  "new": "Engineer at Esri", "book_news": False}


def test_bio_that_already_mentioned_the_book_is_not_book_news_again() -> None:
    changes = diff_snapshots(snap(bio="Author of Root Cause"),
                             snap(bio="Author of Root Cause (2nd edition)"),
                             milestones=[], is_book_news=BOOK)
    assert kinds(changes) == [EventKind.PROFILE]


def test_cosmetic_bio_differences_are_not_changes() -> None:
    old = snap(bio="Author of Root Cause https://amzn.to/4cfQjJj  Engineer")
    new = snap(bio="Author of Root Cause amzn.to/4cfQjJj\nEngineer")
    assert diff_snapshots(old, new, milestones=[], is_book_news=BOOK) == []


def test_unknown_bio_is_never_a_change() -> None:
    assert diff_snapshots(snap(bio=None), snap(bio="Author of Root Cause"),
                          milestones=[], is_book_news=BOOK) == []
    assert diff_snapshots(snap(bio="x"), snap(bio=None), milestones=[], is_book_news=BOOK) == []


def test_pinned_book_post_alone_is_one_book_event_with_its_link() -> None:
    pinned = PinnedPost("19", "Root Cause is out!", "https://x.com/hnasr/status/19")
    changes = diff_snapshots(snap(pinned=PinnedPost("18", "old pin")), snap(pinned=pinned),
                             milestones=[], is_book_news=BOOK)
    assert kinds(changes) == [EventKind.PROFILE, EventKind.BOOK]
    profile, book = changes
    assert profile.url == book.url == "https://x.com/hnasr/status/19"
    assert profile.payload["old"] == {"id": "18", "text": "old pin", "url": None}
    assert book.payload["reasons"] == ["pinned"]
    assert book.payload["links"] == ["https://x.com/hnasr/status/19"]


def test_bio_and_pinned_book_news_carry_both_links() -> None:
    old = snap(bio="Engineer", pinned=None)
    new = snap(bio="Author of Root Cause amzn.to/4cfQjJj",
               pinned=PinnedPost("19", "My book Root Cause", "https://x.com/hnasr/status/19"))
    changes = diff_snapshots(old, new, milestones=[], is_book_news=BOOK)
    [book] = [c for c in changes if c.kind is EventKind.BOOK]
    assert book.payload["links"] == ["https://x.com/hnasr/status/19", "https://amzn.to/4cfQjJj"]
    assert book.payload["reasons"] == ["bio", "pinned"]


def test_pinned_post_already_announced_as_a_post_is_not_book_news_again() -> None:
    pinned = PinnedPost("19", "Root Cause is out!", "https://x.com/hnasr/status/19")
    changes = diff_snapshots(snap(), snap(pinned=pinned), milestones=[], is_book_news=BOOK,
                             announced_post_ids={"19"})
    assert kinds(changes) == [EventKind.PROFILE]
    assert changes[0].payload["book_news"] is False


def test_pinned_sameness() -> None:
    page = PinnedPost(None, "I wrote a new book that has been in the works for years. Performance")
    api = PinnedPost("1", "I wrote a new book that has been in the works for years. Performance "
                          "problems taught me the rest.", "https://x.com/hnasr/status/1")
    assert same_pinned(page, api)  # the page truncates the API's full text
    assert same_pinned(PinnedPost("1", "typo"), PinnedPost("1", "fixed typo"))  # an edit
    assert not same_pinned(PinnedPost("1", "same"), PinnedPost("2", "same"))
    assert not same_pinned(PinnedPost(None, "hi"), PinnedPost(None, "hi there"))  # too short to call


def test_unpinning_is_not_announced() -> None:
    old = snap(pinned=PinnedPost("1", "Root Cause is out!"))
    assert diff_snapshots(old, snap(pinned=None), milestones=[], is_book_news=BOOK) == []


def test_without_a_book_matcher_there_is_no_book_news() -> None:
    changes = diff_snapshots(seed("000", T0), seed("001", T1), milestones=[], is_book_news=None)
    assert kinds(changes) == [EventKind.PROFILE, EventKind.PROFILE]


def test_bio_links() -> None:
    assert bio_links("Courses courses.husseinnasser.com YouTube youtube.com/@hnasr "
                     "I like Node.js. Author of pglocks.org, https://amzn.to/4cfQjJj @esri") == [
        "https://courses.husseinnasser.com", "https://youtube.com/@hnasr",
        "https://pglocks.org", "https://amzn.to/4cfQjJj"]


# ------------------------------------------------------------------ milestones


@pytest.mark.parametrize(
    ("previous", "current", "milestones", "best", "expected"),
    [
        (86_000, 88_800, MILESTONES, None, 88_000),
        (50_000, 99_000, [60_000, 70_000, 80_000, 90_000], None, 90_000),  # one, the highest
        (86_000, 88_800, Every(10_000), None, None),
        (89_000, 90_500, Every(10_000), None, 90_000),
        (9_999, 10_000, Every(10_000), None, 10_000),  # reaching it counts
        (88_000, 88_800, MILESTONES, None, None),  # already there
        (90_500, 89_000, MILESTONES, None, None),  # down
        (0, 88_800, MILESTONES, None, None),  # a zero (garbage) previous
        (None, 88_800, MILESTONES, None, None),
        (86_000, None, MILESTONES, None, None),
        (860, 88_800, MILESTONES, None, None),  # "86" read for "86k": implausible jump
        (87_900, 88_200, MILESTONES, 88_100, None),  # dipped below and back: said once already
        (87_900, 90_100, MILESTONES, 88_100, 90_000),
        (86_000, 88_800, [0, -5], None, None),
    ],
)
def test_crossed_milestone(previous: int | None, current: int | None, milestones: object,
                           best: int | None, expected: int | None) -> None:
    assert crossed_milestone(previous, current, milestones, best_followers=best) == expected  # type: ignore[arg-type]


def test_every_needs_a_positive_step() -> None:
    with pytest.raises(ValueError):
        Every(0)


@given(st.lists(st.one_of(st.none(), st.integers(0, 2_000_000)), min_size=2, max_size=40),
       st.sampled_from([Every(10_000), Every(1_000), [1_000, 10_000, 50_000, 100_000, 1_000_000]]))
def test_no_milestone_storm(counts: list[int | None], rule: Every | list[int]) -> None:
    """Whatever the counts (garbage zeros, unknowns, spikes, dips), with the
    pipeline tracking the best count so far: at most one milestone per diff,
    each threshold at most once, and only thresholds really reached."""
    announced: list[int] = []
    best: int | None = None
    previous: ProfileSnapshot | None = None
    for i, count in enumerate(counts):
        current = snap(followers=count, taken_at=T0 + timedelta(hours=i))
        changes = diff_snapshots(previous, current, milestones=rule, is_book_news=BOOK,
                                 best_followers=best)
        found = [c.payload["threshold"] for c in changes if c.kind is EventKind.MILESTONE]
        assert len(found) <= 1
        for threshold in found:
            assert count is not None and threshold <= count
            assert best is None or threshold > best
        announced.extend(found)
        if count is not None:
            best = max(best or 0, count)
        previous = current
    assert len(announced) == len(set(announced))


def milestone_of(changes: tuple[ProfileChange, ...]) -> int | None:
    found = [c.payload["threshold"] for c in changes if c.kind is EventKind.MILESTONE]
    return found[0] if found else None


def test_profile_changes_takes_an_x_sources_milestone_options() -> None:
    old, new = snap(followers=19_500), snap(followers=31_000)
    by_default = profile_changes(XSourceOptions(), old, new, best_followers=None, is_book_news=None)
    every_5k = profile_changes(XSourceOptions(milestone_every=5_000), old, new,
                               best_followers=None, is_book_news=None)
    listed = profile_changes(XSourceOptions(milestones=(25_000, 50_000), milestone_every=5_000), old, new,
                             best_followers=None, is_book_news=None)
    assert (milestone_of(by_default), milestone_of(every_5k), milestone_of(listed)) == (30_000, 30_000, 25_000)
    assert profile_changes(XSourceOptions(), None, new, best_followers=None, is_book_news=None) == ()


def test_profile_changes_is_diff_snapshots() -> None:
    old, new = seed("000", T0), seed("001", T1)
    options = XSourceOptions(milestones=tuple(MILESTONES))
    assert profile_changes(options, old, new, best_followers=88_100, is_book_news=BOOK) == tuple(
        diff_snapshots(old, new, milestones=MILESTONES, is_book_news=BOOK, best_followers=88_100))
    # best_followers reaches the milestone rule: 88k was passed before.
    assert milestone_of(profile_changes(options, old, new, best_followers=88_100, is_book_news=BOOK)) is None


# ---------------------------------------------------------------- storage shape


def test_the_snapshot_migration_applies_after_the_spine_and_cascades() -> None:
    db = sqlite3.connect(":memory:")
    try:
        db.execute("PRAGMA foreign_keys = ON")
        for migration in MIGRATIONS:
            db.executescript(migration)
        db.execute("INSERT INTO sources (id, name, kind, content, every_s, max_age_s, handle, "
                   "provider, created_at) VALUES (1, 'x', 'x', 'post', 900, 604800, 'hnasr', "
                   "'api', '2026-05-01T00:00:00Z')")
        row = ("2026-05-01T12:00:00Z", 88800, 640, 21800, "bio", None, "pin", None, "{}")
        insert = ("INSERT INTO profile_snapshots (source_id, taken_at, followers, following, "
                  "posts, bio, pinned_id, pinned_text, pinned_url, raw_json) "
                  "VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        db.execute(insert, row)
        with pytest.raises(sqlite3.IntegrityError):
            db.execute(insert, row)  # a retried poll cannot record the same snapshot twice
        plan = db.execute("EXPLAIN QUERY PLAN SELECT * FROM profile_snapshots WHERE source_id = 1 "
                          "ORDER BY taken_at DESC LIMIT 1").fetchall()
        assert "profile_snapshots_source_taken" in " ".join(str(r) for r in plan)
        db.execute("DELETE FROM sources WHERE id = 1")
        assert db.execute("SELECT count(*) FROM profile_snapshots").fetchone() == (0,)
    finally:
        db.close()
