"""The composition root: builds everything from a Config, owns start-up and
graceful shutdown. Nothing is built at import time.

Chat adapters are plugins: ``bot/`` never imports them. They are found
through the ``showbot.adapters`` entry-point group (see pyproject.toml), each
a factory ``build(context) -> ChatAdapter | None`` that returns None when its
token is not set. Tests pass factories directly.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import logging
import sys
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Callable, Mapping, TextIO

from bot.clock import Clock, utc_now
from bot.commands import Commands
from bot.hybrid import SemanticModel, embed_pending
from bot.config import Config, Secrets
from bot.detect import make_book_matcher
from bot.drift import config_drift, route_seed
from bot.models import ParsedFeed, Platform
from bot.errors import StorageError
from bot.faults import StorageFaults
from bot.metrics import Metrics, PrometheusMetrics
from bot.outbox import DeliveryPolicy, Outbox, new_owner
from bot.poller import AnySourceKind, Poller, PollReport
from bot.ports import ChatAdapter, CommandHandler, HttpMounts, TopicCompleter
from bot.scheduler import PollScheduler
from bot.shards import ShardLeases
from bot.sources.feeds import parse_feed_off_loop
from bot.sources.documents import fetch_document
from bot.sources.http import HttpFetcher, fetcher_from_config
from bot.sources.parsing import FeedParsers
from bot.sources.rss import RssSource
from bot.sources.x import XSource
from bot.sources.youtube.checks import YouTubeChecks
from bot.storage import Storage, open_storage
from bot.storage.sqlite import threads_busy
from bot.web.server import WebDeps, WebServer

log = logging.getLogger("showbot")

ADAPTER_GROUP = "showbot.adapters"
HEARTBEAT_FILE = "heartbeat.json"


@dataclass(slots=True)
class AdapterContext:
    """Everything an adapter factory may need; it takes what it uses."""

    config: Config
    secrets: Secrets
    handler: CommandHandler
    completer: TopicCompleter
    settings: Storage
    console_in: TextIO = field(default_factory=lambda: sys.stdin)
    console_out: TextIO = field(default_factory=lambda: sys.stdout)
    force_console: bool = False
    chat_adapters: int = 0  # how many chat (non-console) adapters started before this one
    discord_shards: ShardLeases | None = None  # which gateway shard this instance connects
    http: HttpMounts | None = None  # the bot's HTTP server when [http] port is set (Slack's HTTP mode shares it)


AdapterFactory = Callable[[AdapterContext], "ChatAdapter | None"]


def feed_parsers() -> FeedParsers:
    """The feed parsers as the bot runs them: the fast reader's slices step
    aside only while a SQLite connection thread of this process (a member's
    query, a poll's write) wants the GIL. PostgreSQL's driver runs on the
    loop, which every slice yields to anyway (bot/sources/parsing.py)."""
    return FeedParsers(contended=threads_busy)


def discover_adapter_factories() -> dict[str, AdapterFactory]:
    """Installed adapters, console last (it starts only when no chat adapter did)."""
    found = {ep.name: ep.load() for ep in entry_points(group=ADAPTER_GROUP)}
    return dict(sorted(found.items(), key=lambda kv: kv[0] == "console"))


class App:
    def __init__(
        self,
        *,
        config: Config,
        secrets: Secrets,
        store: Storage,
        fetcher: HttpFetcher,
        poller: Poller,
        clock: Clock,
        parsers: FeedParsers | None = None,
        metrics: Metrics | None = None,
        semantic: SemanticModel | None = None,
    ) -> None:
        self.config = config
        self.secrets = secrets
        self.store = store
        self.fetcher = fetcher
        self.poller = poller
        self.clock = clock
        self.parsers = parsers
        self.metrics = metrics or Metrics()
        # Loaded once, when run() starts (a one-shot command loads it on the
        # first search instead); [search] semantic = false: never.
        self.semantic = semantic if semantic is not None else SemanticModel(enabled=config.search.semantic)
        self._vectors_due = asyncio.Event()
        self.vectors_indexed = asyncio.Event()  # set after each embedding pass (tests wait on it)
        self.commands = Commands(
            store, clock=clock, preview=self.preview, on_sources_changed=self._sources_changed,
            health=self.health, book_config=config.book, metrics=self.metrics, on_queued=self._queued,
            drift=self.drift_lines, semantic=self.semantic,
        )
        self.web: WebServer | None = None
        self.running = asyncio.Event()  # set once run() has started everything (tests wait on it)
        self.owner = poller.owner
        self.faults = StorageFaults()
        self.adapters: dict[Platform, ChatAdapter] = {}
        self.scheduler: PollScheduler | None = None
        self.outbox: Outbox | None = None

    @classmethod
    async def open(
        cls,
        config: Config,
        secrets: Secrets | None = None,
        *,
        clock: Clock = utc_now,
        kinds: Mapping[str, AnySourceKind] | None = None,
    ) -> "App":
        secrets = secrets if secrets is not None else Secrets.from_env()
        store = await open_storage(config.storage_path, secrets.database_url or config.storage_url)
        try:
            await store.seed(config.sources, [route_seed(r) for r in config.routes], clock())
            # Once per start: the file is read only at the first start, so an
            # edit made since would otherwise be ignored without a word.
            for difference in config_drift(config, await store.list_sources(), await store.list_routes()):
                log.warning("config file and database differ: %s (the database is what runs; "
                            "`showbot apply-config` makes it match the file)", difference.text)
        except BaseException:
            await store.close()
            raise
        fetcher = fetcher_from_config(config)
        parsers = feed_parsers()
        book_words = [*config.book.keywords, *([config.book.title] if config.book.title else [])]
        is_book_news = (make_book_matcher(book_words, config.book.links)
                        if (book_words or config.book.links) else None)
        rss = RssSource(fetcher, parse=parsers.parse)
        x_source = XSource(fetcher, rss, bearer_token=secrets.x_bearer_token, clock=clock,
                           options=config.x_options)
        source_kinds: dict[str, AnySourceKind] = {"rss": rss, "x": x_source}
        source_kinds.update(kinds or {})
        # Counted only where someone can read it: /metrics of the HTTP server.
        metrics = PrometheusMetrics() if config.http.enabled else Metrics()
        youtube = YouTubeChecks(fetcher, config.youtube, secrets.youtube_api_key)
        semantic = SemanticModel(enabled=config.search.semantic)
        poller = Poller(store, source_kinds, clock=clock, is_book_news=is_book_news,
                        x_options=config.x_options, source_options=config.source_options, youtube=youtube,
                        hold_unplayable_s=config.youtube.hold_unplayable_s,
                        book_window_s=config.book_window_s,
                        failure_alert_after=config.failure_alert_after, merge=config.merge,
                        owner=new_owner(), lease_s=config.delivery.lease_s, metrics=metrics,
                        # podcast:chapters / podcast:transcript: the same guarded fetcher as feeds
                        fetch_document=functools.partial(fetch_document, fetcher),
                        # once run() has loaded the model, polls store their items' vectors
                        embedder=semantic.find)
        return cls(config=config, secrets=secrets, store=store, fetcher=fetcher, poller=poller,
                   clock=clock, parsers=parsers, metrics=metrics, semantic=semantic)

    async def close(self) -> None:
        await self.fetcher.close()  # the X API client's session too
        if self.parsers is not None:
            await asyncio.to_thread(self.parsers.close)
        await self.store.close()

    async def __aenter__(self) -> "App":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- used by commands ------------------------------------------------------

    async def preview(self, url: str) -> ParsedFeed:
        """Fetch and parse a URL without storing anything (feed add / feed test)."""
        result = await self.fetcher.fetch(url)
        assert result.body is not None  # no validators sent, so never a 304
        parse = self.parsers.parse if self.parsers is not None else parse_feed_off_loop
        return await parse(result.body, url=result.url, content_type=result.content_type)

    async def _index_vectors(self, stop: asyncio.Event) -> None:
        """Semantic search's ingest side: load the model once (off the loop),
        embed what has no vectors yet (the whole catalogue after an upgrade:
        the backfill), then again after every poll that stored new items."""
        embedder = await self.semantic.load()
        if embedder is None:
            return  # SemanticModel logged why, once; search stays lexical
        self._vectors_due.set()
        while not stop.is_set():
            await self._vectors_due.wait()
            self._vectors_due.clear()
            try:
                done = await embed_pending(self.store, embedder)
            except StorageError as exc:  # the next poll retries; search works without them meanwhile
                log.warning("search vectors not saved: %s", exc)
                continue
            finally:
                self.vectors_indexed.set()
            if done:
                log.info("search vectors: %d item(s) embedded", done)

    def _queued(self) -> None:
        if self.outbox is not None:
            self.outbox.wake()  # a test post or a backfill: deliver now, not at the next tick

    async def drift_lines(self) -> list[str]:
        """How the config file and the database differ now (for `status`)."""
        return [d.text for d in config_drift(self.config, await self.store.list_sources(),
                                             await self.store.list_routes())]

    async def _sources_changed(self) -> None:
        if self.scheduler is not None:
            await self.scheduler.sync()

    def health(self) -> dict[str, bool]:
        return {p.value: a.healthy for p, a in self.adapters.items()}

    def chat_health(self) -> dict[str, bool]:
        """The chat adapters only: the console has no connection to lose."""
        return {p.value: a.healthy for p, a in self.adapters.items() if p is not Platform.CONSOLE}

    def web_server(self) -> WebServer | None:
        """The HTTP server of ``[http]``, or None when it is off."""
        http = self.config.http
        if http.port is None:
            return None
        deps = WebDeps(
            store=self.store, clock=self.clock, commands=self.commands, metrics=self.metrics,
            adapters=self.chat_health,
            scheduler_running=lambda: self.scheduler is not None and self.scheduler.running,
            store_writable=lambda: self.faults.writable, web_token=self.secrets.web_token,
        )
        return WebServer(deps, port=http.port, bind=http.bind)

    # -- operations ------------------------------------------------------------

    async def poll_now(self, name: str | None = None) -> list[PollReport]:
        """Poll one or every source now, whatever the backoff says."""
        names = [name] if name else [s.name for s in await self.store.list_sources()]
        reports = []
        for n in names:
            reports.append(await self.poller.poll(n, force=True))
        if self.outbox is not None and any(r.events for r in reports):
            self.outbox.wake()  # running: deliver now, not at the next tick
        if any(r.new for r in reports):
            self._vectors_due.set()  # running: embed them now (a no-op until run() starts)
        return reports

    async def run(
        self,
        stop: asyncio.Event,
        factories: Mapping[str, AdapterFactory],
        *,
        console_in: TextIO | None = None,
        console_out: TextIO | None = None,
        force_console: bool = False,
        heartbeat_s: float = 15.0,
    ) -> None:
        """Run until ``stop`` is set (SIGINT/SIGTERM in the CLI): start the
        adapters, the scheduler and the outbox; then stop polling, let the
        delivery in flight finish, and stop the adapters."""
        if self.store.backend == "sqlite":
            # The only process of an embedded database: what a dead one held
            # (delivery claims, the gateway shard) is free at once. Each
            # claimed row is looked up on its platform before any re-post.
            recovered = await self.store.expire_outbox_leases()
            if recovered:
                log.warning("%d announcement(s) were mid-delivery when the last run stopped; "
                            "checking with the platform before re-sending", recovered)
            await self.store.expire_leases()
        shards = ShardLeases(self.store, self.owner, self.config.discord.shard_count, clock=self.clock,
                             lease_s=self.config.delivery.lease_s, fixed=self.config.discord.shard_id)
        context = AdapterContext(
            config=self.config, secrets=self.secrets, handler=self.commands,
            completer=self.commands.complete_topic, settings=self.store,
            console_in=console_in or sys.stdin, console_out=console_out or sys.stdout,
            force_console=force_console, discord_shards=shards,
        )
        # Built before the adapters so they can mount routes on it; it starts
        # listening once they, the outbox and the scheduler run.
        self.web = self.web_server()
        context.http = self.web
        for name, factory in factories.items():
            context.chat_adapters = sum(1 for p in self.adapters if p is not Platform.CONSOLE)
            adapter = factory(context)
            if adapter is None:
                continue
            await adapter.start()
            self.adapters[adapter.platform] = adapter
            log.info("adapter %s started", name)

        self.outbox = Outbox(self.store, self.adapters, clock=self.clock,
                             policy=delivery_policy(self.config), owner=self.owner, faults=self.faults,
                             metrics=self.metrics)
        outbox = self.outbox

        def polled(report: PollReport) -> None:
            if report.events:
                outbox.wake()
            if report.new:
                self._vectors_due.set()

        self.scheduler = PollScheduler(self.store, self.poller, clock=self.clock, on_polled=polled,
                                       faults=self.faults)
        await self.scheduler.start()
        # The embedding model loads once, before the heap is settled: its
        # objects are then frozen with the rest of start-up instead of being
        # scanned by every full collection (bench_poll's semantic rows).
        await self.semantic.load()
        settle_heap()
        outbox_task = asyncio.create_task(outbox.run(stop), name="showbot-outbox")
        shards_task = asyncio.create_task(shards.run(stop), name="showbot-shards")
        heartbeat_task = asyncio.create_task(self._heartbeat(stop, heartbeat_s), name="showbot-heartbeat")
        vectors_task = (asyncio.create_task(self._index_vectors(stop), name="showbot-vectors")
                        if self.semantic.enabled else None)
        lag_task = (asyncio.create_task(watch_loop_lag(stop, self.metrics), name="showbot-loop-lag")
                    if self.metrics.enabled else None)
        try:
            if self.web is not None:
                await self.web.start()
            self.running.set()
            await stop.wait()
        finally:
            self.running.clear()
            await self.scheduler.shutdown()
            self.scheduler = None
            await outbox_task  # returns after the delivery in flight
            await asyncio.gather(shards_task, return_exceptions=True)
            for task in (heartbeat_task, lag_task, vectors_task):
                if task is not None:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            for adapter in self.adapters.values():
                try:
                    await adapter.stop()
                except Exception:
                    log.exception("stopping adapter %s", adapter.platform.value)
            self.adapters.clear()
            if self.web is not None:  # last: Slack's HTTP mode answered through it until here
                await self.web.stop()
                self.web = None

    async def _heartbeat(self, stop: asyncio.Event, every_s: float) -> None:
        """A file the container HEALTHCHECK reads: fresh while the loop runs,
        with each adapter's connection state and whether the database takes
        writes (checked by a real one). On a full disk the file can't be
        written either: it goes stale, which reads as unhealthy too."""
        path = heartbeat_path(self.config)
        failing = False
        while not stop.is_set():
            try:
                await self.store.check_writable(self.clock())
                self.faults.succeeded()
            except StorageError as exc:
                self.faults.failed(exc, "checking the database")
            try:
                write_heartbeat(path, self.clock(), self.health(), store_writable=self.faults.writable)
                failing = False
            except OSError as exc:
                if not failing:
                    log.error("cannot write the heartbeat file %s: %s", path, exc)
                failing = True
            try:
                await asyncio.wait_for(stop.wait(), timeout=every_s)
            except asyncio.TimeoutError:
                pass


LAG_EVERY_S = 0.5


async def watch_loop_lag(stop: asyncio.Event, metrics: Metrics, every_s: float = LAG_EVERY_S) -> None:
    """How late the loop wakes a timer: anything blocking it (a slow parse,
    a GC pause) shows as lag, and every reply and delivery waits that long."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        started = loop.time()
        await asyncio.sleep(every_s)
        metrics.loop_lag(loop.time() - started - every_s)


_heap_settled = False


def settle_heap() -> None:
    """Move everything alive after start-up (modules, config, adapters) out of
    the garbage collector's sight. A full collection then scans only what
    polls and replies allocate, instead of the whole interpreter: without
    this, one landing mid-ingest blocked the loop for ~50 ms (bench/).
    Once per process: what is frozen is never collected."""
    global _heap_settled
    if _heap_settled:
        return
    _heap_settled = True
    gc.collect()
    gc.freeze()


def heartbeat_path(config: Config) -> Path:
    return config.storage_path.parent / HEARTBEAT_FILE


def write_heartbeat(
    path: Path, now: datetime, adapters: Mapping[str, bool], *, store_writable: bool = True
) -> None:
    # Beside ``[storage] path`` (data/): with a PostgreSQL URL nothing else
    # creates that folder, and without it the heartbeat could never be written.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"at": now.isoformat(), "adapters": dict(adapters),
                               "store_writable": store_writable}))
    tmp.replace(path)  # atomic: a reader never sees half a file


def delivery_policy(config: Config) -> DeliveryPolicy:
    d = config.delivery
    return DeliveryPolicy(concurrency=d.concurrency, retry_base_s=d.retry_base_s, retry_cap_s=d.retry_cap_s,
                          probe_every_s=d.probe_every_s, lease_s=d.lease_s)
