"""One handler feedparser lacks: ``<podcast:episode>`` (Podcasting 2.0).

feedparser does not know the podcast namespace, so it treats the element
as unknown, and an unknown element with attributes keeps only them:
``<podcast:episode display="Ep. 140">140</podcast:episode>`` (the spec's own
example shape) would lose its number. The handler below keeps the text
whatever the attributes, under the key the element has without them
(``podcast_episode``). It is added to feedparser's parser class once, on
import, before the fast reader reads feedparser's handler table
(bot.sources.fastfeed), which replays it like any other.
"""

from __future__ import annotations

from typing import Any

from feedparser.mixin import _FeedParserMixin


def _start_podcast_episode(self: Any, attrs_d: dict[str, str]) -> None:
    self.push("podcast_episode", 1)


def _end_podcast_episode(self: Any) -> None:
    self.pop("podcast_episode")


def install() -> None:
    # Only when absent: a future feedparser with its own handler wins.
    if not hasattr(_FeedParserMixin, "_start_podcast_episode"):
        setattr(_FeedParserMixin, "_start_podcast_episode", _start_podcast_episode)
        setattr(_FeedParserMixin, "_end_podcast_episode", _end_podcast_episode)


install()
