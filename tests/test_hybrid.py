"""Semantic search (bot/hybrid.py) with the real model: it loads offline from
its wheel, once; a model that cannot load leaves search lexical with one log
line; the soft-AND finds what a missing word means without letting noise in;
RRF is what the formula says; vectors are computed off the loop and stored."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot import hybrid
from bot.clock import FrozenClock
from bot.commands import Commands
from bot.config import parse_config
from bot.errors import ConfigError
from bot.hybrid import (
    DIM, Candidate, SemanticModel, embed_pending, from_bytes, fuse, lexical_order, load_wordllama, soft_and,
    to_bytes,
)
from tests.backends import Target, open_target
from tests.catalog_helpers import MEMBER
from tests.judged import store_catalogue

NOW = __import__("datetime").datetime(2026, 6, 20, 12, tzinfo=__import__("datetime").timezone.utc)


@pytest.fixture(scope="module")
def model() -> SemanticModel:
    semantic = SemanticModel()
    assert semantic.get() is not None
    return semantic


def test_the_model_loads_offline_from_its_wheel(monkeypatch: pytest.MonkeyPatch) -> None:
    # No network: the hub and its HTTP client refuse; the load must not need them.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    embedder = load_wordllama()
    vectors = embedder.embed(["postgres connection pooling", "kafka"])
    assert vectors.shape == (2, DIM) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, DIM)


def test_pooling_over_cached_words_equals_the_model_on_lower_case_text() -> None:
    embedder = load_wordllama()
    texts = ["kafka", "postgres connection pooling", "The Journey of a Request to the Backend", "", "!!"]
    ours = embedder.embed(texts)
    # A model of its own: the embedder's tokenizer no longer pads, which the model's embed needs.
    import wordllama
    from wordllama import WordLlama

    model = WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)
    theirs = model.embed([t.lower() for t in texts[:3]], norm=True)
    assert np.allclose((ours[:3] * theirs).sum(axis=1), 1.0, atol=1e-4)
    assert not ours[3].any() and not ours[4].any()  # no words: a zero vector, never NaN


def test_the_batched_fast_path_equals_the_reference_pooling() -> None:
    from bot.hybrid import batch_words
    from bot.lexicon import MAX_TOKEN_LEN, tokens
    from tests.judged import load_catalogue

    embedder = load_wordllama()
    texts = [hybrid.item_document(e.item) for e in load_catalogue()]
    texts += ["", "!!", "kafka", "x" * (MAX_TOKEN_LEN + 10) + " long", "two  spaces\nand lines"]
    fast = embedder.embed(texts)  # type: ignore[attr-defined]
    reference = embedder.embed_reference(texts)  # type: ignore[attr-defined]
    assert fast.shape == reference.shape and np.abs(fast - reference).max() < 1e-6
    words, lengths = batch_words(texts)
    assert words == [w for t in texts for w in tokens(t)] and list(lengths) == [len(tokens(t)) for t in texts]
    # not ASCII, or a text holding the batch's marker: text by text, the same tokens
    odd = ["Café Ünïcode crème", "a\x01b", "plain"]
    words, lengths = batch_words(odd)
    assert words == [w for t in odd for w in tokens(t)] and list(lengths) == [len(tokens(t)) for t in odd]
    assert np.abs(embedder.embed(odd) - embedder.embed_reference(odd)).max() < 1e-6  # type: ignore[attr-defined]
    # more texts than one chunk holds: pooled chunk by chunk, the same vectors
    many = texts * (hybrid.CHUNK_TEXTS // len(texts) + 2)
    assert len(hybrid.chunk_bounds(many)) > 1
    assert np.abs(embedder.embed(many) - embedder.embed_reference(many)).max() < 1e-6  # type: ignore[attr-defined]


def test_short_texts_are_gathered_and_pool_as_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    """Titles and chapter titles (a few words each) take the gathered path,
    empty and non-ASCII ones included; mixed with long texts in one chunk
    they take the count-matrix path: the same vectors either way."""
    from tests.judged import load_catalogue

    embedder = load_wordllama()
    catalogue = load_catalogue()
    short = [t for e in catalogue for t in (e.item.title, *(c.title for c in e.item.chapters))]
    short += ["", "!!", "Ünïcode chapter", "Q&A", "x"]
    words = [w for t in short for w in hybrid.ascii_words([t]) or []]
    assert len(words) <= hybrid.SHORT_WORDS * len(short) and len(hybrid.chunk_bounds(short)) == 1
    gathered: list[int] = []
    sum_runs = hybrid.sum_runs

    def counted(table: np.ndarray, ids: np.ndarray, lengths: np.ndarray, out: np.ndarray) -> None:
        if table is embedder._sums:  # type: ignore[attr-defined]  # pooling, not learning a word's tokens
            gathered.append(len(out))
        sum_runs(table, ids, lengths, out)

    monkeypatch.setattr(hybrid, "sum_runs", counted)
    reference = embedder.embed_reference(short)  # type: ignore[attr-defined]
    assert np.abs(embedder.embed(short) - reference).max() < 1e-6 and gathered == [len(short)]
    ascii_short = [t for t in short if t.isascii()]
    assert np.abs(embedder.embed(ascii_short) - embedder.embed_reference(ascii_short)).max() < 1e-6  # type: ignore[attr-defined]
    assert gathered == [len(short), len(ascii_short)]
    mixed = short[:20] + [hybrid.item_document(e.item) for e in catalogue[:3]]
    assert np.abs(embedder.embed(mixed) - embedder.embed_reference(mixed)).max() < 1e-6  # type: ignore[attr-defined]
    assert len(gathered) == 2  # the count matrix

def test_a_full_word_cache_starts_over_and_pools_the_same() -> None:
    """Past MAX_WORDS the cache is cleared (memory stays bounded); the
    vectors do not change, and the texts' separator keeps its empty row."""
    embedder = load_wordllama()
    embedder.MAX_WORDS = 60  # type: ignore[attr-defined]
    texts = [f"kafka partitions {w} consumer groups" for w in ("replication", "offsets", "brokers")] * 3
    texts += ["postgres vacuum and the visibility map", "tls handshake latency", ""]
    first = embedder.embed(texts)
    for r in range(4):  # each round brings 30 new words: the cache is cleared more than once
        fillers = [f"round{r}word{n}" for n in range(30)]
        again = embedder.embed(texts + fillers)[:len(texts)]
        assert np.abs(again - first).max() < 1e-6
        assert len(embedder._index) <= 60  # type: ignore[attr-defined]
    assert np.abs(first - embedder.embed_reference(texts)).max() < 1e-6  # type: ignore[attr-defined]
    assert "round0word0" not in embedder._index  # type: ignore[attr-defined]
    assert not embedder._sums[hybrid.MARKER_ROW].any()  # type: ignore[attr-defined]


def test_whole_words_are_their_own_token_and_the_rest_are_tokenized() -> None:
    """The whole-word table holds only words the tokenizer encodes alone to
    that one token (every entry checked), and whatever way a word is
    learned, its cached sum is its tokens' vectors summed, as a separately
    loaded model's tokenizer gives them for the word on its own."""
    import wordllama
    from wordllama import WordLlama

    from bot.hybrid import whole_word_tokens
    from bot.lexicon import MAX_TOKEN_LEN, tokens
    from tests.judged import load_catalogue

    model = WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)
    model.tokenizer.no_padding()
    table = whole_word_tokens(model.tokenizer)
    assert len(table) > 9_000
    words = sorted(table)
    assert [e.ids for e in model.tokenizer.encode_batch(words, add_special_tokens=False)] == [[table[w]] for w in words]
    embedder = load_wordllama()
    asked = sorted({w for e in load_catalogue() for w in tokens(hybrid.item_document(e.item))})
    asked += ["café", "ünïcode", "2024", "v7", "x" * (MAX_TOKEN_LEN + 6)]
    assert 0 < sum(w in table for w in asked) < len(asked)  # both ways are exercised
    embedder._learn(asked)  # type: ignore[attr-defined]
    matrix = np.asarray(model.embedding, dtype=np.float32)
    for word in asked:
        ids = model.tokenizer.encode(word[:MAX_TOKEN_LEN], add_special_tokens=False).ids
        row = embedder._sums[embedder._index[word]]  # type: ignore[attr-defined]
        assert np.abs(row - matrix[ids].sum(axis=0)).max() < 1e-5, word


def test_a_tokenizer_that_does_not_encode_its_whole_words_alone_gets_no_table(
        caplog: pytest.LogCaptureFixture) -> None:
    from bot.hybrid import whole_word_tokens

    class Encoded:
        def __init__(self, ids: list[int]) -> None:
            self.ids = ids

    class Splitting:  # a tokenizer whose "\u2581kafka" token is not what "kafka" encodes to
        def get_vocab(self) -> dict[str, int]:
            return {"\u2581kafka": 7, "\u2581lag": 8, "kaf": 3, "ka": 4}

        def encode_batch(self, words: list[str], add_special_tokens: bool = False) -> list[Encoded]:
            return [Encoded([3, 4]) for _ in words]

    with caplog.at_level(logging.INFO, logger="bot.hybrid"):
        assert whole_word_tokens(Splitting()) == {}
    assert "every new word is tokenized" in caplog.text


def test_a_cold_cache_learns_a_calls_new_words_in_one_tokenizer_call() -> None:
    """The first chunk with a word the cache lacks learns the new words of
    the chunks after it too: one tokenizer call for the whole call, then the
    same vectors as the reference pooling."""
    from tests.judged import load_catalogue

    embedder = load_wordllama()
    texts = [hybrid.item_document(e.item) for e in load_catalogue()]
    assert len(hybrid.chunk_bounds(texts)) > 2
    calls: list[int] = []
    tokenize = embedder._token_sums  # type: ignore[attr-defined]

    def counted(words: list[str]) -> np.ndarray:
        calls.append(len(words))
        return tokenize(words)

    embedder._token_sums = counted  # type: ignore[attr-defined]
    fast = embedder.embed(texts)
    assert len(calls) == 1 and calls[0] > 100
    assert np.abs(fast - embedder.embed_reference(texts)).max() < 1e-6  # type: ignore[attr-defined]
    embedder.embed(texts)
    assert len(calls) == 1  # warm: nothing more to learn


def test_chunks_cover_every_text_once_within_both_limits() -> None:
    texts = ["a" * 10, "b" * 10, "c" * 25, "d" * 5, "", "e" * 3, "f" * 40]
    bounds = hybrid.chunk_bounds(texts, max_chars=20, max_texts=2)
    assert [i for start, stop in bounds for i in range(start, stop)] == list(range(len(texts)))
    for start, stop in bounds:
        chunk = texts[start:stop]
        assert len(chunk) <= 2
        assert sum(map(len, chunk)) <= 20 or len(chunk) == 1  # only a text longer than the limit stands alone
    assert hybrid.chunk_bounds([]) == []


@given(st.lists(st.integers(min_value=0, max_value=50), max_size=60), st.integers(1, 80), st.integers(1, 8))
def test_size_bounds_is_the_plain_greedy_loop(sizes: list[int], max_size: int, max_count: int) -> None:
    """The bisecting chunker equals the obvious loop: add entries while they
    fit both limits, a chunk always takes at least one."""
    expected, start, total = [], 0, 0
    for n, size in enumerate(sizes):
        if n > start and (total + size > max_size or n - start >= max_count):
            expected.append((start, n))
            start, total = n, 0
        total += size
    if start < len(sizes):
        expected.append((start, len(sizes)))
    assert hybrid.size_bounds(sizes, max_size, max_count) == expected


def test_embedding_groups_split_a_batch_by_its_text() -> None:
    from bot.storage.records import VectorJob

    posts = [VectorJob(n, "h", "t" * 10, "s" * 90) for n in range(10)]  # 100 characters each
    episode = VectorJob(99, "h", "title", "s" * 500, ("chapter " * 10,) * 10)  # ~1,300 characters
    assert hybrid.job_groups(posts, max_chars=300) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert hybrid.job_groups([episode, *posts[:2]], max_chars=300) == [(0, 1), (1, 3)]  # a big one alone
    assert hybrid.job_groups([]) == []


class _CountingEmbedder:
    """Zero sums, one call recorded per pooling call; the first call waits
    for ``release`` once ``hold`` is set (the test's handle on the worker thread)."""

    def __init__(self, hold: bool = False) -> None:
        self.calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()
        self.hold = hold

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.sums(texts)

    def sums(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        if self.hold and self.calls == 1:
            self.entered.set()
            self.release.wait(timeout=30)
        return np.zeros((len(texts), hybrid.DIM), dtype=np.float32)


async def test_embedding_off_the_loop_runs_every_group_in_order() -> None:
    from bot.storage.records import VectorJob

    jobs = [VectorJob(n, f"h{n}", "t" * 10, "s" * 90, ("c",) * (n % 3)) for n in range(10)]
    embedder = load_wordllama()
    vectors = await hybrid.embed_off_loop(embedder, jobs, pause_s=0)
    assert vectors == hybrid.embed_jobs(embedder, jobs)
    counting = _CountingEmbedder()
    groups = hybrid.job_groups(jobs, max_chars=300)
    assert len(groups) > 1
    original = hybrid.EMBED_GROUP_CHARS
    try:
        hybrid.EMBED_GROUP_CHARS = 300  # several groups, with the running bot's pause between them
        out = await hybrid.embed_off_loop(counting, jobs)  # type: ignore[arg-type]
    finally:
        hybrid.EMBED_GROUP_CHARS = original
    assert counting.calls == 2 * len(groups)  # each group pooled once: its parts, then its summaries
    assert [v.item_id for v in out] == list(range(10)) and [v.chapter_count for v in out] == [n % 3 for n in range(10)]


async def test_a_cancelled_embedding_stops_after_its_current_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cancelling the await (a poll cancelled at shutdown) cannot interrupt
    the thread, but it must not go on through the rest of the batch."""
    from bot.storage.records import VectorJob

    monkeypatch.setattr(hybrid, "EMBED_GROUP_CHARS", 100)
    jobs = [VectorJob(n, "h", "t" * 10, "s" * 90) for n in range(6)]  # six groups of one job
    assert len(hybrid.job_groups(jobs)) == 6
    embedder = _CountingEmbedder(hold=True)
    task = asyncio.create_task(hybrid.embed_off_loop(embedder, jobs, pause_s=0))  # type: ignore[arg-type]
    assert await asyncio.to_thread(embedder.entered.wait, 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    embedder.release.set()
    await asyncio.get_running_loop().shutdown_default_executor()  # the worker thread has returned
    assert embedder.calls == 2  # the first group's two pooling calls, then it stopped


def test_a_model_that_cannot_load_is_one_log_line_and_lexical_search(caplog: pytest.LogCaptureFixture) -> None:
    calls = []

    def broken() -> object:
        calls.append(1)
        raise OSError("weights missing")

    semantic = SemanticModel(loader=broken)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="bot.hybrid"):
        assert semantic.get() is None and semantic.get() is None
        assert asyncio.run(semantic.load()) is None
    assert len(calls) == 1
    lines = [r for r in caplog.records if r.name == "bot.hybrid"]
    assert len(lines) == 1 and "search is lexical only" in lines[0].getMessage()
    assert "weights missing" in lines[0].getMessage()


def test_semantic_off_never_loads_the_model() -> None:
    def never() -> object:
        raise AssertionError("loaded")

    semantic = SemanticModel(enabled=False, loader=never)  # type: ignore[arg-type]
    assert semantic.get() is None and not semantic.ready


def test_the_model_loads_once_across_threads() -> None:
    calls = []

    def slow() -> object:
        calls.append(1)
        return load_wordllama()

    semantic = SemanticModel(loader=slow)  # type: ignore[arg-type]
    threads = [threading.Thread(target=semantic.get) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and semantic.ready


def test_search_semantic_is_a_config_key() -> None:
    assert parse_config({}).search.semantic is True
    assert parse_config({"search": {"semantic": False}}).search.semantic is False
    with pytest.raises(ConfigError, match="search.semantic"):
        parse_config({"search": {"semantic": "no"}})
    with pytest.raises(ConfigError, match="search.threshold"):
        parse_config({"search": {"threshold": 0.3}})


def test_config_example_documents_the_search_section() -> None:
    text = (Path(__file__).resolve().parents[1] / "config.example.toml").read_text(encoding="utf-8")
    assert "[search]" in text and "semantic" in text


# -- pure ranking ------------------------------------------------------------------------

def test_vectors_round_trip_as_bfloat16_bytes_and_come_back_float32() -> None:
    v = (np.arange(DIM, dtype=np.float32) - DIM / 2) / DIM
    data = to_bytes(v)
    back = from_bytes(data)
    assert len(data) == DIM * 2 and back.dtype == np.float32
    assert np.all(np.abs(back - v) <= np.abs(v) * 2 ** -8)  # rounded to 8 significant bits
    assert np.array_equal(from_bytes(to_bytes(back)), back)  # what is stored comes back exactly
    assert not from_bytes(to_bytes(np.zeros(DIM, dtype=np.float32))).any()  # an empty text stays zero
    # the cosine of two normalized vectors moves by far less than the threshold can tell
    rng = np.random.default_rng(7)
    a, b = hybrid.normalized(rng.standard_normal((2, DIM)).astype(np.float32))
    assert abs(float(from_bytes(to_bytes(a)) @ from_bytes(to_bytes(b))) - float(a @ b)) < 2e-3


def test_soft_and_keeps_a_document_whose_missing_words_are_close_in_meaning() -> None:
    doc = np.array([1.0, 0.0], dtype=np.float32)
    near, far = np.array([0.8, 0.6], dtype=np.float32), np.array([0.0, 1.0], dtype=np.float32)
    vectors = {(1,): near, (0,): far, (0, 1): far}
    cands = [Candidate(1, frozenset({0, 1}), 3.0),  # every word: kept
             Candidate(2, frozenset({0}), 2.0),  # word 1 missing but near: kept
             Candidate(3, frozenset({1}), 2.0),  # word 0 missing and far: dropped
             Candidate(4, frozenset(), 0.0),  # no word at all: never
             Candidate(5, frozenset({0}), 1.0)]  # no vector yet: must have every word
    docs = {1: doc, 2: doc, 3: doc, 4: doc}
    kept = soft_and(cands, vectors.__getitem__, docs, 2, threshold=0.5)
    assert [c.item_id for c in kept] == [1, 2]
    assert [c.item_id for c in lexical_order(kept)] == [1, 2]


def test_soft_and_takes_the_best_view_and_needs_a_real_share_of_the_words() -> None:
    whole = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    chapter = np.array([0.0, 0.0, 1.0], dtype=np.float32)
    missing = np.array([0.0, 0.6, 0.8], dtype=np.float32)  # far from the whole item, near one chapter
    views = {1: np.vstack([whole, chapter]), 2: whole}
    cands = [Candidate(1, frozenset({0}), 1.0), Candidate(2, frozenset({0}), 1.0)]
    kept = soft_and(cands, lambda m: missing, views, 2, threshold=0.5, min_share=0.5)
    assert [c.item_id for c in kept] == [1]  # the chapter view passes; the whole item alone does not
    # one word of three is under a half share: not judged by meaning at all
    assert soft_and([Candidate(1, frozenset({0}), 1.0)], lambda m: chapter, views, 3,
                    threshold=0.5, min_share=0.5) == []
    assert [c.item_id for c in soft_and([Candidate(1, frozenset({0, 1}), 1.0)], lambda m: chapter, views, 3,
                                        threshold=0.5, min_share=0.5)] == [1]


def test_rrf_on_a_hand_computed_case() -> None:
    # lexical a, b, c; dense c, b, a (k = 60): a = 1/61 + 1/63, b = 2/62, c = 1/63 + 1/61 -> a, c tie
    order = fuse([1, 2, 3], {1: 0.1, 2: 0.5, 3: 0.9})
    assert 1 / 61 + 1 / 63 > 2 / 62
    assert order == [1, 3, 2]  # the tie keeps the lexical order
    assert fuse([1, 2], {2: 0.9}) == [2, 1] or fuse([1, 2], {2: 0.9}) == [1, 2]
    assert fuse([], {}) == []
    # without vectors the lexical order stands
    assert fuse([3, 1, 2], {}) == [3, 1, 2]


# -- ingest and search end to end ------------------------------------------------------------

async def test_vectors_are_embedded_off_the_loop_in_batches_and_search_uses_them(
        db: Target, model: SemanticModel, monkeypatch: pytest.MonkeyPatch) -> None:
    async with await open_target(db) as store:
        await store_catalogue(store, NOW)
        embedder = model.get()
        assert embedder is not None
        loop_thread = threading.get_ident()
        threads: set[int] = set()
        original = embedder.embed

        def watched(texts):  # type: ignore[no-untyped-def]
            threads.add(threading.get_ident())
            return original(texts)

        embedder.embed = watched  # type: ignore[method-assign]
        try:
            assert await embed_pending(store, embedder, batch=50) == 121
        finally:
            del embedder.embed  # type: ignore[attr-defined]
        assert loop_thread not in threads
        assert await store.items_needing_vectors(10) == []
        assert await embed_pending(store, embedder) == 0
        lexical = Commands(store, clock=FrozenClock(NOW))
        semantic = Commands(store, clock=FrozenClock(NOW), semantic=model)
        # The Redis episode never says "concurrency" (it says "single thread",
        # "event loop"), the SSD episode never says "failure" (its chapter is
        # "What happens if SSD loses power"): all-words finds nothing; the
        # missing word, held against the item's views (its title, each
        # chapter), passes the calibrated threshold, and not a strict one.
        for question, title in (("search redis concurrency", "Redis single threaded and still fast"),
                                ("search ssd power failure", "Your SSD lies but that's ok | Postgres fsync")):
            assert (await lexical(question, MEMBER)).items == (), question
            assert [i.title for i in (await semantic(question, MEMBER)).items][:1] == [title], question
        monkeypatch.setattr(hybrid, "SOFT_AND_THRESHOLD", 0.6)
        assert (await semantic("search redis concurrency", MEMBER)).items == ()
        monkeypatch.undo()
        # One shared word of four is not a real share of the question: never by meaning.
        monkeypatch.setattr(hybrid, "SOFT_AND_THRESHOLD", -1.0)
        assert (await semantic("search kafka tutorial spring boot", MEMBER)).items == ()
        monkeypatch.undo()
        # ...while questions with no good answer still find nothing
        for text in ("rust borrow checker", "best microphone for podcasting", "react hooks"):
            assert (await semantic(f"search {text}", MEMBER)).items == (), text
        # one-word questions keep their lexical hits, reordered at most
        kafka_plain = {i.title for i in (await lexical("search kafka", MEMBER)).items}
        assert {i.title for i in (await semantic("search kafka", MEMBER)).items} == kafka_plain


def test_embed_jobs_builds_the_same_vectors_as_embedding_the_whole_texts() -> None:
    """embed_jobs pools each part once and adds them up: the item's document
    and each "episode title: chapter title" must come out as if embedded whole."""
    from bot.storage.records import VectorJob, split_chapters
    from tests.judged import load_catalogue

    embedder = load_wordllama()
    jobs = [VectorJob(n, "h", e.item.title, e.item.summary[:hybrid.DOC_CHARS], tuple(c.title for c in e.item.chapters))
            for n, e in enumerate(load_catalogue())]
    jobs.append(VectorJob(999, "h", "", "", ()))  # nothing to embed: zero vectors, never NaN
    assert any(j.chapters for j in jobs) and any(not j.chapters for j in jobs)
    vectors = hybrid.embed_jobs(embedder, jobs)
    assert [v.item_id for v in vectors] == [j.item_id for j in jobs]
    documents = embedder.embed([hybrid.document_text(j.title, j.chapters, j.summary) for j in jobs])
    for job, got, want in zip(jobs, vectors, documents):
        assert np.abs(from_bytes(got.item) - want).max() < 2e-3  # bfloat16 as stored
        assert got.chapter_count == len(job.chapters)
        assert len(got.chapters) == len(job.chapters) * len(got.item)
        if job.chapters:
            whole = embedder.embed([hybrid.chapter_text(job.title, c) for c in job.chapters])
            chapters = split_chapters(got.chapters, got.chapter_count)
            assert np.abs(np.vstack([from_bytes(c) for c in chapters]) - whole).max() < 2e-3
    assert not from_bytes(vectors[-1].item).any()
    assert hybrid.embed_jobs(embedder, []) == []
