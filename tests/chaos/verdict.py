"""Judging a run from what the fake platforms recorded: per (item, channel)
delivered exactly once, per (feed, channel) in publication order.

Order is judged on each pair's FIRST delivery, in the order the platform
accepted them (ledger order): a duplicate is counted as a duplicate, not
twice as a reordering.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Sequence

from tests.chaos.feeds import FeedItem, item_in
from tests.chaos.ledger import Post

Channel = tuple[str, str]  # (platform, channel id)
Pair = tuple[str, str, str, int]  # (platform, channel, feed, n)


@dataclass
class Verdict:
    expected: int
    posts: int
    delivered: int  # distinct expected pairs seen at least once
    missing: list[Pair] = field(default_factory=list)
    duplicates: dict[Pair, int] = field(default_factory=dict)
    reordered: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)  # -> n in arrival order
    strays: list[Post] = field(default_factory=list)  # no single item URL, or a channel not routed
    last_post_at: float | None = None

    @property
    def ok(self) -> bool:
        return not (self.missing or self.duplicates or self.reordered or self.strays)

    @property
    def missing_by_platform(self) -> Counter[str]:
        return Counter(p[0] for p in self.missing)

    @property
    def duplicate_posts(self) -> Counter[str]:
        """Extra posts (beyond the first) per platform."""
        extra: Counter[str] = Counter()
        for pair, n in self.duplicates.items():
            extra[pair[0]] += n - 1
        return extra

    @property
    def reordered_channels(self) -> set[tuple[str, str]]:
        return {(p, c) for p, c, _ in self.reordered}

    def summary(self) -> str:
        lines = [
            f"{self.posts} posts recorded for {self.expected} expected deliveries: "
            f"{self.delivered} delivered, {len(self.missing)} missing {dict(self.missing_by_platform)}, "
            f"{sum(self.duplicate_posts.values())} duplicate posts {dict(self.duplicate_posts)}, "
            f"{len(self.reordered_channels)} channel(s) out of publication order, "
            f"{len(self.strays)} stray post(s)",
        ]
        for pair in self.missing[:5]:
            lines.append(f"  missing   {pair}")
        for pair, n in list(self.duplicates.items())[:5]:
            lines.append(f"  duplicate {pair} x{n}")
        for key, order in list(self.reordered.items())[:5]:
            lines.append(f"  reordered {key}: arrived as {order}")
        for post in self.strays[:3]:
            lines.append(f"  stray     #{post.seq} {post.platform} {post.channel}")
        return "\n".join(lines)


def judge(posts: Sequence[Post], items: Iterable[FeedItem], channels: Iterable[Channel]) -> Verdict:
    routed = list(channels)
    published: dict[tuple[str, int], datetime] = {(i.feed, i.n): i.published for i in items}
    expected = {(p, c, f, n) for p, c in routed for f, n in published}
    seen: Counter[Pair] = Counter()
    arrivals: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    strays: list[Post] = []
    for post in sorted(posts, key=lambda p: p.seq):
        found = item_in(post.body)
        pair = (post.platform, post.channel, *found) if found else None
        if pair is None or pair not in expected:
            strays.append(post)
            continue
        seen[pair] += 1
        if seen[pair] == 1:
            arrivals[(post.platform, post.channel, pair[2])].append(pair[3])
    reordered = {
        key: order for key, order in arrivals.items()
        if [published[(key[2], n)] for n in order] != sorted(published[(key[2], n)] for n in order)
    }
    return Verdict(
        expected=len(expected),
        posts=len(posts),
        delivered=sum(1 for pair in expected if seen[pair]),
        missing=sorted(pair for pair in expected if not seen[pair]),
        duplicates={pair: n for pair, n in sorted(seen.items()) if n > 1},
        reordered=reordered,
        strays=strays,
        last_post_at=max((p.time for p in posts), default=None),
    )
