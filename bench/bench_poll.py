"""Spine benchmarks: every row of issue #16's table in one run, stock feedparser and the bot side by side.

    .venv/bin/python -m bench.bench_poll [--rounds N] [--json]

All against a 540-item, ~2 MB podcast feed (tests/feedgen.py) served on
127.0.0.1, through the same pieces the bot runs (HttpFetcher, the app's
FeedParsers, RssSource, Poller, a real SQLite SqliteStorage, Commands):
- parsing: stock ``feedparser.parse``, a bare lxml tree (the floor for any
  lxml-based reader), the bot's ``parse_feed`` (fast reader) and the same
  with the fast reader off (feedparser plus our normaliser: what a feed the
  fast reader declines costs);
- polling: a first poll into an empty store, unchanged polls (304, and 200
  with the same body), the longest event-loop stall during a first poll and
  how many full garbage collections ran in it;
- a member's reply (``latest`` through bot.commands.Commands, every ~2 ms)
  while idle and while three 540-item first ingests run concurrently into
  the store that answers it, max and p50, and the longest stall then;
- memory: a fresh process that loads the bot, ingests the feed once and
  reports its resident set and its children's (a parse worker, if any),
  right after the ingest and at peak.

Medians and ratios are what to quote; these machines are shared and noisy.
``--json`` prints one JSON object per figure instead of the table.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import json
import multiprocessing
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable

import feedparser
from lxml import etree

from bot.app import feed_parsers, settle_heap
from bot.clock import FrozenClock
from bot.commands import Commands
from bot.hybrid import SemanticModel, WordLlamaEmbedder, embed_pending
from bot.models import ContentKind, SourceSpec
from bot.poller import Poller
from bot.sources.feeds import parse_feed
from bot.sources.http import HttpFetcher
from bot.sources.parsing import FeedParsers
from bot.sources.rss import RssSource
from bot.storage import SqliteStorage
from tests.catalog_helpers import MEMBER
from tests.feedgen import make_notes_feed, make_podcast_feed
from tests.feedserver import FeedServer
from tests.judged import load_catalogue

START = datetime(2016, 1, 4, tzinfo=timezone.utc)
NOW = START + timedelta(days=7 * 540)
N_ITEMS = 540
CONCURRENT_INGESTS = 3
REPLY_EVERY_S = 0.002
IDLE_REPLIES = 200


@dataclass(frozen=True)
class Figure:
    figure: str
    value: float
    unit: str  # "ms", "x" (a ratio), "MB", "count"
    label: str
    vs: str = ""
    target: str = ""
    met: bool | None = None


def median_s(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


async def amedian_s(fn: Callable[[], Awaitable[object]], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


class StallMeter:
    """Largest gap between 1 ms ticks: how long the loop was blocked; also
    counts full (generation 2) garbage collections, the usual suspect, and
    the longest collection of any generation."""

    def __init__(self) -> None:
        self.worst_s = 0.0
        self.full_collections = 0
        self.longest_gc_s = 0.0
        self._gc_started = 0.0
        self._task: asyncio.Task[None] | None = None

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
            self.full_collections += info["generation"] == 2
        else:
            self.longest_gc_s = max(self.longest_gc_s, time.perf_counter() - self._gc_started)

    async def _tick(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            self.worst_s = max(self.worst_s, now - last - 0.001)
            last = now

    def __enter__(self) -> "StallMeter":
        self._task = asyncio.get_running_loop().create_task(self._tick())
        gc.callbacks.append(self._on_gc)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        gc.callbacks.remove(self._on_gc)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def _ratio(value: float, target: float) -> tuple[str, bool]:
    return f"<= {target:g}x", value <= target


# ---------------------------------------------------------------------- parsing


def measure_parsing(body: bytes, rounds: int) -> list[Figure]:
    stock = median_s(lambda: feedparser.parse(io.BytesIO(body)), rounds)
    lxml_parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    floor = median_s(lambda: etree.fromstring(body, lxml_parser), rounds)
    ours = median_s(lambda: parse_feed(body), rounds)
    fallback = median_s(lambda: parse_feed(body, fast=False), rounds)
    target, met = _ratio(ours / stock, 0.3)
    return [
        Figure("stock_feedparser_ms", _ms(stock), "ms", "stock feedparser.parse", "1x"),
        Figure("lxml_tree_ms", _ms(floor), "ms", "a bare lxml tree of the same bytes (the floor)",
               f"1/{stock / floor:.0f} of stock"),
        Figure("parse_feed_ms", _ms(ours), "ms", "our parse_feed (fast reader, normalised Items)",
               f"{ours / stock:.2f}x stock"),
        Figure("parse_feed_vs_stock", round(ours / stock, 3), "x", "our parse_feed vs stock", "",
               target, met),
        Figure("parse_feed_fallback_ms", _ms(fallback), "ms",
               "our parse_feed with the fast reader off (feedparser + our normaliser)",
               f"{fallback / stock:.2f}x stock"),
    ]


# ---------------------------------------------------------------------- polling


async def measure_polls(body: bytes, server: FeedServer, fetcher: HttpFetcher, parsers: FeedParsers,
                        tmp: Path, rounds: int, stock_s: float) -> list[Figure]:
    stall = StallMeter()

    async def ingest_once(i: int) -> float:
        store = await SqliteStorage.open(tmp / f"ingest-{i}.db")
        try:
            poller = Poller(store, {"rss": RssSource(fetcher, parse=parsers.parse)}, clock=FrozenClock(NOW))
            await store.add_source(SourceSpec("podcast", "rss", server.url("/plain.xml"), ContentKind.EPISODE), NOW)
            with stall:  # only the poll itself: opening a fresh store is not ingest
                t0 = time.perf_counter()
                report = await poller.poll("podcast", force=True)
                elapsed = time.perf_counter() - t0
            assert report.ok and len(report.new) == N_ITEMS, report.error
            return elapsed
        finally:
            await store.close()

    ingest = statistics.median([await ingest_once(i) for i in range(rounds)])
    store = await SqliteStorage.open(tmp / "steady.db")
    try:
        poller = Poller(store, {"rss": RssSource(fetcher, parse=parsers.parse)}, clock=FrozenClock(NOW))
        for name, path in (("etag", "/etag.xml"), ("plain", "/plain.xml")):
            await store.add_source(SourceSpec(name, "rss", server.url(path), ContentKind.EPISODE), NOW)
            assert (await poller.poll(name, force=True)).ok
        unchanged_304 = await amedian_s(lambda: poller.poll("etag", force=True), rounds * 5)
        unchanged_200 = await amedian_s(lambda: poller.poll("plain", force=True), rounds * 5)
    finally:
        await store.close()
    return [
        Figure("first_poll_ms", _ms(ingest), "ms",
               "full first poll into an empty store (fetch, parse, detect, write)", f"{ingest / stock_s:.2f}x stock"),
        Figure("first_poll_vs_stock", round(ingest / stock_s, 3), "x", "first poll vs stock feedparser.parse",
               "", *_ratio(ingest / stock_s, 0.5)),
        Figure("unchanged_304_ms", _ms(unchanged_304), "ms", "unchanged poll, 304",
               f"1/{ingest / unchanged_304:.0f} of a first poll", "<= 1/300", ingest / unchanged_304 >= 300),
        Figure("unchanged_200_ms", _ms(unchanged_200), "ms", "unchanged poll, 200 with the same body",
               f"1/{ingest / unchanged_200:.0f} of a first poll", "<= 1/300", ingest / unchanged_200 >= 300),
        Figure("stall_ingest_ms", _ms(stall.worst_s), "ms", "longest event-loop stall during a first poll",
               f"{stall.full_collections} full GC in {rounds} polls, longest GC {stall.longest_gc_s * 1000:.1f} ms",
               "<= 15 ms", stall.worst_s <= 0.015),
        Figure("full_gc_per_first_poll", round(stall.full_collections / rounds, 2), "count",
               "full garbage collections per first poll"),
    ]


async def measure_embedding(server: FeedServer, fetcher: HttpFetcher, parsers: FeedParsers,
                            tmp: Path, rounds: int, model: SemanticModel) -> list[Figure]:
    """Issue #15's ingest budget: what semantic search adds to a first
    ingest. With the model loaded, a poll embeds its items (540 episodes and
    their 5,400 chapters) from memory and writes their vectors in its own
    transaction (``Poller(embedder=...)``); the same first poll without the
    model is the baseline. Rounds alternate the three, each into a fresh
    store. Timed without the pauses ``embed_off_loop`` leaves between groups
    in a running bot (idle time that spreads the work, not work). Also the
    background pass that embeds a first poll stored before the model loaded
    (``embed_pending``: reads the items back, embeds, writes).

    The target row's embedder starts each round with an empty word cache,
    as at the first ingest after a bot starts (the cache learns each
    distinct word once); the warm row's is the running model's, which knows
    the feed's words (the reply rows ingested it). The generated feed
    repeats its words (651 distinct), so the same is measured on the judged
    catalogue's 121 real-length show notes as a feed (1,607 distinct words,
    each episode its own text): the share a real archive's vocabulary costs."""
    loaded = await model.load()
    if loaded is None:
        return []
    big = await _embedding_rounds(server.url("/plain.xml"), N_ITEMS, fetcher, parsers, tmp, rounds, loaded, "plain")
    notes = await _embedding_rounds(server.url("/notes.xml"), len(load_catalogue()), fetcher, parsers, tmp, rounds,
                                    loaded, "notes")
    poll, added, known, backfill = big["off"], big["cold"], big["warm"], big["backfill"]
    return [
        Figure("embed_first_poll_ms", _ms(added), "ms",
               "[semantic search on] embedding a first poll's items and chapters (in the poll, then put)",
               f"{100 * added / poll:.0f}% of its first poll without them ({_ms(poll)} ms), "
               "every word new to the cache", "<= 20%", added <= 0.2 * poll),
        Figure("embed_first_poll_warm_ms", _ms(known), "ms",
               "[semantic search on] the same, the feed's words known (the cache warm)",
               f"{100 * known / poll:.0f}% of its first poll"),
        Figure("embed_backfill_ms", _ms(backfill), "ms",
               "[semantic search on] the background pass over a first poll stored without the model",
               f"{100 * backfill / poll:.0f}% of its first poll, its cache empty"),
        Figure("embed_notes_first_poll_ms", _ms(notes["cold"]), "ms",
               "[semantic search on] the same as the target row, the judged catalogue's 121 show notes",
               f"{100 * notes['cold'] / notes['off']:.0f}% of their first poll ({_ms(notes['off'])} ms), "
               "1,607 distinct words, all new"),
    ]


async def _embedding_rounds(url: str, n_items: int, fetcher: HttpFetcher, parsers: FeedParsers, tmp: Path,
                            rounds: int, loaded: Any, name: str) -> dict[str, float]:
    """Medians (s) of measure_embedding's modes for one feed: off (the first
    poll without the model), cold and warm (the embedding inside the poll),
    backfill (embed_pending after the off poll)."""
    times: dict[str, list[float]] = {"off": [], "cold": [], "warm": [], "backfill": []}
    for i in range(rounds):
        for mode in ("off", "cold", "warm"):
            store = await SqliteStorage.open(tmp / f"embed-{name}-{i}-{mode}.db")
            # off: the backfill's embedder; cold: the poll's; both start empty.
            embedder = loaded if mode == "warm" or not isinstance(loaded, WordLlamaEmbedder) \
                else WordLlamaEmbedder(loaded._model)
            try:
                poller = Poller(store, {"rss": RssSource(fetcher, parse=parsers.parse)}, clock=FrozenClock(NOW),
                                embedder=None if mode == "off" else (lambda: embedder), embed_pause_s=0)
                # The embedding's own time inside the poll, timed directly: the
                # difference of two polls' medians is mostly their noise.
                store_vectors = poller._store_vectors

                async def timed(*args: Any, into: list[float] = times[mode]) -> None:
                    t = time.perf_counter()
                    await store_vectors(*args)
                    if mode != "off":  # off: nothing embedded
                        into.append(time.perf_counter() - t)

                poller._store_vectors = timed  # type: ignore[method-assign]
                await store.add_source(SourceSpec("podcast", "rss", url, ContentKind.EPISODE), NOW)
                t0 = time.perf_counter()
                assert (await poller.poll("podcast", force=True)).ok
                t1 = time.perf_counter()
                if mode == "off":
                    times["off"].append(t1 - t0)
                    assert await embed_pending(store, embedder, pause_s=0) == n_items
                    times["backfill"].append(time.perf_counter() - t1)
                else:
                    assert await store.items_needing_vectors(1) == []
            finally:
                await store.close()
    return {mode: statistics.median(values) for mode, values in times.items()}


# ---------------------------------------------------------------------- replies


async def _replies(commands: Commands, until: Callable[[], bool]) -> list[float]:
    times = []
    while not until():
        t0 = time.perf_counter()
        reply = await commands("latest", MEMBER)
        times.append(time.perf_counter() - t0)
        assert reply.kind != "failure", reply.text
        await asyncio.sleep(REPLY_EVERY_S)
    return times


async def measure_replies(server: FeedServer, fetcher: HttpFetcher, parsers: FeedParsers,
                          tmp: Path, model: SemanticModel) -> list[Figure]:
    """With semantic search (``model`` enabled), as a running bot with the
    defaults: the model loaded at start, before the heap is settled, and each
    ingest embedding its items in the poll (in a worker thread, with the
    pauses between groups, as ``App``'s poller does) while members are
    answered."""
    semantic = model.enabled
    await model.load()
    store = await SqliteStorage.open(tmp / ("replies-semantic.db" if semantic else "replies.db"))
    try:
        poller = Poller(store, {"rss": RssSource(fetcher, parse=parsers.parse)}, clock=FrozenClock(NOW),
                        embedder=model.find)
        commands = Commands(store, clock=FrozenClock(NOW), semantic=model)

        async def ingest(name: str) -> Any:
            return await poller.poll(name, force=True)

        async def all_embedded() -> bool:  # by the polls themselves
            return not model.ready or await store.items_needing_vectors(1) == []

        # A catalogue to answer from, as a running bot has.
        await store.add_source(SourceSpec("archive", "rss", server.url("/plain.xml"), ContentKind.EPISODE), NOW)
        assert (await ingest("archive")).ok and await all_embedded()
        names = [f"show-{k}" for k in range(CONCURRENT_INGESTS)]
        for name in names:
            await store.add_source(SourceSpec(name, "rss", server.url(f"/{name}.xml"), ContentKind.EPISODE), NOW)

        sent = iter(range(IDLE_REPLIES + 1))
        idle = await _replies(commands, lambda: next(sent) == IDLE_REPLIES)  # same pacing, nothing else running
        stall = StallMeter()
        polls = asyncio.gather(*(ingest(name) for name in names))
        with stall:
            busy_task = asyncio.ensure_future(_replies(commands, polls.done))
            reports = await polls
            busy = await busy_task
        assert all(r.ok and len(r.new) == N_ITEMS for r in reports), [r.error for r in reports]
        assert await all_embedded()
    finally:
        await store.close()
    worst = max(busy)
    tag, label = ("semantic_", "[semantic search on] ") if semantic else ("", "")
    return [
        Figure(tag + "reply_idle_p50_ms", _ms(statistics.median(idle)), "ms", label + "a member's reply (latest), idle: p50"),
        Figure(tag + "reply_idle_max_ms", _ms(max(idle)), "ms", label + "a member's reply (latest), idle: max",
               f"{len(idle)} replies"),
        Figure(tag + "reply_busy_p50_ms", _ms(statistics.median(busy)), "ms",
               label + f"... during {CONCURRENT_INGESTS} concurrent {N_ITEMS}-item first ingests: p50"),
        Figure(tag + "reply_busy_max_ms", _ms(worst), "ms",
               label + f"... during {CONCURRENT_INGESTS} concurrent {N_ITEMS}-item first ingests: max",
               f"{len(busy)} replies", "<= 25 ms", worst <= 0.025),
        Figure(tag + "stall_concurrent_ms", _ms(stall.worst_s), "ms",
               label + f"longest event-loop stall during the {CONCURRENT_INGESTS} ingests",
               f"{stall.full_collections} full GC, longest GC {stall.longest_gc_s * 1000:.1f} ms",
               "<= 15 ms", stall.worst_s <= 0.015),
    ]


# ----------------------------------------------------------------------- memory


def _proc_status_kb(pid: int | str, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree_memory() -> dict[str, float]:
    """Resident and peak MB of this process and its live children (parse workers)."""
    children = [p.pid for p in multiprocessing.active_children() if p.pid is not None]
    dead_peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # largest child already gone
    return {
        "main_mb": _proc_status_kb("self", "VmRSS") / 1024,
        "children_mb": sum(_proc_status_kb(pid, "VmRSS") for pid in children) / 1024,
        "children": float(len(children)),
        "peak_mb": (_proc_status_kb("self", "VmHWM") + max(
            dead_peak_kb, sum(_proc_status_kb(pid, "VmHWM") for pid in children))) / 1024,
    }


async def _memory_probe() -> dict[str, float]:
    """Runs in a fresh process: the bot's modules, one 540-item first ingest, nothing else."""
    import adapters.console  # noqa: F401 - what `showbot run` has loaded with no chat tokens
    import bot.app  # noqa: F401

    body = make_podcast_feed(N_ITEMS, start=START)
    server = FeedServer()
    await server.start()
    server.add_feed("/plain.xml", body)
    del body
    fetcher = HttpFetcher(allow_private_addresses=True, max_body_bytes=16 * 1024 * 1024)
    parsers = feed_parsers()
    with tempfile.TemporaryDirectory(prefix="showbot-bench-mem-") as tmp:
        store = await SqliteStorage.open(Path(tmp) / "mem.db")
        try:
            settle_heap()
            before = _tree_memory()
            poller = Poller(store, {"rss": RssSource(fetcher, parse=parsers.parse)}, clock=FrozenClock(NOW))
            await store.add_source(SourceSpec("podcast", "rss", server.url("/plain.xml"), ContentKind.EPISODE), NOW)
            report = await poller.poll("podcast", force=True)
            assert report.ok and len(report.new) == N_ITEMS, report.error
            del report
            after = _tree_memory()
        finally:
            await store.close()
            parsers.close()
            await fetcher.close()
            await server.close()
    return {"before_main_mb": before["main_mb"], **after}


def measure_memory() -> list[Figure]:
    out = subprocess.run([sys.executable, "-m", "bench.bench_poll", "--memory-probe"],
                         capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parent.parent)
    mem = json.loads(out.stdout.strip().splitlines()[-1])
    total = mem["main_mb"] + mem["children_mb"]
    return [
        Figure("rss_after_ingest_mb", round(total, 1), "MB",
               "resident after a first ingest, main + parse workers",
               f"main {mem['main_mb']:.0f} (was {mem['before_main_mb']:.0f} before it) + "
               f"{mem['children']:.0f} worker(s) {mem['children_mb']:.0f}", "<= 80 MB", total <= 80),
        Figure("rss_peak_mb", round(mem["peak_mb"], 1), "MB", "peak resident set of the process tree"),
    ]


# ------------------------------------------------------------------------- main


async def main(rounds: int) -> list[Figure]:
    body = make_podcast_feed(N_ITEMS, start=START)
    figures = measure_parsing(body, rounds)
    stock_s = figures[0].value / 1000
    server = FeedServer()
    await server.start()
    server.add_feed("/etag.xml", body, etag='"v1"')
    server.add_feed("/plain.xml", body)
    server.add_feed("/notes.xml", make_notes_feed([e.item for e in load_catalogue()]))
    for k in range(CONCURRENT_INGESTS):  # distinct items per show: every ingest writes 540 new ones
        server.add_feed(f"/show-{k}.xml", make_podcast_feed(N_ITEMS, start=START, guid_prefix=f"show{k}-",
                                                            title_suffix=f" ({k})"))
    tmp = Path(tempfile.mkdtemp(prefix="showbot-bench-"))
    fetcher = HttpFetcher(allow_private_addresses=True, max_body_bytes=16 * 1024 * 1024)
    parsers = feed_parsers()  # as the app builds it
    try:
        await parsers.parse(body)  # warm up (a worker's spawn and imports, if any) outside the timing
        model = SemanticModel()  # the default: loaded at start, as App.run does before settling the heap
        await model.load()
        settle_heap()  # what App.run does once started
        figures += await measure_polls(body, server, fetcher, parsers, tmp, rounds, stock_s)
        figures += await measure_replies(server, fetcher, parsers, tmp, SemanticModel(enabled=False))
        figures += await measure_replies(server, fetcher, parsers, tmp, model)
        figures += await measure_embedding(server, fetcher, parsers, tmp, rounds, model)
    finally:
        parsers.close()
        await fetcher.close()
        await server.close()
    return figures + measure_memory()


def print_table(figures: list[Figure], rounds: int) -> None:
    print(f"feed: {N_ITEMS} items, ~2 MB; medians of {rounds} rounds (unchanged polls: {rounds * 5})")
    for f in figures:
        if f.unit == "x":
            continue  # ratios are printed next to their times
        value = f"{f.value:9.2f} {f.unit}" if f.unit != "count" else f"{f.value:9.2f}   "
        target = f"  target {f.target}: {'met' if f.met else 'MISSED'}" if f.target else ""
        print(f"  {f.label:<78} {value}  {f.vs}{target}")
    for f in figures:
        if f.unit == "x" and f.target:
            print(f"  {f.label:<78} {f.value:9.2f} x  target {f.target}: {'met' if f.met else 'MISSED'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="one JSON object per figure, one per line")
    parser.add_argument("--memory-probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_probe:
        print(json.dumps(asyncio.run(_memory_probe())))
        sys.exit(0)
    result = asyncio.run(main(args.rounds))
    if args.json:
        for figure in result:
            print(json.dumps(asdict(figure)))
    else:
        print_table(result, args.rounds)
