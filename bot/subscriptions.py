"""Personal subscriptions: which members want to hear about a new item. Pure.

A topic matches an item the way a search would: the same tokenizer, stopwords
and synonyms (``bot.lexicon``) (every word of the topic, or one of its
synonyms, must appear in the title, a chapter title or the description).
SQLite's porter stemmer is not available in Python, so both sides go through
the same small suffix stemmer instead (``bot.lexicon.stem``) (plurals, -ing, -ed): "page fault"
matches "Page Faults", "index" matches "indexes".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

from bot.models import Item, Platform

if TYPE_CHECKING:
    from bot.intents import Subscription
from bot.lexicon import STOPWORDS, Phrase, SynonymIndex, group_words, stem, tokens

MAX_TOPIC_CHARS = 100
MAX_TOPIC_TERMS = 8  # as a search query takes (bot.search.MAX_TERMS)


_DEFAULT: list[SynonymIndex] = []


def _default_index() -> SynonymIndex:
    if not _DEFAULT:
        _DEFAULT.append(SynonymIndex())
    return _DEFAULT[0]


def _stems(phrase: Phrase) -> tuple[str, ...]:
    return tuple(stem(w) for w in phrase)


def normalize_topic(topic: str) -> str:
    """What is stored and compared: the topic's words, lower case."""
    return " ".join(tokens(topic[:MAX_TOPIC_CHARS]))


class TopicMatcher:
    """Compiled topics; ``matches(text)`` tests one item's text."""

    def __init__(self, topic: str, synonyms: SynonymIndex | None = None) -> None:
        words = [w for w in tokens(topic[:MAX_TOPIC_CHARS]) if w not in STOPWORDS]
        grouped, _ = group_words(words, synonyms or _default_index(), MAX_TOPIC_TERMS)
        self.terms = [[_stems(p) for p in sorted(group)] for _, group in grouped]

    @property
    def empty(self) -> bool:
        return not self.terms

    def matches(self, stems: Sequence[str], stem_set: set[str] | None = None) -> bool:
        """``stems``: the item's word stems in order (phrases need the order);
        ``stem_set``: the same as a set, for the common one-word lookups."""
        if not self.terms:
            return False
        lookup = set(stems) if stem_set is None else stem_set
        return all(any(_contains(stems, lookup, alt) for alt in term) for term in self.terms)


def _contains(stems: Sequence[str], lookup: set[str], needle: tuple[str, ...]) -> bool:
    if len(needle) == 1:
        return needle[0] in lookup
    if needle[0] not in lookup:
        return False
    n = len(needle)
    return any(tuple(stems[i:i + n]) == needle for i in range(len(stems) - n + 1))


def item_stems(item: Item) -> list[str]:
    text = "\n".join([item.title, *(c.title for c in item.chapters), item.summary])
    return [stem(w) for w in tokens(text)]


def match_subscriptions(
    items: Sequence[Item],
    subs: Sequence[Subscription],
    synonyms: Mapping[str, Sequence[str]] | None = None,
) -> list[tuple[int, Platform, str]]:
    """(item index, platform, user id) for every member with a topic matching
    a new item: at most one per item per member however many of their topics
    match. ``synonyms`` defaults to bot/synonyms.txt."""
    index = SynonymIndex(synonyms)
    matchers: dict[str, TopicMatcher] = {}
    out: list[tuple[int, Platform, str]] = []
    for i, item in enumerate(items):
        stems = item_stems(item)
        stem_set = set(stems)
        notified: set[tuple[Platform, str]] = set()
        for sub in subs:
            member, topic = (sub.platform, sub.user_id), sub.topic
            if member in notified:
                continue
            matcher = matchers.get(topic)
            if matcher is None:
                matcher = matchers[topic] = TopicMatcher(topic, index)
            if matcher.matches(stems, stem_set):
                notified.add(member)
                out.append((i, member[0], member[1]))
    return out
