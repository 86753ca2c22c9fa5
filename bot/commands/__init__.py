"""The chat-neutral command layer: text + Caller -> Reply.

    bot = Commands(store, clock=utc_now)
    reply = await bot("episodes on postgres", caller)

``grammar`` parses (pure), ``member``/``moderation`` run, ``help`` explains.
A call never raises: a UserError becomes a kind ephemeral ``error`` Reply, a
bug is logged (logger "showbot.commands") and answered with a generic
``failure`` Reply.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections import Counter
from typing import Awaitable, Callable, Mapping, Sequence

from bot.clock import Clock
from bot.commands import book_stats, member, moderation, routes, why
from bot.commands.context import Context
from bot.commands.grammar import (
    MODERATOR_COMMANDS, AnnounceCap, AnnounceDigest, AnnounceHere, AnnounceOff, AnnouncePace, AnnounceTest,
    Book, Command, EpisodeNumber, FeedAction, FeedAdd, FeedBackfill, Feeds, FilterAdd, FilterClear, FilterList,
    Help, Latest, Preview, RandomPick, Search, Stats, Status, Subscribe, Subscriptions, TemplateList,
    TemplateReset, TemplateSet, TemplateUse, Unknown, Unsubscribe, Usage, Why, parse,
)
from bot.commands.help import help_reply, unknown_reply
from bot.config import BookConfig
from bot.errors import ConfigError, PermissionDenied, UserError
from bot.metrics import Metrics
from bot.models import Caller, ParsedFeed, Reply
from bot.hybrid import SemanticModel
from bot.replies import reply_to_json
from bot.search import SynonymIndex, tokens
from bot.storage import Storage

log = logging.getLogger("showbot.commands")

__all__ = ["Commands", "parse", "reply_to_json"]

_WORD = re.compile(r"^[a-z][a-z0-9+#.-]*$")


class Commands:
    def __init__(
        self,
        store: Storage,
        *,
        clock: Clock,
        synonyms: Mapping[str, Sequence[str]] | None = None,
        preview: Callable[[str], Awaitable[ParsedFeed]] | None = None,
        on_sources_changed: Callable[[], Awaitable[None]] | None = None,
        health: Callable[[], Mapping[str, bool]] | None = None,
        on_queued: Callable[[], None] | None = None,
        drift: Callable[[], Awaitable[list[str]]] | None = None,
        page_size: int = 5,
        rng: random.Random | None = None,
        book_config: BookConfig | None = None,
        metrics: Metrics | None = None,
        semantic: SemanticModel | None = None,
    ) -> None:
        """``synonyms`` (from TOML) replaces bot.search.DEFAULT_SYNONYMS when
        given; ``rng`` makes `random` reproducible in tests; ``book_config``
        (config.book) is what `book` shows, None or empty: no book.
        ``on_queued`` is told when a command put posts in the outbox (a test,
        a backfill), ``drift`` lists how the config file and the database differ."""
        self._ctx = Context(
            store=store, clock=clock, synonyms=SynonymIndex(synonyms), rng=rng or random.Random(),
            page_size=max(1, page_size), preview=preview, on_sources_changed=on_sources_changed,
            health=health, metrics=metrics or Metrics(), on_queued=on_queued, drift=drift,
        )
        self._ctx.vocabulary = self._title_vocabulary
        self._ctx.semantic = semantic
        self._metrics = self._ctx.metrics
        self._book = book_config
        self._vocabulary: tuple[tuple[int, int], list[str]] | None = None

    async def __call__(self, text: str, caller: Caller, *, via: str | None = None) -> Reply:
        """``via`` names where it came from for metrics when that is not a
        chat platform (the status page: "web")."""
        started = time.perf_counter()
        name = "unknown"
        try:
            command = parse(text if isinstance(text, str) else "")
            name = _command_name(type(command).__name__)
            return await self._run(command, caller)
        except UserError as exc:
            return Reply(kind="error", text=str(exc), ephemeral=True)
        except ConfigError as exc:  # a validator from bot.config reached us unwrapped
            return Reply(kind="error", text=str(exc).split(": ", 2)[-1], ephemeral=True)
        except Exception:
            log.exception("command failed: %r from %s:%s", text[:200] if isinstance(text, str) else text,
                          caller.platform.value, caller.user_id)
            return Reply(kind="failure", text="Sorry, something went wrong on my side. "
                                              "Try again in a moment.", ephemeral=True)
        finally:
            if self._metrics.enabled:
                self._metrics.command(name, via or caller.platform.value, time.perf_counter() - started)

    async def _run(self, command: Command, caller: Caller) -> Reply:
        ctx = self._ctx
        if isinstance(command, MODERATOR_COMMANDS) and not caller.is_moderator:
            name = _command_name(type(command).__name__)
            raise PermissionDenied(
                f"Sorry, `{name}` is for moderators only. `help` lists what everyone can use.")
        match command:
            case Help(topic):
                return help_reply(topic, moderator=caller.is_moderator)
            case Unknown(text):
                return unknown_reply(text)
            case Usage(_, problem):
                return Reply(kind="error", text=problem, ephemeral=True)
            case Latest():
                return await member.latest(ctx, command)
            case Search():
                return await member.search(ctx, command)
            case EpisodeNumber():
                return await member.episode(ctx, command)
            case RandomPick():
                return await member.random_pick(ctx, command)
            case Stats():
                return await book_stats.stats(ctx)
            case Book():
                return await book_stats.book(ctx, self._book)
            case Subscribe(topic):
                return await member.subscribe(ctx, caller, topic)
            case Unsubscribe(topic):
                return await member.unsubscribe(ctx, caller, topic)
            case Subscriptions():
                return await member.subscriptions(ctx, caller)
            case Feeds():
                return await moderation.feeds(ctx)
            case FeedAdd():
                return await moderation.feed_add(ctx, caller, command)
            case FeedAction(action="test", name=name):
                return await routes.feed_test(ctx, caller, name)
            case FeedAction():
                return await moderation.feed_action(ctx, caller, command)
            case AnnounceHere():
                return await routes.announce_here(ctx, caller, command)
            case AnnounceOff():
                return await routes.announce_off(ctx, caller, command)
            case FilterAdd():
                return await moderation.filter_add(ctx, caller, command)
            case FilterClear():
                return await moderation.filter_clear(ctx, caller, command)
            case FilterList():
                return await moderation.filter_list(ctx, command)
            case Status():
                return await moderation.status(ctx)
            case Why():
                return await why.why(ctx, command)
        return await self._run_shaping(command, caller)

    async def _run_shaping(self, command: Command, caller: Caller) -> Reply:
        """What moderators shape about a channel's posts (issue #12), apart
        so the dispatch above stays easy to merge."""
        ctx = self._ctx
        match command:
            case AnnounceDigest():
                return await routes.announce_digest(ctx, caller, command)
            case AnnouncePace():
                return await routes.announce_pace(ctx, caller, command)
            case AnnounceCap():
                return await routes.announce_cap(ctx, caller, command)
            case AnnounceTest():
                return await routes.announce_test(ctx, caller, command)
            case TemplateList():
                return await routes.template_list(ctx, caller)
            case TemplateUse():
                return await routes.template_use(ctx, caller, command)
            case TemplateSet():
                return await routes.template_set(ctx, caller, command)
            case TemplateReset():
                return await routes.template_reset(ctx, caller)
            case Preview():
                return await routes.preview(ctx, caller, command)
            case FeedBackfill():
                return await routes.feed_backfill(ctx, caller, command)
        raise AssertionError(f"unhandled command {command!r}")  # pragma: no cover

    async def complete_topic(self, prefix: str, limit: int = 25) -> list[str]:
        """Words from titles starting with ``prefix``, most frequent first
        (autocomplete)."""
        words = tokens(prefix[:64])
        stem = words[-1] if words else ""
        return [w for w in await self._title_vocabulary() if w.startswith(stem)][:max(0, limit)]

    async def _title_vocabulary(self) -> list[str]:
        """The catalogue's title words, most frequent first; rebuilt when the
        catalogue changes (autocomplete, and a search's "did you mean")."""
        version = await self._ctx.store.catalogue_version()
        if self._vocabulary is None or self._vocabulary[0] != version:
            counts = Counter(
                w for title in await self._ctx.store.title_words()
                for w in tokens(title) if len(w) > 1 and _WORD.match(w) and not w.isdigit()
            )
            self._vocabulary = (version, [w for w, _ in sorted(counts.items(), key=lambda p: (-p[1], p[0]))])
        return self._vocabulary[1]


def _command_name(class_name: str) -> str:
    return {
        "Feeds": "feeds", "FeedAdd": "feed add", "FeedAction": "feed", "AnnounceHere": "announce",
        "AnnounceOff": "announce off", "FilterAdd": "filter", "FilterClear": "filter",
        "FilterList": "filter", "Status": "status",
        "AnnounceDigest": "announce digest", "AnnouncePace": "announce pace", "AnnounceCap": "announce cap",
        "AnnounceTest": "announce test", "TemplateList": "template", "TemplateUse": "template",
        "TemplateSet": "template", "TemplateReset": "template", "Preview": "preview",
        "FeedBackfill": "feed backfill",
    }.get(class_name, class_name.lower())
