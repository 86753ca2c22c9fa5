"""Words: how text becomes tokens, which words carry no topic, the suffix
stemmer, and the synonym groups. Pure, and imported by both ``bot.search``
(queries) and ``bot.subscriptions`` (topics), so the two agree on what a word
is without importing each other.

The synonyms are data (``bot/synonyms.txt``, packaged with the code): general
equivalences of the domain (an abbreviation and its spelled-out form, two
names of one thing), one group per line. They are not topic expansions: a
line never says "kafka" means "message queue", because a query for the
broader term would then find every episode naming one of its examples.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from importlib import resources
from typing import Mapping, Sequence

MAX_TOKEN_LEN = 64

# Words that carry no topic in chat phrasings ("episodes about the kafka").
STOPWORDS = frozenset(
    "a an and any anything are about as at be by can did do does for from has have he how i in is it me "
    "my of on or show something that the there this to vs versus was what whats which with you your".split()
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


def stem(word: str) -> str:
    """A light suffix stemmer (plurals, -ing, -ed): SQLite's porter is not
    reachable from Python, so both sides of a Python-side match use this."""
    for suffix, replacement in (("sses", "ss"), ("ies", "y"), ("xes", "x"), ("ches", "ch"),
                                ("shes", "sh"), ("ing", ""), ("ed", ""), ("es", "e"), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                return word
            return word[: len(word) - len(suffix)] + replacement
    return word


Phrase = tuple[str, ...]


def parse_synonyms(text: str) -> dict[str, tuple[str, ...]]:
    """The synonyms file: one group per line, equivalents separated by commas,
    '#' starts a comment. Returns {first: (the others)}."""
    out: dict[str, tuple[str, ...]] = {}
    for line in text.splitlines():
        words = [w.strip() for w in line.split("#", 1)[0].split(",")]
        words = [w for w in words if w]
        if len(words) >= 2:
            out[words[0]] = (*out.get(words[0], ()), *words[1:])
    return out


@lru_cache(maxsize=1)
def default_synonyms() -> Mapping[str, tuple[str, ...]]:
    """bot/synonyms.txt, read once (through importlib.resources, so an
    installed wheel finds it as well as a checkout)."""
    return parse_synonyms(resources.files("bot").joinpath("synonyms.txt").read_text(encoding="utf-8"))


def synonym_groups(synonyms: Mapping[str, Sequence[str]] | None) -> list[frozenset[Phrase]]:
    """Merge a {term: [equivalents]} mapping into disjoint groups of phrases
    (transitively: postgres~pg and pg~postgresql make one group)."""
    groups: list[set[Phrase]] = []
    for key, values in (default_synonyms() if synonyms is None else synonyms).items():
        phrases = {p for p in (tuple(tokens(v)) for v in [key, *values]) if p}
        if len(phrases) < 2:
            continue
        overlapping = [g for g in groups if g & phrases]
        for g in overlapping:
            phrases |= g
            groups.remove(g)
        groups.append(phrases)
    return [frozenset(g) for g in groups]


def content_words(phrase: Phrase) -> Phrase:
    """A phrase as a query sees it: without its stopwords ("copy on write" is
    typed, and parsed, as "copy write")."""
    return tuple(w for w in phrase if w not in STOPWORDS) or phrase


class SynonymIndex:
    """Finds synonym phrases in a query's content words, longest first."""

    def __init__(self, synonyms: Mapping[str, Sequence[str]] | None = None) -> None:
        self._by_phrase: dict[Phrase, frozenset[Phrase]] = {}
        for group in synonym_groups(synonyms):
            for phrase in group:
                self._by_phrase[phrase] = group
                # A query drops stopwords before looking up synonyms.
                self._by_phrase.setdefault(content_words(phrase), group)
        self._max_len = max((len(p) for p in self._by_phrase), default=1)

    def match(self, words: Sequence[str], start: int) -> tuple[Phrase, frozenset[Phrase]] | None:
        for length in range(min(self._max_len, len(words) - start), 0, -1):
            phrase = tuple(words[start:start + length])
            group = self._by_phrase.get(phrase)
            if group is not None:
                return phrase, group
        return None

    def group(self, word: str) -> frozenset[Phrase] | None:
        return self._by_phrase.get((word,))


def group_words(content: Sequence[str], index: SynonymIndex, max_terms: int) -> tuple[list[tuple[Phrase, frozenset[Phrase]]], int]:
    """Content words (stopwords already dropped) -> (the phrase as typed, all
    its equivalents) per distinct term, at most ``max_terms``; and how many
    words that consumed. A synonym phrase is one term; a repeated term
    (or a synonym of an earlier one) is dropped."""
    out: list[tuple[Phrase, frozenset[Phrase]]] = []
    seen: set[frozenset[Phrase]] = set()
    i = 0
    while i < len(content) and len(out) < max_terms:
        hit = index.match(content, i)
        if hit is not None:
            phrase, group = hit
            i += len(phrase)
        else:
            phrase = (content[i],)
            group = frozenset({phrase})
            i += 1
        if group in seen:
            continue
        seen.add(group)
        out.append((phrase, group))
    return out, i
