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
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence

if TYPE_CHECKING:
    import numpy as np

    from bot.models import Item
    from bot.storage import Storage
    from bot.storage.records import ItemVectors, VectorJob

log = logging.getLogger(__name__)

DIM = 256
RRF_K = 60
# A document's missing words (embedded together) are matched by meaning when
# their cosine to the document's vector reaches this. Calibrated on the
# judged set (bench/bench_quality.py --sweep, and the candidates' cosines):
# just above every candidate that is not a relevant answer (the highest,
# 0.327, is an episode touching "cpu cache" for that question). Static word
# vectors separate poorly: lower lets noise in, higher finds less.
SOFT_AND_THRESHOLD = 0.33
# What a document's vector is made of: its title, chapter titles and the
# start of its description (show notes end in link footers that every
# episode shares; they would pull every vector to the same place).
DOC_CHARS = 600
EMBED_BATCH = 64


class Embedder(Protocol):
    def embed(self, texts: Sequence[str]) -> "np.ndarray":
        """(len(texts), DIM) float32, each row L2-normalized (a zero row for empty text)."""


class WordLlamaEmbedder:
    def __init__(self, model: Any) -> None:
        self._model = model
        # The tokenizer is not documented as thread-safe; ingest and search may
        # embed at once from two threads.
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> "np.ndarray":
        import numpy as np

        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        with self._lock:
            vectors = self._model.embed(list(texts), norm=True, batch_size=EMBED_BATCH)
        return np.ascontiguousarray(vectors, dtype=np.float32)


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

def to_bytes(vector: "np.ndarray") -> bytes:
    import numpy as np

    return np.asarray(vector, dtype="<f4").tobytes()


def from_bytes(data: bytes) -> "np.ndarray":
    import numpy as np

    return np.frombuffer(data, dtype="<f4")


def document_text(item: "Item") -> str:
    return "\n".join([item.title, *(c.title for c in item.chapters), item.summary[:DOC_CHARS]])


def chapter_text(item: "Item", title: str) -> str:
    return f"{item.title}: {title}"


def embed_jobs(embedder: Embedder, jobs: Sequence["VectorJob"]) -> list["ItemVectors"]:
    """One embed call for a batch: every item's document and its chapters."""
    from bot.storage.records import ItemVectors

    texts: list[str] = []
    for job in jobs:
        item = job.item.item
        texts.append(document_text(item))
        texts.extend(chapter_text(item, c.title) for c in item.chapters)
    vectors = embedder.embed(texts)
    out, at = [], 0
    for job in jobs:
        n = len(job.item.item.chapters)
        out.append(ItemVectors(job.item.id, job.content_hash, to_bytes(vectors[at]),
                               tuple(to_bytes(v) for v in vectors[at + 1:at + 1 + n])))
        at += 1 + n
    return out


async def embed_pending(store: "Storage", embedder: Embedder, *, batch: int = EMBED_BATCH,
                        max_batches: int = 10_000) -> int:
    """Embed every item whose vectors are missing or stale (new items after a
    poll, all items after an upgrade or with semantic search newly on), batch
    by batch, the model in a worker thread. Returns how many were written."""
    done = 0
    for _ in range(max_batches):
        jobs = await store.items_needing_vectors(batch)
        if not jobs:
            break
        vectors = await asyncio.to_thread(embed_jobs, embedder, jobs)
        await store.put_vectors(vectors)
        done += len(vectors)
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
             threshold: float | None = None) -> list[Candidate]:
    """The candidates that contain every term, or whose missing terms, embedded
    together (``missing_vector`` of their indices), are close enough in
    meaning to the document. A document with none of the terms, or with no
    vector yet, must contain every term."""
    limit = SOFT_AND_THRESHOLD if threshold is None else threshold
    kept = []
    for c in candidates:
        missing = tuple(t for t in range(n_terms) if t not in c.present)
        if not missing:
            kept.append(c)
            continue
        doc = doc_vectors.get(c.item_id)
        if not c.present or doc is None:
            continue
        if float(missing_vector(missing) @ doc) >= limit:
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
