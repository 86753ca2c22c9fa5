"""Search quality on the judged set (tests/fixtures/search/, see tests/judged.py).

    .venv/bin/python -m bench.bench_quality [--backend sqlite|postgresql] [--url URL] [--show]

Stores the judged catalogue (121 episodes, ~2.7 KB show notes each) in a
fresh database, asks every question as a member would (`search <question>`,
first page), and prints nDCG@5 and hit@1 over the answerable questions,
noise (share of no-answer questions that got any result) and chapter
accuracy (the right chapter listed first for the right episode on the first
page). ``--show`` prints each question's misses.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.clock import FrozenClock  # noqa: E402
from bot.commands import Commands  # noqa: E402
from bot.storage import SqliteStorage, Storage  # noqa: E402
from tests.backends import PgRun  # noqa: E402
from tests.catalog_helpers import MEMBER  # noqa: E402
from tests.judged import Answer, Question, load_questions, ndcg, score, store_catalogue  # noqa: E402

NOW = datetime(2026, 6, 20, 12, 0, tzinfo=timezone.utc)


async def answer(bot: Commands, by_title: dict[str, str], question: Question) -> Answer:
    reply = await bot(f"search {question.text}", MEMBER)
    ranked = tuple(by_title[i.title] for i in reply.items)
    chapters = {by_title[i.title]: tuple(c.title for c in i.chapters) for i in reply.items}
    return Answer(ranked, chapters)


async def evaluate(store: Storage, *, show: bool = False) -> tuple[list[Question], list[Answer]]:
    by_title = await store_catalogue(store, NOW)
    bot = Commands(store, clock=FrozenClock(NOW))
    questions = load_questions()
    answers = [await answer(bot, by_title, q) for q in questions]
    if show:
        for q, a in zip(questions, answers):
            bad = (q.kind == "noise" and a.ranked) or (q.kind != "noise" and ndcg(a.ranked, q.grades) < 0.7)
            if bad:
                print(f"  [{q.kind}] {q.text!r}: got {list(a.ranked)} want {dict(q.grades)}"
                      + (f" chapter {q.chapter[1]!r}, got {a.chapters.get(q.chapter[0])}" if q.chapter else ""))
    return questions, answers


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--show", action="store_true")
    args = ap.parse_args()
    pg = PgRun(args.url) if args.backend == "postgresql" else None
    with tempfile.TemporaryDirectory() as tmp:
        if pg is None:
            store: Storage = await SqliteStorage.open(Path(tmp) / "judged.db")
        else:
            from bot.storage.postgres import PostgresStorage
            store = await PostgresStorage.open(await pg.create_database("showbot_bench"))
        try:
            questions, answers = await evaluate(store, show=args.show)
        finally:
            await store.close()
            if pg is not None:
                await pg.drop_all()
    s = score(questions, answers)
    print(f"judged set: {s.answered} answerable questions ({s.chapter_questions} of them chapter questions), "
          f"{s.noise_questions} with no good answer  [{args.backend}]")
    print(f"nDCG@5            {s.ndcg5:.3f}")
    print(f"hit@1             {s.hit1:.3f}")
    print(f"noise             {s.noise:.3f}")
    print(f"chapter accuracy  {s.chapter_accuracy:.3f}")


if __name__ == "__main__":
    asyncio.run(main())
