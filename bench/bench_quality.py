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
from bot import hybrid  # noqa: E402
from bot.commands import Commands  # noqa: E402
from bot.commands.member import chapter_matches  # noqa: E402
from bot.search import parse_query  # noqa: E402
from bot.hybrid import SemanticModel, embed_pending  # noqa: E402
from bot.models import ContentKind, StoredItem  # noqa: E402
from bot.presenter import CHAPTERS_LABEL, chapter_section  # noqa: E402
from bot.storage import SqliteStorage, Storage  # noqa: E402
from bot.storage.postgres import PostgresStorage  # noqa: E402
from tests.backends import PgRun  # noqa: E402
from tests.catalog_helpers import MEMBER  # noqa: E402
from tests.judged import (  # noqa: E402
    Answer, Question, Setting, choose_chapter_threshold, choose_setting, load_catalogue, load_questions, ndcg, score, store_catalogue,
)

NOW = datetime(2026, 6, 20, 12, 0, tzinfo=timezone.utc)


def chapter_lines() -> dict[str, tuple[str, str]]:
    """Each catalogue chapter's line in the "In chapters" section -> (episode id, chapter title)."""
    out = {}
    for e in load_catalogue():
        stored = StoredItem(0, "podcast", ContentKind.EPISODE, e.id, e.item, NOW)
        for c in e.item.chapters:
            section = chapter_section([(stored, c)])
            assert section is not None
            out[section.lines[0].text] = (e.id, c.title)
    return out


_LINES: dict[str, tuple[str, str]] = {}


async def answer(bot: Commands, by_title: dict[str, str], question: Question) -> Answer:
    if not _LINES:
        _LINES.update(chapter_lines())
    reply = await bot(f"search {question.text}", MEMBER)
    ranked = tuple(by_title[i.title] for i in reply.items)
    chapters = {by_title[i.title]: tuple(c.title for c in i.chapters) for i in reply.items}
    # the chapter channel itself, before the reply leaves out chapters already listed under their episode
    matches = await chapter_matches(bot._ctx, parse_query(question.text), None)
    hits = tuple((by_title[stored.item.title], c.title) for stored, c in matches)
    assert all(_LINES[line.text] in hits for s in reply.sections if s.label == CHAPTERS_LABEL for line in s.lines)
    return Answer(ranked, chapters, hits)


async def evaluate(store: Storage, *, show: bool = False, semantic: SemanticModel | None = None,
                   stored: dict[str, str] | None = None) -> tuple[list[Question], list[Answer]]:
    by_title = stored if stored is not None else await store_catalogue(store, NOW)
    if semantic is not None and semantic.get() is not None and stored is None:
        await embed_pending(store, semantic.get())  # type: ignore[arg-type]
    bot = Commands(store, clock=FrozenClock(NOW), semantic=semantic)
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
    ap.add_argument("--lexical", action="store_true", help="semantic search off ([search] semantic = false)")
    ap.add_argument("--sweep", action="store_true", help="calibrate the soft-AND threshold")
    ap.add_argument("--sweep-chapters", action="store_true",
                    help="calibrate the chapter channel's own threshold (the items' settings as they are)")
    ap.add_argument("--sweep-doc-chars", action="store_true",
                    help="how much of the show notes an item's vector is made of (DOC_CHARS), each re-embedded")
    args = ap.parse_args()
    semantic = None if args.lexical else SemanticModel()
    pg = PgRun(args.url) if args.backend == "postgresql" else None
    with tempfile.TemporaryDirectory() as tmp:
        if pg is None:
            store: Storage = await SqliteStorage.open(Path(tmp) / "judged.db")
        else:
            store = await PostgresStorage.open(await pg.create_database("showbot_bench"))
        try:
            questions, answers = await evaluate(store, show=args.show, semantic=semantic)
            if args.sweep:
                by_title = {e.item.title: e.id for e in load_catalogue()}
                saved = hybrid.SOFT_AND_THRESHOLD, hybrid.MIN_PRESENT_SHARE, hybrid.MULTI_VIEW
                rows = []
                for multi_view in (False, True):
                    for share in (0.0, 0.5, 0.67):
                        for t in (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 1.01):
                            hybrid.SOFT_AND_THRESHOLD, hybrid.MIN_PRESENT_SHARE, hybrid.MULTI_VIEW = t, share, multi_view
                            s = score(*await evaluate(store, semantic=semantic, stored=by_title))
                            rows.append(Setting(t, share, multi_view, s))
                            print(f"views {'doc+title+chapters' if multi_view else 'doc only          '} "
                                  f"share >= {share:.2f} threshold {t:.2f}: nDCG@5 {s.ndcg5:.3f} "
                                  f"hit@1 {s.hit1:.3f} noise {s.noise:.3f} chapters {s.chapter_accuracy:.3f} "
                                  f"channel {s.chapter_channel:.3f}")
                hybrid.SOFT_AND_THRESHOLD, hybrid.MIN_PRESENT_SHARE, hybrid.MULTI_VIEW = saved
                best = choose_setting(rows)
                print(f"chosen (zero noise, then best nDCG@5): views "
                      f"{'doc+title+chapters' if best.multi_view else 'doc only'} share >= {best.min_share:.2f} "
                      f"threshold {best.threshold:.2f} (nDCG@5 {best.scores.ndcg5:.3f}, noise {best.scores.noise:.3f})")
            if args.sweep_doc_chars:
                saved_chars = hybrid.DOC_CHARS
                for chars in (0, 150, 300, 450, 600, 900, 1200):
                    hybrid.DOC_CHARS = chars
                    if pg is None:
                        fresh: Storage = await SqliteStorage.open(Path(tmp) / f"doc-{chars}.db")
                    else:
                        fresh = await PostgresStorage.open(await pg.create_database(f"showbot_bench_doc{chars}"))
                    try:
                        s = score(*await evaluate(fresh, semantic=semantic))
                    finally:
                        await fresh.close()
                    print(f"DOC_CHARS {chars:4d}: nDCG@5 {s.ndcg5:.3f} hit@1 {s.hit1:.3f} noise {s.noise:.3f} "
                          f"chapters {s.chapter_accuracy:.3f} channel {s.chapter_channel:.3f}")
                hybrid.DOC_CHARS = saved_chars
            if args.sweep_chapters:
                by_title = {e.item.title: e.id for e in load_catalogue()}
                saved_chapter = hybrid.CHAPTER_THRESHOLD
                chapter_rows = []
                for t in (-1.01, -0.1, -0.05, 0.0, 0.02, 0.05, 0.08, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 1.01):
                    hybrid.CHAPTER_THRESHOLD = t
                    s = score(*await evaluate(store, semantic=semantic, stored=by_title))
                    chapter_rows.append((t, s))
                    print(f"chapter threshold {t:.2f}: channel {s.chapter_channel:.3f} noise {s.noise:.3f} "
                          f"(nDCG@5 {s.ndcg5:.3f}, chapters {s.chapter_accuracy:.3f})")
                hybrid.CHAPTER_THRESHOLD = saved_chapter
                print(f"chosen (least noise, then best channel accuracy): {choose_chapter_threshold(chapter_rows):.2f}")
        finally:
            await store.close()
            if pg is not None:
                await pg.drop_all()
    s = score(questions, answers)
    print(f"judged set: {s.answered} answerable questions ({s.chapter_questions} of them chapter questions), "
          f"{s.noise_questions} with no good answer  [{args.backend}, "
          f"{'semantic' if semantic is not None and semantic.ready else 'lexical'}]")
    print(f"nDCG@5            {s.ndcg5:.3f}")
    print(f"hit@1             {s.hit1:.3f}")
    print(f"noise             {s.noise:.3f}")
    print(f"chapter accuracy  {s.chapter_accuracy:.3f}  (the chapter listed first under its episode)")
    print(f"chapter channel   {s.chapter_channel:.3f}  (the chapter first in the chapter channel, bot.commands.member.chapter_matches)")


if __name__ == "__main__":
    asyncio.run(main())
