"""Search: member text -> a ``Query``, the backend-neutral query object.

Pure (no I/O): ``parse_query`` turns anything a member types into terms of
word tokens (each term: alternatives from the synonyms, maybe a prefix) and
nothing else, so member input never reaches a database as query syntax.
Each storage backend renders a Query in its own dialect (FTS5 MATCH for
SQLite, tsquery for PostgreSQL), ranks title above chapter titles above the
description, breaks near-ties by recency, and keeps a relevance floor in its
own units (``Storage.search``). ``TitleMatcher`` is the shared half of that
floor: a hit whose terms are in the title or a chapter title is relevant.
"""

from __future__ import annotations

from dataclasses import dataclass
from bot.lexicon import (
    MAX_TOKEN_LEN,
    STOPWORDS,
    Phrase,
    SynonymIndex,
    default_synonyms,
    group_words,
    stem,
    synonym_groups,
    tokens,
)

__all__ = [  # the lexicon's names stay importable from here, where callers found them
    "MAX_TOKEN_LEN", "STOPWORDS", "Phrase", "SynonymIndex", "default_synonyms", "synonym_groups", "tokens",
    "Term", "Query", "parse_query", "in_titles", "TitleMatcher",
]

# What one search considers at most (ranked); pages are cut from these.
MAX_CANDIDATES = 200

MAX_TERMS = 8
# Tokens of up to 3 letters (tls, pg, ech, sni) match whole words only: as
# prefixes they find unrelated longer words (ech -> echo, sni -> snippet).
MIN_PREFIX_LEN = 4


@dataclass(frozen=True, slots=True)
class Term:
    """One thing the query must contain: any of ``alternatives`` (phrases)."""

    alternatives: tuple[Phrase, ...]
    prefix: bool = False  # the last word the member typed may be unfinished


@dataclass(frozen=True, slots=True)
class Query:
    terms: tuple[Term, ...]
    words: tuple[str, ...]  # what the member asked for, normalized, for replies
    cut: bool = False  # the member asked for more than a query takes (MAX_TERMS, MAX_TOKEN_LEN)

    @property
    def empty(self) -> bool:
        return not self.terms

    @property
    def has_prefix(self) -> bool:
        return any(t.prefix for t in self.terms)

    def exact(self) -> Query:
        """The same query with every prefix term as a whole word: the hits
        that rank above those matching only through a prefix."""
        return Query(tuple(Term(t.alternatives) for t in self.terms), self.words, self.cut)

    @property
    def text(self) -> str:
        return " ".join(self.words)

    @property
    def echo(self) -> str:
        """The query as a reply quotes it: what was searched, and an
        ellipsis when that is less than what was typed (instead of a quote
        silently cut, mid-word when a word was too long)."""
        return self.text + ("…" if self.cut else "")


_DEFAULT_INDEX = SynonymIndex()

def rank_key(exact: bool, score: float, published_at: float | None, item_id: int
             ) -> tuple[bool, float, bool, float, int]:
    """Sort key (descending) both backends order hits by: hits holding the
    query's words themselves before those matching only through a prefix,
    then the score rounded by the backend to its near-tie precision, then
    the newest (undated last), then the newest id.

    (A relative near-tie, 2-20% geometric buckets, was tried: it changed no
    judged-set score and made the backends disagree on the catalogue tests,
    whose scores are not proportional across the two.)"""
    return (exact, score, published_at is not None, published_at or 0.0, item_id)


def parse_query(text: str, synonyms: SynonymIndex | None = None, *, prefix_last: bool = True) -> Query:
    """Any text -> a Query (possibly empty). Never raises.

    Stopwords are dropped (a query of only stopwords is empty: it would
    match everything, which is noise, not an answer); a synonym
    phrase becomes one term with every alternative; the last plain word is a
    prefix ("kafk" finds Kafka) when it is long enough not to match half
    the catalogue."""
    index = synonyms or _DEFAULT_INDEX
    words = tokens(text[:4000])
    content = [w for w in words if w not in STOPWORDS]
    grouped, used = group_words(content, index, MAX_TERMS)
    terms: list[Term] = []
    shown: list[str] = []
    for phrase, alternatives in grouped:
        # What the member typed first (replies echo it), then its equivalents.
        terms.append(Term((phrase, *sorted(alternatives - {phrase}))))
        shown.append(" ".join(phrase))
    if prefix_last and terms:
        last = terms[-1]
        word = last.alternatives[0][0] if len(last.alternatives) == 1 and len(last.alternatives[0]) == 1 else ""
        if len(word) >= MIN_PREFIX_LEN and not _finished(word):
            # Backends rank the documents holding the word itself above those
            # with only longer words it starts ("grpc" before "grpcurl").
            terms[-1] = Term(last.alternatives, prefix=True)
    cut = used < len(content) or any(len(w) >= MAX_TOKEN_LEN for w in content[:used])
    return Query(tuple(terms), tuple(shown), cut)


def _finished(word: str) -> bool:
    """Whether a last word ends in an inflection, so the member finished it:
    a plain plural ("funds", not "postgres", "redis") or -ing / -ed. Matched
    whole, its stem still finds its other forms; as a prefix its porter
    stem ("fund*") finds unrelated longer words ("fundamentals":
    bench_quality's "index funds")."""
    if stem(word) == word:
        return False
    return word.endswith(("ing", "ed")) or (word.endswith("s") and not word.endswith(("ss", "us", "is", "es")))


def in_titles(query: Query, titles: str) -> bool:
    """Whether any query term occurs in ``titles`` (an item's title and
    chapter titles): the "strong" half of the relevance floor. Words are
    compared after the light suffix stemmer of bot.lexicon (SQLite's
    porter is not reachable from Python); a miss only means the hit must pass
    the score floor instead."""
    return TitleMatcher(query)(titles)


class TitleMatcher:
    """``in_titles`` for one query, compiled once: a search checks up to
    MAX_CANDIDATES titles against the same query, so the query's stems are
    worked out once and each title word is stemmed through a cache."""

    __slots__ = ("_words", "_prefixes", "_phrases")

    def __init__(self, query: Query) -> None:
        words: set[str] = set()
        prefixes: list[str] = []
        phrases: list[tuple[str, ...]] = []
        for term in query.terms:
            for phrase in term.alternatives:
                if term.prefix:
                    # Title words are compared as stems, so the prefix is too
                    # ("sharding" must find the stem "shard").
                    root = _stem(phrase[0])
                    prefixes.append(root[:-1] if len(root) > 3 else root)
                elif len(phrase) == 1:
                    words.add(_stem(phrase[0]))
                else:
                    phrases.append(tuple(_stem(w) for w in phrase))
        self._words = frozenset(words)
        self._prefixes = tuple(prefixes)
        self._phrases = tuple(phrases)

    def __call__(self, titles: str) -> bool:
        found = tokens(titles)
        cached = _STEMS.get
        if self._phrases:  # phrases need the words in order
            words = [cached(w) or _stem(w) for w in found]
            present = set(words)
        else:
            present = {cached(w) or _stem(w) for w in set(found)}
        if self._prefixes and any(w.startswith(self._prefixes) for w in present):
            return True
        if not self._words.isdisjoint(present):
            return True
        for stems in self._phrases:
            n = len(stems)
            if any(tuple(words[i:i + n]) == stems for i in range(len(words) - n + 1)):
                return True
        return False


_STEMS: dict[str, str] = {}  # word -> stem, for the words titles are made of
_MAX_STEMS = 1 << 16


def _stem(word: str) -> str:
    found = _STEMS.get(word)
    if found is None:
        found = stem(word)
        if len(_STEMS) < _MAX_STEMS:
            _STEMS[word] = found
    return found
