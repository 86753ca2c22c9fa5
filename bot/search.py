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

import re
import unicodedata
from dataclasses import dataclass
from typing import Mapping, Sequence

# Each key is equivalent to each of its values (and they to each other).
# A value with a '/' is a phrase: the FTS tokenizer splits "HTTP/2" into
# "http" "2", so "http/2" must be searched as the phrase "http 2".
DEFAULT_SYNONYMS: Mapping[str, tuple[str, ...]] = {
    "postgres": ("postgresql", "pg"),
    "http2": ("http/2",),
    "http3": ("http/3",),
    "k8s": ("kubernetes",),
    "tls": ("ssl",),
    "db": ("database",),
}

# What one search considers at most (ranked); pages are cut from these.
MAX_CANDIDATES = 200

MAX_TERMS = 8
MAX_TOKEN_LEN = 64
MIN_PREFIX_LEN = 3

# Words that carry no topic in chat phrasings ("episodes about the kafka").
STOPWORDS = frozenset(
    "a an and any anything are about as at be by do does for from how i in is it me "
    "my of on or show something that the this to what whats which with you your".split()
)

# unicode61 treats letters and digits as token characters and everything
# else (punctuation, '_', symbols, emoji) as separators; mirror it.
_TOKEN = re.compile(r"[^\W_]+")


# For ASCII text the same split without the regex (several times faster:
# a search checks up to MAX_CANDIDATES titles): NFKC leaves ASCII as it is,
# casefold() of ASCII is lower(), and [^\W_] on ASCII is [a-z0-9] once lowered.
_ASCII_SEPARATORS = bytes(b if chr(b).isascii() and chr(b) in "abcdefghijklmnopqrstuvwxyz0123456789"
                          else 0x20 for b in range(256))


def tokens(text: str) -> list[str]:
    """Text -> lower-case word tokens, as the FTS tokenizer would split them."""
    if text.isascii():
        found = text.lower().encode("ascii").translate(_ASCII_SEPARATORS).decode("ascii").split()
    else:
        found = _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())
    if max(map(len, found), default=0) <= MAX_TOKEN_LEN:
        return found
    return [t[:MAX_TOKEN_LEN] for t in found]


Phrase = tuple[str, ...]


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
    def text(self) -> str:
        return " ".join(self.words)

    @property
    def echo(self) -> str:
        """The query as a reply quotes it: what was searched, and an
        ellipsis when that is less than what was typed (instead of a quote
        silently cut, mid-word when a word was too long)."""
        return self.text + ("…" if self.cut else "")


def synonym_groups(synonyms: Mapping[str, Sequence[str]] | None) -> list[frozenset[Phrase]]:
    """Merge a {term: [equivalents]} mapping into disjoint groups of phrases
    (transitively: postgres~pg and pg~postgresql make one group)."""
    groups: list[set[Phrase]] = []
    for key, values in (DEFAULT_SYNONYMS if synonyms is None else synonyms).items():
        phrases = {p for p in (tuple(tokens(v)) for v in [key, *values]) if p}
        if len(phrases) < 2:
            continue
        overlapping = [g for g in groups if g & phrases]
        for g in overlapping:
            phrases |= g
            groups.remove(g)
        groups.append(phrases)
    return [frozenset(g) for g in groups]


class SynonymIndex:
    """Finds synonym phrases in a token list, longest first."""

    def __init__(self, synonyms: Mapping[str, Sequence[str]] | None = None) -> None:
        self._by_phrase: dict[Phrase, frozenset[Phrase]] = {}
        for group in synonym_groups(synonyms):
            for phrase in group:
                self._by_phrase[phrase] = group
        self._max_len = max((len(p) for p in self._by_phrase), default=1)

    def match(self, words: Sequence[str], start: int) -> tuple[Phrase, frozenset[Phrase]] | None:
        for length in range(min(self._max_len, len(words) - start), 0, -1):
            phrase = tuple(words[start:start + length])
            group = self._by_phrase.get(phrase)
            if group is not None:
                return phrase, group
        return None


_DEFAULT_INDEX = SynonymIndex()


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
    terms: list[Term] = []
    shown: list[str] = []
    seen: set[frozenset[Phrase]] = set()
    i = 0
    while i < len(content) and len(terms) < MAX_TERMS:
        hit = index.match(content, i)
        if hit is not None:
            phrase, group = hit
            alternatives = frozenset(group)
            i += len(phrase)
        else:
            phrase = (content[i],)
            alternatives = frozenset({phrase})
            i += 1
        if alternatives in seen:
            continue
        seen.add(alternatives)
        ordered = (phrase, *sorted(alternatives - {phrase}))
        terms.append(Term(ordered))
        shown.append(" ".join(phrase))
    if prefix_last and terms:
        last = terms[-1]
        if len(last.alternatives) == 1 and len(last.alternatives[0]) == 1 \
                and len(last.alternatives[0][0]) >= MIN_PREFIX_LEN:
            terms[-1] = Term(last.alternatives, prefix=True)
    cut = i < len(content) or any(len(w) >= MAX_TOKEN_LEN for w in content[:i])
    return Query(tuple(terms), tuple(shown), cut)


def in_titles(query: Query, titles: str) -> bool:
    """Whether any query term occurs in ``titles`` (an item's title and
    chapter titles): the "strong" half of the relevance floor. Words are
    compared after the light suffix stemmer of bot.subscriptions (SQLite's
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
                    prefixes.append(phrase[0][:-1] if len(phrase[0]) > 3 else phrase[0])
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
    from bot.subscriptions import stem

    found = _STEMS.get(word)
    if found is None:
        found = stem(word)
        if len(_STEMS) < _MAX_STEMS:
            _STEMS[word] = found
    return found
