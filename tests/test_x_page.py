"""bot.sources.x.page: the page-text form of the seeds, and the count parser."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.errors import FeedParseError
from bot.sources.x import parse_count, parse_profile_text
from tests.xstub import seed_text

NOW = datetime(2026, 5, 20, 12, 0, tzinfo=timezone.utc)


# ------------------------------------------------------------------ page text


def test_seed_000_stats_page_parses() -> None:
    snap = parse_profile_text(seed_text("000"), "hnasr", NOW)
    assert (snap.handle, snap.taken_at) == ("hnasr", NOW)
    # "644 following86k followers", not the similar profiles listed below it
    # ("66 following231k followers"), and the exact post count over "21K tweets".
    assert (snap.followers, snap.following, snap.posts) == (86000, 644, 21739)
    assert snap.bio == ("Backend and Database Courses courses.husseinnasser.com YouTube "
                        "youtube.com/@hnasr Author of pglocks.org Engineer @esri")
    assert snap.pinned is None
    assert snap.recent_posts == ()


def test_seed_001_x_page_parses() -> None:
    snap = parse_profile_text(seed_text("001"), "hnasr", NOW)
    assert (snap.followers, snap.following, snap.posts) == (88800, 640, 21800)
    assert snap.bio == ("Backend and Database Courses courses.husseinnasser.com YouTube "
                        "youtube.com/@hnasr Author of Root Cause amzn.to/4cfQjJj Engineer @esri")
    assert snap.pinned is not None and snap.pinned.id is None
    assert snap.pinned.text.startswith("I wrote a new book that has been in the works for years.")
    assert snap.pinned.text.endswith("fully grasping their inner mechanics. Performance")
    posts = snap.recent_posts
    assert len(posts) == 13  # every post block but the pinned one
    assert posts[0].summary.startswith("How to Become a Good Backend Engineer (Fundamentals)\n")
    assert posts[0].published_at == datetime(2024, 11, 2, tzinfo=timezone.utc)
    assert posts[4].summary == "Being humble is just another form of ego."
    assert all("Image" not in p.summary.splitlines() for p in posts)


def test_page_dates_without_a_year_are_the_latest_past_one() -> None:
    text = ("@hnasr\nbio here\n1\nFollowing\n2K\nFollowers\n"
            "user avatar\nH\n@hnasr\nDec 30\nold year post\n12K\n"
            "user avatar\nH\n@hnasr\n5h\nfresh post\n1K\n")
    snap = parse_profile_text(text, "hnasr", datetime(2026, 1, 2, 12, tzinfo=timezone.utc))
    assert [p.published_at for p in snap.recent_posts] == [
        datetime(2025, 12, 30, tzinfo=timezone.utc), datetime(2026, 1, 2, 7, tzinfo=timezone.utc)]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello world",
        "Access denied. Please enable JavaScript.\n",
        # another account's counts only: not this profile's
        "@someoneelse\nSomeone's bio\n5 following10k followers\n",
        "\x00\x01\x02 binary junk \xff",
    ],
)
def test_garbage_page_text_is_a_parse_error(text: str) -> None:
    with pytest.raises(FeedParseError, match="not an X profile page"):
        parse_profile_text(text, "hnasr", NOW)



# --------------------------------------------------------------------- counts


@pytest.mark.parametrize(
    ("text", "value"),
    [("86k", 86_000), ("88.8K", 88_800), ("1.2M", 1_200_000), ("21,739", 21_739),
     ("640", 640), ("21.8K", 21_800), ("0", 0), (" 12.3K ", 12_300), ("1.5B", 1_500_000_000),
     ("1,234,567", 1_234_567), ("3 K", 3_000), ("1.2345K", 1_234)],
)
def test_parse_count(text: str, value: int) -> None:
    assert parse_count(text) == value


@pytest.mark.parametrize(
    "text", ["", "K", "1.5", "1,23", "12,3456", "-5", "1.2.3", "abc", "1e5", "١٢٣", "12 345",
             "1,000.5", "99999999999999", "5000B", "∞"])
def test_parse_count_rejects(text: str) -> None:
    with pytest.raises(FeedParseError):
        parse_count(text)


@given(st.one_of(st.text(), st.text(alphabet="0123456789.,kKmMbB -", max_size=20)))
def test_parse_count_raises_only_feed_parse_error(text: str) -> None:
    try:
        value = parse_count(text)
    except FeedParseError:
        return
    assert isinstance(value, int) and 0 <= value <= 10**12


@given(st.integers(0, 999), st.integers(0, 9), st.sampled_from(["K", "k", "M", "m"]))
def test_displayed_counts_round_trip(whole: int, tenth: int, suffix: str) -> None:
    scale = 1_000 if suffix in "Kk" else 1_000_000
    assert parse_count(f"{whole}.{tenth}{suffix}") == whole * scale + tenth * scale // 10
    assert parse_count(f"{whole}{suffix}") == whole * scale


@given(st.integers(0, 10**12))
def test_grouped_counts_round_trip(n: int) -> None:
    assert parse_count(f"{n:,}") == n
    assert parse_count(str(n)) == n
