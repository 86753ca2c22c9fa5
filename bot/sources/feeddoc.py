"""What an XML reader hands the normaliser: one seam for both readers.

Both readers (``bot.sources.fastfeed`` on lxml, and feedparser itself) fill
``feed`` and ``entries`` with feedparser's dictionary shape: the keys and
value types of ``feedparser.FeedParserDict`` (``title``, ``title_detail``,
``summary``, ``content``, ``links``, ``published_parsed``, ...). Keeping
feedparser's shape rather than inventing a new one is deliberate: the
normaliser in ``bot.sources.feeds`` has one set of rules, written once
against that shape, and the differential test can compare the readers on
exactly what the normaliser sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence


@dataclass(frozen=True, slots=True)
class FeedDoc:
    version: str  # feedparser's names: "rss20", "atom10", ... ("" when not a feed)
    feed: Mapping[str, Any]
    entries: Sequence[Mapping[str, Any]]
    bozo: bool = False  # the XML was not well formed (feedparser fell back to its loose parser)
    bozo_exception: BaseException | None = field(default=None, compare=False)
    reader: str = "feedparser"  # which reader made it: "lxml" or "feedparser" (debug logs, tests)
