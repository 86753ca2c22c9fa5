"""The judge itself: what counts as missing, duplicated, reordered or stray."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.chaos.feeds import FeedItem, item_in
from tests.chaos.ledger import Post
from tests.chaos.verdict import judge

pytestmark = pytest.mark.chaos

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
ITEMS = [FeedItem("alpha", n, T0 + timedelta(minutes=n)) for n in (1, 2, 3)]
CHANNELS = [("discord", "1"), ("slack", "C1")]


def post(seq: int, platform: str, channel: str, n: int | None, feed: str = "alpha") -> Post:
    body = {"embeds": [{"url": f"https://example.com/{feed}/e/{n}"}]} if n is not None else {"content": "hi"}
    return Post(seq, platform, channel, str(seq), float(seq), body, {})


def test_exactly_once_in_order_is_ok() -> None:
    posts = [post(i * 2 + k + 1, p, c, n) for i, n in enumerate((1, 2, 3)) for k, (p, c) in enumerate(CHANNELS)]
    verdict = judge(posts, ITEMS, CHANNELS)
    assert verdict.ok and verdict.delivered == verdict.expected == 6 and verdict.last_post_at == 6.0


def test_missing_duplicated_reordered_and_stray_posts_are_named() -> None:
    posts = [
        post(1, "discord", "1", 1), post(2, "discord", "1", 3), post(3, "discord", "1", 2),  # reordered
        post(4, "slack", "C1", 1), post(5, "slack", "C1", 1), post(6, "slack", "C1", 2),  # a duplicate; 3 missing
        post(7, "slack", "C9", 1),  # a channel nobody routed
        post(8, "discord", "1", None),  # no item in it
    ]
    verdict = judge(posts, ITEMS, CHANNELS)
    assert verdict.missing == [("slack", "C1", "alpha", 3)]
    assert verdict.duplicates == {("slack", "C1", "alpha", 1): 2}
    assert verdict.duplicate_posts == {"slack": 1}
    assert verdict.reordered == {("discord", "1", "alpha"): [1, 3, 2]}
    assert [p.seq for p in verdict.strays] == [7, 8]
    assert not verdict.ok
    assert "1 missing" in verdict.summary() and "1 duplicate posts" in verdict.summary()


def test_a_duplicate_arriving_late_is_a_duplicate_not_a_reordering() -> None:
    posts = [post(1, "discord", "1", 1), post(2, "discord", "1", 2), post(3, "discord", "1", 1)]
    verdict = judge(posts, ITEMS[:2], CHANNELS[:1])
    assert verdict.duplicates and not verdict.reordered


def test_the_item_is_read_from_either_platforms_body() -> None:
    discord_body = {"embeds": [{"url": "https://example.com/beta/e/12", "footer": {"text": "id:k"}}]}
    slack_body = {"text": "New article: beta 12 <https://example.com/beta/e/12>",
                  "blocks": [{"type": "section", "text": {"text": "*<https://example.com/beta/e/12|beta 12>*"}}]}
    assert item_in(discord_body) == item_in(slack_body) == ("beta", 12)
    assert item_in({"text": "https://example.com/a/e/1 and https://example.com/a/e/2"}) is None
