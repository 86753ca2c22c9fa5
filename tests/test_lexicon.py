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


from hypothesis import given, settings, strategies as st  # noqa: E402

from bot.search import MAX_TERMS, MIN_PREFIX_LEN  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=500) | st.lists(st.sampled_from(
    ["postgres", "pg", "tls", "ssl", "copy", "on", "write", "kafka", "ech", "http", "2", "the", "k8s", "x"]),
    max_size=12).map(" ".join))
def test_the_query_builder_rules_hold_for_any_text(text: str) -> None:
    query = parse_query(text)
    typed = set(tokens(text[:4000]))
    assert len(query.terms) <= MAX_TERMS and len(query.words) == len(query.terms)
    for term in query.terms:
        assert term.alternatives and all(p and all(w for w in p) for p in term.alternatives)
        assert set(term.alternatives[0]) <= typed  # the first alternative is what was typed
    prefixed = [t for t in query.terms if t.prefix]
    assert prefixed == [] or prefixed == [query.terms[-1]]  # only the last term may be a prefix...
    for t in prefixed:  # ...a single word of at least MIN_PREFIX_LEN letters
        assert len(t.alternatives) == 1 and len(t.alternatives[0]) == 1
        assert len(t.alternatives[0][0]) >= MIN_PREFIX_LEN
    assert not query.exact().has_prefix and query.exact().words == query.words
    # a term never repeats, synonyms included
    assert len({frozenset(t.alternatives) for t in query.terms}) == len(query.terms)
