"""The judged search set (tests/fixtures/search/): a catalogue of episodes
with real-length show notes, member questions graded against it, and the
metrics bench/bench_quality.py prints. Pure loading and arithmetic here; the
bench and tests/test_search_quality.py run the questions through the bot.

Grades: 3 = about exactly this, 2 = covers it substantially, 1 = touches it.
A question is one of
- ``answer``: at least one episode is graded;
- ``noise``: no episode answers it, so any result at all is noise;
- ``chapter``: the answer is one chapter of one episode (graded 3 too).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Mapping, Sequence

from bot.detect import decide
from bot.models import Chapter, ContentKind, Item, SourceSpec
from bot.storage import Storage
from tests.spine import write_decision

HERE = Path(__file__).parent / "fixtures" / "search"
RELEVANT = 2  # hit@1 counts a first result graded at least this
DEPTH = 5  # one page of results


@dataclass(frozen=True)
class Question:
    text: str
    kind: str  # answer | noise | chapter
    grades: Mapping[str, int]
    chapter: tuple[str, str] | None = None  # (episode id, chapter title)


@dataclass(frozen=True)
class Episode:
    id: str
    item: Item


def load_catalogue() -> list[Episode]:
    raw = json.loads((HERE / "catalogue.json").read_text(encoding="utf-8"))
    out = []
    for e in raw["episodes"]:
        out.append(Episode(e["id"], Item(
            title=e["title"], link=f"https://pod.example.org/{e['id']}", guid=f"judged-{e['id']}",
            summary=e["summary"], published_at=datetime.fromisoformat(e["published_at"]),
            duration_s=e.get("duration_s"), episode_number=e.get("episode_number"),
            chapters=tuple(Chapter(s, t) for s, t in e.get("chapters", [])),
        )))
    return out


def load_questions() -> list[Question]:
    raw = json.loads((HERE / "questions.json").read_text(encoding="utf-8"))
    return [Question(q["q"], q["kind"], q["grades"], tuple(q["chapter"]) if "chapter" in q else None)
            for q in raw["questions"]]


SPEC = SourceSpec(name="podcast", kind="rss", url="https://pod.example.org/rss", content=ContentKind.EPISODE)


async def store_catalogue(store: Storage, now: datetime) -> dict[str, str]:
    """Store the catalogue as one silent first poll; returns title -> episode id."""
    episodes = load_catalogue()
    source = await store.add_source(SPEC, now)
    items = [e.item for e in episodes]
    decision = decide(spec=SPEC, synced=False, known=[], fetched=items, now=now)
    await write_decision(store, source, decision, now=now, next_poll_at=now + timedelta(hours=1),
                         etag=None, last_modified=None, body_hash=None)
    by_title = {e.item.title: e.id for e in episodes}
    assert len(by_title) == len(episodes), "titles identify episodes in replies"
    return by_title


# -- metrics -------------------------------------------------------------------------

def dcg(gains: Sequence[int], depth: int = DEPTH) -> float:
    """Discounted cumulative gain with exponential gain (2^grade - 1)."""
    return sum((2 ** g - 1) / math.log2(rank + 2) for rank, g in enumerate(gains[:depth]))


def ndcg(ranked: Sequence[str], grades: Mapping[str, int], depth: int = DEPTH) -> float:
    """nDCG@depth of a ranked list of ids against graded ids (1.0 = ideal order)."""
    ideal = dcg(sorted(grades.values(), reverse=True), depth)
    if ideal == 0:
        return 0.0
    return dcg([grades.get(i, 0) for i in ranked], depth) / ideal


def hit_at_1(ranked: Sequence[str], grades: Mapping[str, int]) -> bool:
    return bool(ranked) and grades.get(ranked[0], 0) >= RELEVANT


@dataclass(frozen=True)
class Answer:
    """What the bot showed for one question: ids in order, and for each id the
    chapters it listed as matches (best first)."""

    ranked: tuple[str, ...]
    chapters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # the chapter channel ("In chapters" section), best first: (episode id, chapter title)
    chapter_hits: tuple[tuple[str, str], ...] = ()


def chapter_found(answer: Answer, target: tuple[str, str], depth: int = DEPTH) -> bool:
    """The target episode is on the first page with the target chapter as its first match."""
    episode, title = target
    return episode in answer.ranked[:depth] and answer.chapters.get(episode, ())[:1] == (title,)


@dataclass(frozen=True)
class Scores:
    ndcg5: float
    hit1: float
    noise: float  # share of no-answer questions that got any result (an item or a chapter match)
    chapter_accuracy: float
    answered: int
    noise_questions: int
    chapter_questions: int
    chapter_channel: float = 0.0  # the target chapter first in the chapter channel


def score(questions: Sequence[Question], answers: Sequence[Answer]) -> Scores:
    graded = [(q, a) for q, a in zip(questions, answers, strict=True) if q.kind in ("answer", "chapter")]
    noise = [a for q, a in zip(questions, answers) if q.kind == "noise"]
    chapters = [(q, a) for q, a in zip(questions, answers) if q.kind == "chapter"]

    def mean(xs: Sequence[float]) -> float:
        return sum(xs) / len(xs) if xs else 0.0

    return Scores(
        ndcg5=mean([ndcg(a.ranked, q.grades) for q, a in graded]),
        hit1=mean([1.0 if hit_at_1(a.ranked, q.grades) else 0.0 for q, a in graded]),
        noise=mean([1.0 if a.ranked or a.chapter_hits else 0.0 for a in noise]),
        chapter_accuracy=mean([1.0 if q.chapter and chapter_found(a, q.chapter) else 0.0 for q, a in chapters]),
        answered=len(graded), noise_questions=len(noise), chapter_questions=len(chapters),
        chapter_channel=mean([1.0 if q.chapter and a.chapter_hits[:1] == (q.chapter,) else 0.0 for q, a in chapters]),
    )


@dataclass(frozen=True)
class Setting:
    """One row of bench_quality --sweep: a soft-AND setting and its scores."""

    threshold: float
    min_share: float
    multi_view: bool
    scores: Scores


def choose_setting(rows: Sequence[Setting]) -> Setting:
    """The stated rule: zero noise on the no-answer questions first, then the
    best nDCG@5; ties go to the higher threshold (the stricter gate), then the
    larger share. Without a zero-noise row, the least noise wins the same way."""
    if not rows:
        raise ValueError("no settings to choose from")
    least = min(r.scores.noise for r in rows)
    quiet = [r for r in rows if r.scores.noise == least]
    return max(quiet, key=lambda r: (round(r.scores.ndcg5, 9), r.threshold, r.min_share))



def choose_chapter_threshold(rows: Sequence[tuple[float, Scores]]) -> float:
    """The chapter channel's own soft-AND threshold, by the same kind of rule:
    least noise on the no-answer questions (a chapter match counts as an
    answer), then the best chapter-channel accuracy; ties go to the higher
    threshold (the stricter gate)."""
    if not rows:
        raise ValueError("no thresholds to choose from")
    least = min(s.noise for _, s in rows)
    return max(((t, s) for t, s in rows if s.noise == least), key=lambda r: (round(r[1].chapter_channel, 9), r[0]))[0]