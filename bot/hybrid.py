"""Semantic half of search (issue #15): static word embeddings (wordllama,
256 dimensions, weights inside its wheel) for a soft-AND fallback and a fused
ranking. See docs/design.md "Search".

- The lexical gate stays: a document must contain every word of the question
  (a synonym counts), except that a word it lacks may be matched by meaning:
  the missing word's vector must be close enough to the document's
  (``SOFT_AND_THRESHOLD``, calibrated on the judged set, tests/judged.py). A
  document containing none of the words is never a candidate, so questions
  with no good answer still find nothing.
- Survivors are ranked by reciprocal rank fusion (k = 60) of the lexical
  order (all words first, then how many words, then bm25) and the cosine of
  the whole question to the document.
- Vectors are computed off the event loop (``asyncio.to_thread``) in batches,
  stored per item and per chapter by the storage (``put_vectors``), and
  recomputed when an item's content changes.

Pure apart from ``SemanticModel`` (loads the model, once) and ``embed_pending``
(reads items, embeds, writes vectors: the ingest side).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import os
import re
import threading
import time
from itertools import accumulate, chain
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Protocol, Sequence

if TYPE_CHECKING:
    import numpy as np

    from bot.models import Item
    from bot.storage import Storage
    from bot.storage.records import ItemVectors, VectorJob

log = logging.getLogger(__name__)

DIM = 256
RRF_K = 60
# A document's missing words (embedded together) are matched by meaning when
# their cosine to the best of the document's views (whole item, title, each
# chapter) reaches this. Chosen by bench/bench_quality.py --sweep with a
# stated rule (tests/judged.py choose_setting): least noise on the no-answer
# questions (0.028 there is one lexical hit, with or without this), then the
# best nDCG@5: 0.25 with MIN_PRESENT_SHARE 0.5 gives 0.768 against 0.746 with
# the fallback off. It was 0.15 (0.815) until the no-answer set gained ten
# two-word questions pairing a catalogue word with one no episode uses
# ("postgres certification", "ssd pricing"): 0.15 answered seven of them
# (noise 0.222), 0.20 two. Static word vectors put "pricing" near "cost".
SOFT_AND_THRESHOLD = 0.25
# The chapter channel's own (rank_chapters): a chapter title is a few words,
# so its vector and the cosines to it behave unlike a whole episode's.
# None: the same as items'. bench_quality --sweep-chapters (tests/judged.py
# choose_chapter_threshold) chose 0.25 too: below it the two-word no-answer
# questions find chapters (0.15: noise 0.111), above it fewer chapter
# questions are answered.
CHAPTER_THRESHOLD: float | None = None
# A document must hold at least this share of the question's words before its
# missing ones may be matched by meaning: one shared word of a long question
# is a coincidence, not a topic.
MIN_PRESENT_SHARE = 0.5
# Judge missing words against the title and chapter vectors too, not only the
# whole item's (bench_quality --sweep compares both).
MULTI_VIEW = True
# What a document's vector is made of: its title, chapter titles and the
# start of its description (show notes end in link footers that every
# episode shares; they would pull every vector to the same place). Chosen by
# bench/bench_quality.py --sweep-doc-chars with the threshold's rule (least
# noise, then the best nDCG@5): 300 on both backends (SQLite 0.770, 600 gave
# 0.768, 900 and 1,200 more noise or less nDCG), and half the words to pool
# at ingest. Stored vectors follow it (a schema migration drops them when it
# changes, and the backfill re-embeds).
DOC_CHARS = 300
EMBED_BATCH = 256  # items a batch: one read, one write
EMBED_GROUP_CHARS = 32_768  # text embedded per call in the worker thread (see embed_pending)
EMBED_PAUSE_S = 0.002  # and the pause between two calls


class Embedder(Protocol):
    def embed(self, texts: Sequence[str]) -> "np.ndarray":
        """(len(texts), DIM) float32, each row L2-normalized (a zero row for empty text)."""

    def sums(self, texts: Sequence[str]) -> "np.ndarray":
        """What ``embed`` normalizes: (len(texts), DIM) float32 sums over the
        texts' words, so that the texts' words joined by separators have the
        sum of their sums (``embed_jobs`` builds documents from parts)."""


class WordLlamaEmbedder:
    """wordllama's static embeddings, pooled over our own word tokens.

    The model averages the vectors of a text's subword tokens; running its
    tokenizer over every document costs ~80 us a text (25,000 posts: 2 s, far
    more than storing them). The same average is a sum of per-word sums, so
    each distinct word is learned once and cached (its token-vector sum:
    a word the vocabulary holds whole is its token's row, the rest are
    tokenized), and a document is the normalized sum of its words' sums:
    ~10x faster, and identical for query and document sides. Words are
    ``bot.lexicon.tokens`` (lower case), as search sees them."""

    MAX_WORDS = 200_000  # ~200 MB of cache at most; cleared when full

    def __init__(self, model: Any) -> None:
        import numpy as np

        self._model = model
        # The embedder takes the model over: its tokenizer no longer pads, so
        # _learn reads each word's ids as they are (padded to a batch's
        # longest word, a 64-letter word made 65 ids of every word), and the
        # model's own embed, which needs padding, is not used.
        model.tokenizer.no_padding()
        # One BLAS thread for the whole process (OpenBLAS's setting is
        # global; nothing else in the bot multiplies matrices): the pooling's
        # products are a few MB, and OpenBLAS's default of a spinning thread
        # per core made them 3-4x slower (wall) on a 2-core machine busy with
        # the loop, the store's thread and other processes (540 episodes and
        # their chapters: 95-154 -> 32-35 ms).
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")
        # Likewise the tokenizer's thread pool (Rust, rayon; it reads this
        # variable at each call): learning a chunk's dozen new words cost
        # ~75 us a call with it, ~40 without, and 2,000 words 25 ms against
        # 14 on a 2-core machine. An operator's own setting stands.
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        self._matrix = np.asarray(model.embedding, dtype=np.float32)
        self._whole = whole_word_tokens(model.tokenizer)
        self._index: dict[str, int] = {MARKER: MARKER_ROW}  # row 0: the text separator, an empty row
        self._sums = np.zeros((1024, DIM), dtype=np.float32)
        self._slot = np.zeros(len(self._sums), dtype=np.intp)  # _distinct's scratch
        # The tokenizer is not documented as thread-safe, and ingest and
        # search may embed at once from two threads.
        self._lock = threading.Lock()

    def _learn(self, words: Iterable[str]) -> None:
        """Each new word's token-vector sum, cached. A word the vocabulary
        holds whole is its token's row (``whole_word_tokens``); the others go
        through the tokenizer in one call."""
        import numpy as np

        wanted = set(words)
        new = list(wanted.difference(self._index))
        if not new:
            return
        if len(self._index) + len(new) > self.MAX_WORDS:
            self._index = {MARKER: MARKER_ROW}
            new = list(wanted.difference(self._index))
        # A word longer than MAX_TOKEN_LEN is learned as its token, the word
        # cut there, so ascii_words need not cut the rare long word itself
        # (a max over a chunk's words was ~8% of pooling).
        from bot.lexicon import MAX_TOKEN_LEN

        whole = self._whole
        known = [w for w in new if w in whole]
        rest = [w for w in new if w not in whole]
        need = len(self._index) + len(new)
        if need > len(self._sums):
            grown = np.zeros((max(need, 2 * len(self._sums)), DIM), dtype=np.float32)
            grown[:len(self._index)] = self._sums[:len(self._index)]
            self._sums = grown
        first = len(self._index)
        self._sums[first:first + len(known)] = self._matrix[[whole[w] for w in known]]
        if rest:
            self._sums[first + len(known):first + len(new)] = self._token_sums([w[:MAX_TOKEN_LEN] for w in rest])
        self._index.update(zip(known + rest, range(first, first + len(new))))

    def _token_sums(self, words: list[str]) -> "np.ndarray":
        """(len(words), DIM): each word's token vectors summed, from one
        tokenizer call for up to ``TOKENIZE_WORDS`` of them (pre-tokenized:
        each word alone, as ``encode_batch`` would see it, without an
        Encoding a word: ~30% faster), summed by ``sum_runs`` (a word with
        no tokens keeps a zero row)."""
        import numpy as np

        ids: list[int] = []
        word_ids: list[int] = []
        for at in range(0, len(words), TOKENIZE_WORDS):  # the GIL is held for a call
            encoding = self._model.tokenizer.encode(words[at:at + TOKENIZE_WORDS], is_pretokenized=True,
                                                    add_special_tokens=False)
            ids += encoding.ids
            word_ids += (at + n for n in encoding.word_ids)
        out = np.zeros((len(words), DIM), dtype=np.float32)
        sum_runs(self._matrix, np.asarray(ids, dtype=np.intp),
                 np.bincount(np.asarray(word_ids, dtype=np.intp), minlength=len(words)), out)
        return out

    def embed(self, texts: Sequence[str]) -> "np.ndarray":
        """Texts pooled a chunk at a time (``chunk_bounds``): each C-level
        step of ``_pool`` holds the GIL for its whole call, and over a whole
        batch (~45,000 words for 256 episodes) the word-to-row map alone held
        it 15-30 ms, so the event loop, waiting for the GIL, stalled as long
        and a member's query waited as long for the cache lock (bench_poll's
        semantic rows). Between chunks the thread runs bytecode again and
        hands the GIL over at the switch interval."""
        return normalized(self.sums(texts))

    def sums(self, texts: Sequence[str]) -> "np.ndarray":
        import numpy as np

        out = np.zeros((len(texts), DIM), dtype=np.float32)
        # Every chunk split first, so that the first chunk with a word the
        # cache lacks learns the new words of all the chunks after it too:
        # one tokenizer call and one gather a call, not one a chunk (a cold
        # cache made 49 calls for a 540-episode feed, ~100 us of numpy each).
        chunks = [(start, stop, *self._words(texts[start:stop])) for start, stop in chunk_bounds(texts)]
        for n, (start, stop, words, lengths) in enumerate(chunks):
            self._pool(words, lengths, stop - start, out[start:stop], (c[2] for c in chunks[n + 1:]))
        return out

    def _pool(self, words: list[str], lengths: "np.ndarray | None", n_texts: int, out: "np.ndarray",
              ahead: Iterable[list[str]] = ()) -> None:
        """A chunk's words (``_words``) as rows of the cached word sums, summed
        per text into ``out`` (unnormalized), no Python loop per text or per
        word beyond one ``map``. A word not cached yet is learned with the
        new words of the chunks ``ahead``.

        Texts of a few words (titles, chapter titles: at most ``SHORT_WORDS``
        a text on average) sum their gathered rows, the texts of one word
        count at a time (``sum_runs``); longer ones are a (texts x distinct
        words) count matrix times those words' sums, one BLAS product (its
        cost grows with the chunk's distinct words, and short texts have
        many per word: the judged catalogue's chapter titles pooled 2.3x
        faster gathered). ``np.add.reduceat`` over the gathered rows gives
        the same vectors but measured 4-8x slower: its axis-0 reduction of a
        2-D array is not vectorized."""
        import numpy as np

        with self._lock:
            ids = self._lookup(words, ahead)
            if lengths is None:  # one split, the texts separated by the marker
                marks = ids == MARKER_ROW
                text_of = np.cumsum(marks)[~marks]
                ids = ids[~marks]
            else:
                text_of = np.repeat(np.arange(n_texts), lengths)
            if not len(ids):
                return
            # Rows are read under the lock: a full cache starts over and reuses them.
            if len(ids) <= SHORT_WORDS * n_texts:
                return sum_runs(self._sums, ids, np.bincount(text_of, minlength=n_texts), out)
            distinct, column = self._distinct(ids)
            rows = self._sums[distinct]
        counts = np.bincount(text_of * len(distinct) + column, minlength=n_texts * len(distinct))
        out[:] = counts.reshape(n_texts, len(distinct)).astype(np.float32) @ rows

    def _distinct(self, ids: "np.ndarray") -> tuple["np.ndarray", "np.ndarray"]:
        """The distinct rows among ``ids`` (in no particular order) and each
        id's column among them, without sorting (``np.unique`` sorted every
        chunk: ~15% of pooling): a scratch array indexed by row, as long as
        the cache, records one position per row, then each row's column. The
        lock held."""
        import numpy as np

        if len(self._slot) < len(self._sums):
            self._slot = np.zeros(len(self._sums), dtype=np.intp)
        slot, positions = self._slot, np.arange(len(ids))
        slot[ids] = positions  # of repeated ids, one write survives: that position stands for the row
        distinct = ids[slot[ids] == positions]
        slot[distinct] = np.arange(len(distinct))
        return distinct, slot[ids]

    @staticmethod
    def _words(texts: Sequence[str]) -> tuple[list[str], "np.ndarray | None"]:
        """A chunk's words and how many each text has, or None for the counts
        when the words are one split of the joined chunk with ``MARKER``
        between texts (an ASCII chunk: nearly all; the marker maps to an
        empty row)."""
        words = ascii_words(texts)
        if words is None:  # text by text (not ASCII, or a text holding the marker)
            return batch_words(texts)
        return words, None

    def _lookup(self, words: list[str], ahead: Iterable[list[str]] = ()) -> "np.ndarray":
        """Each word's row (the lock held). The lookup runs once over the
        words and learns only when one is missing: a warm cache builds no
        set of a chunk's words."""
        import numpy as np

        try:
            return np.fromiter(map(self._index.__getitem__, words), dtype=np.intp, count=len(words))
        except KeyError:  # a word not seen yet: learn the new words of this chunk and those ahead, map again
            self._learn(chain(words, *ahead))
            return np.fromiter(map(self._index.__getitem__, words), dtype=np.intp, count=len(words))

    def embed_reference(self, texts: Sequence[str]) -> "np.ndarray":
        """The plain per-text pooling the fast path must equal (tests): each
        text's ``tokens``, its words' sums added up one text at a time."""
        import numpy as np

        from bot.lexicon import tokens

        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for n, text in enumerate(texts):
            words = tokens(text)
            with self._lock:
                self._learn(words)
                for w in words:
                    out[n] += self._sums[self._index[w]]
        return normalized(out)


def sum_runs(table: "np.ndarray", ids: "np.ndarray", lengths: "np.ndarray", out: "np.ndarray") -> None:
    """``out[k]`` = the sum of ``table``'s rows at the k-th run of ``ids``
    (``lengths[k]`` consecutive ids; a run of none leaves ``out[k]`` as it
    is): the runs of one length at a time, their rows gathered as
    (runs x length x DIM) and summed over the length. A word's tokens
    (learning it) and a short text's words (pooling it) are such runs. One
    reduceat over all the gathered rows took ~2x as long."""
    import numpy as np

    starts = np.cumsum(lengths) - lengths
    for length in np.unique(lengths[lengths > 0]).tolist():
        which = np.flatnonzero(lengths == length)
        out[which] = table[ids[starts[which, None] + np.arange(length)]].sum(axis=1)


def whole_word_tokens(tokenizer: Any) -> dict[str, int]:
    """The vocabulary's whole words: word -> the one token it encodes to on
    its own. wordllama's tokenizer (SentencePiece-style BPE, 32,000 tokens)
    prepends "\u2581" to a text, and a lower-case ASCII word whose
    "\u2581word" is a token encodes to that token alone (all 9,296 of them,
    tests/test_hybrid.py), so learning such a word needs no tokenizer call:
    two thirds of the judged catalogue's distinct words, at ~5 us a word
    otherwise. Checked on a sample of the table at load; a tokenizer that
    disagrees gets no table (every word tokenized, as before)."""
    table = {key[1:]: token for key, token in tokenizer.get_vocab().items()
             if key.startswith("\u2581") and _WHOLE_WORD.fullmatch(key, 1)}
    probe = sorted(table)[::max(1, len(table) // 64)]
    encoded = tokenizer.encode_batch(probe, add_special_tokens=False) if probe else []
    if any(e.ids != [table[w]] for w, e in zip(probe, encoded)):
        log.info("the tokenizer does not encode its whole words alone; every new word is tokenized")
        return {}
    return table


_WHOLE_WORD = re.compile(r"[a-z0-9]+")


def normalized(rows: "np.ndarray") -> "np.ndarray":
    """Each row L2-normalized in place (a zero row stays zero, never NaN)."""
    import numpy as np

    # (einsum's row sums of squares: ~5x faster than np.linalg.norm's here;
    # a product by the reciprocals ~2x faster than a divide with where=)
    norms = np.sqrt(np.einsum("ij,ij->i", rows, rows))
    rows *= np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)[:, None]
    return rows


# New words a tokenizer call (~3.5 us each, the GIL held): ~2 ms at most.
TOKENIZE_WORDS = 512
# A chunk: at most this many characters and texts. ~1 ms of work, so no
# single call holds the GIL long; its count matrix stays a few MB. The text
# limit binds only for short texts (16,384 / 512: 32 characters a text on
# average), which are gathered (_pool): 512 of them, 4x fewer chunks than
# 128, pooled a 540-episode feed's 5,940 titles and chapter titles ~1.25x
# faster and the judged catalogue's ~2.3x.
CHUNK_CHARS = 16_384
CHUNK_TEXTS = 512
# Words a text on average up to which a chunk is gathered, not multiplied.
SHORT_WORDS = 8


def chunk_bounds(texts: Sequence[str], max_chars: int = CHUNK_CHARS,
                 max_texts: int = CHUNK_TEXTS) -> list[tuple[int, int]]:
    """(start, stop) of consecutive chunks covering ``texts``, each within
    both limits unless a single text is longer than ``max_chars``."""
    return size_bounds(list(map(len, texts)), max_chars, max_texts)


def size_bounds(sizes: Sequence[int], max_size: int, max_count: int) -> list[tuple[int, int]]:
    """``chunk_bounds`` over sizes: consecutive runs of at most ``max_count``
    entries and ``max_size`` in all (an entry larger than that alone)."""
    # Greedy, one bisect of the running total a chunk (a Python loop over
    # every text cost 4 ms for a 540-episode feed's 6,480 texts).
    totals = list(accumulate(sizes, initial=0))
    bounds, start = [], 0
    while start < len(sizes):
        stop = bisect.bisect_right(totals, totals[start] + max_size, lo=start + 1) - 1
        stop = max(start + 1, min(stop, start + max_count))
        bounds.append((start, stop))
        start = stop
    return bounds


# The word between two texts of a joined chunk (``ascii_words``): a control
# character no text holds (checked), kept as a token by _BATCH_SEPARATORS,
# and mapped to the cache's row 0, which stays zero.
MARKER = "\x01"
MARKER_ROW = 0


def ascii_words(texts: Sequence[str]) -> list[str] | None:
    """The texts' ``bot.lexicon.tokens``, in order, with ``MARKER`` between
    consecutive texts: one lower, translate and split of the joined text.
    A word longer than ``MAX_TOKEN_LEN`` is left whole (the word cache
    learns it as its cut token). None when the texts are not all ASCII or
    one holds the marker."""
    joined = f" {MARKER} ".join(texts)
    if not joined.isascii() or joined.count(MARKER) != len(texts) - 1:
        return None
    return joined.lower().encode("ascii").translate(_BATCH_SEPARATORS).decode("ascii").split()


def batch_words(texts: Sequence[str]) -> tuple[list[str], "np.ndarray"]:
    """Every text's ``bot.lexicon.tokens`` in order, flattened, and how many
    each text has. ASCII batches (nearly all) are split in one pass over the
    joined text: lower, one translate, one split, the texts separated by a
    marker token; other batches text by text."""
    import numpy as np

    from bot.lexicon import MAX_TOKEN_LEN, tokens

    joined = " \x01 ".join(texts)
    if not joined.isascii() or joined.count("\x01") != len(texts) - 1:  # a text holding the marker itself
        split = [tokens(t) for t in texts]
        return [w for ws in split for w in ws], np.fromiter(map(len, split), dtype=np.intp, count=len(split))
    parts = joined.lower().encode("ascii").translate(_BATCH_SEPARATORS).decode("ascii").split("\x01")
    split = [part.split() for part in parts]  # C-level splits, one a text
    lengths = np.fromiter(map(len, split), dtype=np.intp, count=len(split))
    words = list(chain.from_iterable(split))
    if max(map(len, words), default=0) > MAX_TOKEN_LEN:
        words = [w[:MAX_TOKEN_LEN] for w in words]
    return words, lengths


# bot.lexicon's ASCII table, except that the text separator \x01 (joined as
# " \x01 ", so it is a token of its own) is kept.
_BATCH_SEPARATORS = bytes(b if chr(b) in "abcdefghijklmnopqrstuvwxyz0123456789\x01" else 0x20 for b in range(256))


def load_wordllama() -> Embedder:
    """The model from the weights inside the wordllama wheel, never the network
    (without these arguments it tries to download a tokenizer)."""
    import wordllama
    from wordllama import WordLlama

    return WordLlamaEmbedder(WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True))


class SemanticModel:
    """The embedder, loaded once: at start by a running bot (``load``), on the
    first query that needs it by a one-shot command (``get``). When it cannot
    load, search is lexical and says so in ONE log line."""

    def __init__(self, enabled: bool = True, loader: Callable[[], Embedder] = load_wordllama) -> None:
        self.enabled = enabled
        self._loader = loader
        self._model: Embedder | None = None
        self._failed = not enabled
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return self._model is not None

    def find(self) -> Embedder | None:
        """The model if it is loaded; never loads it (a poll embeds its items
        only when the model is already there)."""
        return self._model

    def get(self) -> Embedder | None:
        if self._model is not None or self._failed:
            return self._model
        with self._lock:
            if self._model is None and not self._failed:
                try:
                    self._model = self._loader()
                except Exception as exc:  # any import or load failure: lexical search still works
                    self._failed = True
                    log.warning("semantic search is off: the embedding model did not load (%s: %s); "
                                "search is lexical only", type(exc).__name__, exc)
        return self._model

    async def load(self) -> Embedder | None:
        """``get`` off the event loop (the load reads ~19 MB of weights)."""
        if self._model is not None or self._failed:
            return self._model
        return await asyncio.to_thread(self.get)


# -- vectors ---------------------------------------------------------------------------

# Stored as bfloat16: each float32's top 16 bits, rounded half away from
# zero. Half the bytes to write and read, and encoding is one add and one
# shift: numpy's float16 conversion runs a scalar loop (8.6 of the ~66 ms a
# 540-episode feed's vectors took to embed; this takes ~1). 8 significant
# bits put a cosine off by ~2e-3 at most, far below what the threshold can
# tell: bench_quality measured the same scores as float16 and float32.
def as_stored(vectors: "np.ndarray") -> "np.ndarray":
    """Vectors (one or a matrix of them) in their stored encoding (uint16 words)."""
    import numpy as np

    bits = np.ascontiguousarray(vectors, dtype="<f4").view("<u4")
    return ((bits + 0x8000) >> 16).astype("<u2")


def to_bytes(vector: "np.ndarray") -> bytes:
    return as_stored(vector).tobytes()


def from_bytes(data: bytes) -> "np.ndarray":
    import numpy as np

    return (np.frombuffer(data, dtype="<u2").astype("<u4") << 16).view("<f4")


def rows_from_bytes(vectors: Sequence[bytes]) -> "np.ndarray":
    """Stored vectors as one (len(vectors), DIM) matrix, decoded at once (an
    episode's chapters: one call, not one a chapter)."""
    return from_bytes(b"".join(vectors)).reshape(len(vectors), DIM)


def document_text(title: str, chapters: Sequence[str], summary: str) -> str:
    return "\n".join([title, *chapters, summary[:DOC_CHARS]])


def item_document(item: "Item") -> str:
    return document_text(item.title, [c.title for c in item.chapters], item.summary)


def chapter_text(episode_title: str, title: str) -> str:
    return f"{episode_title}: {title}"


def embed_jobs(embedder: Embedder, jobs: Sequence["VectorJob"]) -> list["ItemVectors"]:
    """A batch's vectors from two pooling calls: the short parts (the
    titles and chapter titles of the items with chapters), then the
    summaries (the whole document of an item without). Pooling is a sum,
    so every text built from parts is the sum of theirs, the same vectors as
    embedding that text (tests): an item's document (``document_text``) is
    its parts' sums plus its summary's, and a chapter's text ("episode
    title: chapter title", ``chapter_text``) is its title's sum plus its own.
    No word is pooled twice (a 540-episode feed with 10 chapters each: 99,000
    words pooled -> 61,000), and short texts are pooled apart from long ones
    (a chunk is pooled as a texts x distinct-words count matrix: among
    documents each short text would pay for all of their words)."""
    import numpy as np

    from bot.storage.records import ItemVectors

    # An item without chapters (a post) is pooled whole, its title with its
    # summary: it has no parts to share.
    with_chapters = [n for n, job in enumerate(jobs) if job.chapters]
    chaptered = [jobs[n] for n in with_chapters]
    parts = [text for job in chaptered for text in (job.title, *job.chapters)]
    part_sums = embedder.sums(parts)
    sizes = np.fromiter((1 + len(job.chapters) for job in chaptered), dtype=np.intp, count=len(chaptered))
    titles = np.cumsum(sizes) - sizes  # each title's row in part_sums; its chapters follow it
    doc_sums = embedder.sums([job.summary[:DOC_CHARS] if job.chapters else document_text(job.title, (), job.summary)
                              for job in jobs])
    if chaptered:
        doc_sums[with_chapters] += np.add.reduceat(part_sums, titles, axis=0)
    # Each part plus its item's title, in place: a chapter row becomes its
    # chapter text's sum (a title row twice its own, never stored), so an
    # item's chapter vectors stay contiguous right after its title row.
    part_sums += part_sums[np.repeat(titles, sizes)]
    # One conversion and one tobytes a batch, then plain bytes slices (a
    # tobytes per row cost ~1 us each, 5,940 rows for a 540-episode feed).
    size = DIM * as_stored(doc_sums[:0]).itemsize
    doc_blob = as_stored(normalized(doc_sums)).tobytes()
    part_blob = as_stored(normalized(part_sums)).tobytes()
    first_chapter = iter((titles + 1).tolist())
    out = []
    for n, job in enumerate(jobs):
        at = next(first_chapter) * size if job.chapters else 0
        out.append(ItemVectors(job.item_id, job.content_hash, doc_blob[n * size:(n + 1) * size],
                               part_blob[at:at + len(job.chapters) * size], len(job.chapters)))
    return out


def job_groups(jobs: Sequence["VectorJob"], max_chars: int | None = None) -> list[tuple[int, int]]:
    """(start, stop) of consecutive groups of ``jobs`` holding at most
    ``max_chars`` of text each (a longer job alone): ~30 episodes with their
    chapters, ~150 posts, each one call of ~1-2 ms."""
    sizes = [len(job.title) + len(job.summary) + sum(map(len, job.chapters)) for job in jobs]
    return size_bounds(sizes, EMBED_GROUP_CHARS if max_chars is None else max_chars, len(jobs) or 1)


def item_job(key: int, content_hash: str, item: "Item") -> "VectorJob":
    """What ``embed_jobs`` needs of an item in memory (a poll's own, before
    it is stored: ``key`` is the caller's, not a row id yet)."""
    from bot.storage.records import VectorJob

    return VectorJob(key, content_hash, item.title, item.summary[:DOC_CHARS], tuple(c.title for c in item.chapters))


async def embed_off_loop(embedder: Embedder, jobs: Sequence["VectorJob"], *,
                         pause_s: float | None = None) -> list["ItemVectors"]:
    """``embed_jobs`` in one worker thread, a group of jobs at a time
    (``job_groups``: ~1-2 ms of CPU each) with ``pause_s`` between groups,
    the thread asleep: while it runs, the loop and the store's thread each
    wait up to a switch interval (5 ms) for the GIL at every hand-over, and a
    member's reply makes several. The pause leaves the GIL to them
    (bench_poll's semantic rows). One thread for all the groups: a hop to
    the loop and back per group cost ~10% of a feed's embedding. Cancelled,
    the thread stops after its current group."""
    pause_s = EMBED_PAUSE_S if pause_s is None else pause_s
    stop = threading.Event()

    def run() -> list[ItemVectors]:
        vectors: list[ItemVectors] = []
        for n, (first, end) in enumerate(job_groups(jobs)):
            if n and pause_s > 0:
                time.sleep(pause_s)
            if stop.is_set():
                break
            vectors += embed_jobs(embedder, jobs[first:end])
        return vectors

    try:
        return await asyncio.to_thread(run)
    finally:
        stop.set()


async def embed_pending(store: "Storage", embedder: Embedder, *, batch: int | None = None,
                        max_batches: int = 10_000, pause_s: float | None = None) -> int:
    """Embed every item whose vectors are missing or stale, batch by batch,
    off the loop (``embed_off_loop``). Returns how many were written. A poll
    stores its new items' vectors itself when the model is loaded
    (``Poller``); this catches up on the rest: all items after an upgrade,
    with semantic search newly on or polled before the model loaded (the
    backfill), and items whose chapters a fetched document replaced."""
    batch = EMBED_BATCH if batch is None else batch
    done, after = 0, 0
    for _ in range(max_batches):
        jobs = await store.items_needing_vectors(batch, after_id=after, summary_chars=DOC_CHARS)
        if not jobs:
            break
        vectors = await embed_off_loop(embedder, jobs, pause_s=pause_s)
        await store.put_vectors(vectors)
        done += len(vectors)
        after = jobs[-1].item_id
        if len(jobs) < batch:
            break
    return done


# -- ranking (pure) -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Candidate:
    item_id: int
    present: frozenset[int]  # indices of the query terms the document contains
    lexical_score: float  # the backend's score summed over the terms it contains


def soft_and(candidates: Sequence[Candidate], missing_vector: Callable[[tuple[int, ...]], "np.ndarray"],
             doc_vectors: Mapping[int, "np.ndarray"], n_terms: int,
             threshold: float | None = None, min_share: float | None = None) -> list[Candidate]:
    """The candidates that contain every term, or that contain a real share of
    them (``min_share`` of the terms, ``MIN_PRESENT_SHARE`` by default) and
    whose missing terms, embedded together (``missing_vector`` of their
    indices), are close enough in meaning to one of the document's views.
    ``doc_vectors`` holds one vector per document or a (views x DIM) matrix
    (the whole item, its title, each chapter): the best view counts, because
    a whole-episode vector is an average that blurs the one topic a chapter
    or the title names. A document with none of the terms, or with no vector
    yet, must contain every term."""
    import numpy as np

    limit = SOFT_AND_THRESHOLD if threshold is None else threshold
    share = MIN_PRESENT_SHARE if min_share is None else min_share
    kept = []
    for c in candidates:
        missing = tuple(t for t in range(n_terms) if t not in c.present)
        if not missing:
            kept.append(c)
            continue
        doc = doc_vectors.get(c.item_id)
        if not c.present or doc is None or len(c.present) < share * n_terms:
            continue
        if float(np.max(np.atleast_2d(doc) @ missing_vector(missing))) >= limit:
            kept.append(c)
    return kept


def lexical_order(candidates: Sequence[Candidate]) -> list[Candidate]:
    """bm25 over the words present (OR), documents with more of the words first."""
    return sorted(candidates, key=lambda c: (-len(c.present), -c.lexical_score, -c.item_id))


def fuse(lexical: Sequence[int], dense: Mapping[int, float], k: int = RRF_K) -> list[int]:
    """Reciprocal rank fusion of the lexical order and the dense cosine order
    (documents without a vector rank last in the dense list). Ties keep the
    lexical order."""
    by_cosine = sorted(lexical, key=lambda i: (i not in dense, -dense.get(i, 0.0)))
    dense_rank = {item_id: r for r, item_id in enumerate(by_cosine)}
    score = {item_id: 1 / (k + r + 1) + 1 / (k + dense_rank[item_id] + 1) for r, item_id in enumerate(lexical)}
    position = {item_id: r for r, item_id in enumerate(lexical)}
    return sorted(lexical, key=lambda i: (-score[i], position[i]))


# -- the chapter channel (pure) -------------------------------------------------------

CHAPTER_HITS = 3  # chapter matches shown under the results


@dataclass(frozen=True, slots=True)
class ChapterCandidate:
    """A chapter as its own document, "episode title: chapter title"."""

    item_id: int
    position: int
    present: frozenset[int]  # the query terms the document contains (episode or chapter title)
    lexical_score: float  # the backend's chapter-title score (bm25 on SQLite)


def rank_chapters(candidates: Sequence[ChapterCandidate],
                  missing_vector: Callable[[tuple[int, ...]], "np.ndarray"] | None,
                  vectors: Mapping[tuple[int, int], "np.ndarray"], whole: "np.ndarray | None",
                  n_terms: int, *, limit: int = CHAPTER_HITS) -> list[ChapterCandidate]:
    """The chapter channel: the candidates (each has a term in its own chapter
    title, which is how the storage found it) that contain every term, or
    that pass the same soft-AND rule as items against their own vector
    (``soft_and``); ranked by reciprocal rank fusion of the lexical order
    (more terms, then the chapter-title score) and the question's cosine to
    the chapter vector. Without a model (``missing_vector`` None) every term
    must be there and the lexical order stands. Not the episode gate: a
    chapter answers even when its episode as a whole does not."""
    keyed = {n: c for n, c in enumerate(candidates)}
    as_items = [Candidate(n, c.present, c.lexical_score) for n, c in keyed.items()]
    if missing_vector is None:
        kept = [c for c in as_items if len(c.present) == n_terms]
    else:
        views = {n: vectors[(c.item_id, c.position)] for n, c in keyed.items() if (c.item_id, c.position) in vectors}
        kept = soft_and(as_items, missing_vector, views, n_terms, threshold=CHAPTER_THRESHOLD)
    order = [c.item_id for c in lexical_order(kept)]
    if whole is not None:
        dense = {n: float(vectors[(keyed[n].item_id, keyed[n].position)] @ whole)
                 for n in order if (keyed[n].item_id, keyed[n].position) in vectors}
        order = fuse(order, dense)
    return [keyed[n] for n in order[:limit]]
