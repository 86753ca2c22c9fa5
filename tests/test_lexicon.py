"""The lexicon both search and subscriptions use: synonyms as packaged data,
stopwords inside synonym phrases, and the prefix rules of the query builder."""

from __future__ import annotations

import tomllib
from pathlib import Path

from bot.lexicon import SynonymIndex, default_synonyms, parse_synonyms, synonym_groups, tokens
from bot.models import Item
from bot.search import parse_query
from bot.subscriptions import TopicMatcher, item_stems

ROOT = Path(__file__).resolve().parents[1]


def test_the_synonyms_file_is_package_data() -> None:
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "synonyms.txt" in conf["tool"]["setuptools"]["package-data"]["bot"]
    assert (ROOT / "bot" / "synonyms.txt").is_file()


def test_default_synonyms_hold_the_general_equivalences() -> None:
    groups = synonym_groups(None)

    def together(*words: str) -> bool:
        phrases = {tuple(tokens(w)) for w in words}
        return any(phrases <= g for g in groups)

    assert together("postgres", "postgresql", "pg")
    assert together("tls", "ssl") and together("k8s", "kubernetes") and together("db", "database")
    assert together("js", "javascript") and together("http2", "http/2")
    assert not together("kafka", "message queue")  # a topic is not its examples
    # the groups are disjoint: one phrase, one group
    seen: set[tuple[str, ...]] = set()
    for g in groups:
        assert not (g & seen)
        seen |= g


def test_parse_synonyms_reads_lines_commas_and_comments() -> None:
    assert parse_synonyms("# c\npg, postgres # the db\n\nsingle\nk8s , kubernetes\n") == {
        "pg": ("postgres",), "k8s": ("kubernetes",)}
    assert default_synonyms()["postgres"] == ("postgresql", "pg")


def test_a_synonym_phrase_with_a_stopword_is_found_as_typed() -> None:
    # The query drops "on"; the phrase "copy on write" must still be one term.
    query = parse_query("copy on write")
    assert len(query.terms) == 1 and ("cow",) in query.terms[0].alternatives
    assert ("copy", "on", "write") in query.terms[0].alternatives


def test_short_tokens_are_whole_words_and_longer_last_words_prefixes() -> None:
    assert not parse_query("tls").terms[-1].prefix or len(parse_query("tls").terms[-1].alternatives) > 1
    assert not parse_query("ech").terms[-1].prefix
    assert not parse_query("mvc").terms[-1].prefix
    assert parse_query("kafk").terms[-1].prefix
    assert parse_query("kafk").exact().terms[-1].prefix is False


def test_subscriptions_and_search_share_one_lexicon() -> None:
    item = Item(title="PostgreSQL MVCC", guid="g", summary="Copy-on-write pages and SSL.")
    stems = item_stems(item)
    for topic in ("postgres", "pg mvcc", "cow", "tls", "copy on write"):
        assert TopicMatcher(topic).matches(stems), topic
    assert not TopicMatcher("kafka").matches(stems)
    assert TopicMatcher("pg", SynonymIndex({})).matches(stems) is False  # synonyms can be replaced
