"""Moderator commands. The dispatcher checks ``caller.is_moderator`` before
any of these run; each change writes an audit row and tells the scheduler
(``on_sources_changed``) so it takes effect without a restart. Routes and
filters are read from the database on every poll, so they need no signal.

An audit row is written right after the change it records (the Store's own
methods commit their change; the few changes made here write both in one
transaction)."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from bot.commands.context import Context
from bot.commands.grammar import FeedAction, FeedAdd, FilterAdd, FilterClear, FilterList
from bot.config import check_url, parse_duration, validate_name
from bot.detect import decide
from bot.errors import AlreadyExists, ConfigError, NotFound, SourceError, UserError
from bot.filters import compile_filter
from bot.models import (
    ROUTE_KINDS, Caller, ContentKind, EventKind, Item, ParsedFeed, Reply, Route, Source, SourceSpec,
)
from bot.outbox.flood import day_start
from bot.replies import format_span, plural, trim
from bot.intents import FilterRule, PollState, SourceProgress
from bot.plan import plan_poll
from bot.storage.records import RouteFacts, RouteTally, SourceFacts
from bot.templates import GALLERY

DEFAULT_EVERY = "15m"
MIN_EVERY_S = 60
_AUDIO = (".mp3", ".m4a", ".aac", ".ogg", ".opus", ".wav", ".flac")


def _when(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "never"
    seconds = int((value - now).total_seconds())
    if abs(seconds) < 60:
        return "just now" if seconds <= 0 else "in under a minute"
    span = format_span(abs(seconds) // 60 * 60)
    return f"in {span}" if seconds > 0 else f"{span} ago"


async def find_feed(ctx: Context, name: str) -> Source:
    """The named source, or a kind answer that lists what there is."""
    source = await ctx.store.find_source(name)
    if source is None:
        names = [s.name for s in await ctx.store.list_sources()]
        known = f" Feeds: {', '.join(names)}." if names else " No feeds are watched yet."
        raise NotFound(f"There is no feed named “{name}”.{known}")
    return source


_MENTION = re.compile(r"^(?:<@&(\d+)>|<!subteam\^([A-Za-z0-9]+)(?:\|[^>]*)?>|@?([A-Za-z0-9_.-]{1,64}))$")


def parse_mention(raw: str) -> str:
    m = _MENTION.match(raw)
    if m is None:
        raise UserError("Mention a role by its id or as a role mention, e.g. `mention 987654321`.")
    return next(g for g in m.groups() if g)


async def _audit(ctx: Context, caller: Caller, action: str, detail: str) -> None:
    await ctx.store.add_audit(ctx.clock(), caller.platform, caller.user_id, action, detail)


async def _changed(ctx: Context) -> None:
    if ctx.on_sources_changed is not None:
        await ctx.on_sources_changed()


# -- feeds --------------------------------------------------------------------------

async def feeds(ctx: Context) -> Reply:
    sources = await ctx.store.list_sources()
    if not sources:
        return Reply(kind="feeds", text="No feeds are watched. `feed add <url>` adds one.", ephemeral=True)
    lines = ["Watched feeds:"]
    for s in sources:
        where = s.spec.url or f"@{s.spec.handle}"
        state = " (paused)" if s.paused else ""
        every = format_span(s.spec.every_s)
        lines.append(f"• {s.name}{state}: {s.spec.content.value}, every {every} — {where}")
    return Reply(kind="feeds", text="\n".join(lines), ephemeral=True)


def slugify(title: str) -> str:
    """A feed title as a source name: ascii, lower case, '-' between words,
    cut at a word boundary to 40 characters."""
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(slug) > 40:
        slug = slug[:40].rsplit("-", 1)[0] or slug[:40]
    return slug


def infer_kind(url: str, feed: ParsedFeed) -> ContentKind:
    """YouTube -> video; audio enclosures (a podcast) -> episode; else article."""
    host = (urlsplit(url).hostname or "").lower()
    if host.endswith("youtube.com") or any(i.video_id for i in feed.items):
        return ContentKind.VIDEO
    audio = [i for i in feed.items if i.enclosure_url and (
        urlsplit(i.enclosure_url).path.lower().endswith(_AUDIO) or i.duration_s)]
    if feed.items and len(audio) * 2 >= len(feed.items):
        return ContentKind.EPISODE
    return ContentKind.ARTICLE


def _user_error(exc: ConfigError, what: str) -> UserError:
    message = str(exc).split(": ", 2)[-1]
    return UserError(f"{what}: {message}")


async def feed_add(ctx: Context, caller: Caller, cmd: FeedAdd) -> Reply:
    try:
        url = check_url(cmd.url, "url")
        every_s = parse_duration(cmd.every or DEFAULT_EVERY, "every")
    except ConfigError as exc:
        raise _user_error(exc, "I can't add that feed") from None
    if every_s < MIN_EVERY_S:
        raise UserError(f"Poll at most once a minute (`every 1m` or more), not every {cmd.every}.")
    if ctx.preview is None:
        raise UserError("Adding feeds from chat isn't available on this bot.")
    for existing in await ctx.store.list_sources():
        if existing.spec.url == url:
            raise AlreadyExists(f"That feed is already watched as “{existing.name}”.")
    try:
        parsed = await ctx.preview(url)
    except SourceError as exc:
        raise UserError(f"I didn't add {url}: {exc}. Nothing was saved.") from None
    if not parsed.items and not parsed.title.strip():
        raise UserError(f"I didn't add {url}: it has no title and no entries, so it doesn't look "
                        "like a feed. Nothing was saved.")
    name = cmd.name or slugify(parsed.title) or slugify(urlsplit(url).hostname or "") or "feed"
    try:
        validate_name(name, "name")
    except ConfigError:
        raise UserError(f"“{name}” can't be a feed name: use letters, digits, '-', '_' or '.' "
                        "(up to 64), e.g. `name podcast`.") from None
    if await ctx.store.find_source(name) is not None:
        raise AlreadyExists(f"A feed named “{name}” already exists; add `name <other>`.")
    kind = cmd.kind or infer_kind(url, parsed)
    now = ctx.clock()
    source = await ctx.store.add_source(
        SourceSpec(name=name, kind="rss", url=url, content=kind, every_s=every_s), now)
    stored = await _silent_first_sync(ctx, source, parsed.items, now)
    await _audit(ctx, caller, "feed add", f"{name} {url} as {kind.value} every {every_s}s")
    await _changed(ctx)
    every = format_span(every_s)
    title = f" ({parsed.title.strip()})" if parsed.title.strip() else ""
    text = (f"Added “{name}”{title}: {kind.value}s, checked every {every}. Stored the "
            f"{plural(stored, 'item')} already there without announcing them; new ones will be announced.")
    takers = [r for r in await ctx.store.list_routes() if not r.broken and r.takes(EventKind(kind.value), name)]
    if not takers:
        # The issue: a feed added as article where no route takes articles
        # announced nothing, and nothing said so.
        text += (f"\n⚠ No channel takes {kind.value}s from it yet, so nothing of “{name}” will be posted. "
                 f"`announce {kind.value} here` in the channel that should get them.")
    return Reply(kind="feed", text=text, ephemeral=True)


async def _silent_first_sync(ctx: Context, source: Source, items: tuple[Item, ...], now: datetime) -> int:
    """Store what the preview fetched as the first poll: nothing announced
    (announce_on_first_poll is 0), and search sees the feed at once."""
    decision = decide(spec=source.spec, synced=False, known=[], fetched=items, now=now)
    progress = SourceProgress(polled_at=now, next_poll_at=now + timedelta(seconds=source.spec.every_s))
    write = await ctx.store.write_poll(source, plan_poll(decision, PollState()), progress)
    return len(write.new_items)


async def feed_action(ctx: Context, caller: Caller, cmd: FeedAction) -> Reply:
    """remove | pause | resume (``test`` is bot.commands.routes.feed_test)."""
    source = await find_feed(ctx, cmd.name)
    if cmd.action == "remove":
        await ctx.store.remove_source(source.name)
        text = f"Removed “{source.name}” and the items it stored."
    else:
        paused = cmd.action == "pause"
        await ctx.store.set_paused(source.name, paused)
        text = f"Paused “{source.name}”." if paused else f"Resumed “{source.name}”: it is polled again."
    await _audit(ctx, caller, f"feed {cmd.action}", cmd.name)
    await _changed(ctx)
    return Reply(kind="feed", text=text, ephemeral=True)


# -- filters ------------------------------------------------------------------------

async def filter_add(ctx: Context, caller: Caller, cmd: FilterAdd) -> Reply:
    source = await find_feed(ctx, cmd.feed)
    compile_filter(cmd.pattern)  # refuses what is unsafe or invalid, with the reason
    try:
        await ctx.store.add_filter(source.id, FilterRule(cmd.mode, cmd.pattern.strip()), ctx.clock(),
                                   audit=(caller.platform, caller.user_id))
    except AlreadyExists:
        raise AlreadyExists(f"“{source.name}” already has that filter; `filter {source.name}` lists them.") from None
    verb = "only announce items matching" if cmd.mode == "include" else "hold back items matching"
    return Reply(kind="filter", text=f"“{source.name}” will {verb} {cmd.pattern.strip()}.", ephemeral=True)


async def filter_clear(ctx: Context, caller: Caller, cmd: FilterClear) -> Reply:
    source = await find_feed(ctx, cmd.feed)
    removed = await ctx.store.clear_filters(source.id, ctx.clock(),
                                          audit=(caller.platform, caller.user_id))
    return Reply(kind="filter", ephemeral=True, text=f"Removed {removed} filter{'s' if removed != 1 else ''} "
                                     f"from “{source.name}”.")


async def filter_list(ctx: Context, cmd: FilterList) -> Reply:
    source = await find_feed(ctx, cmd.feed)
    rules = await ctx.store.load_filters(source.id)
    if not rules:
        return Reply(kind="filter", text=f"“{source.name}” has no filters.", ephemeral=True)
    lines = [f"Filters of “{source.name}”:"] + [f"• {r.mode} {r.pattern}" for r in rules]
    return Reply(kind="filter", text="\n".join(lines), ephemeral=True)


# -- status -------------------------------------------------------------------------

def _failures(n: int) -> str:
    return plural(n, "failure") + " in a row"


async def status(ctx: Context) -> Reply:
    """Per feed: poll health, the last item detected and the last delivery,
    apart (an item can be found and never posted); per route: its settings,
    last delivery and what waits or is held; how the config file differs."""
    now = ctx.clock()
    sources = await ctx.store.list_sources()
    facts = await ctx.store.source_facts()
    lines = ["Feeds:" if sources else "No feeds are watched."]
    for s in sources:
        f = facts.get(s.id, SourceFacts(0, None))
        state = "paused" if s.paused else ("failing" if s.consecutive_failures else "ok")
        seen = _when(f.last_item_at, now) + (f" (“{trim(f.last_item_title, 60)}”)" if f.last_item_title else "")
        line = (f"• {s.name} [{state}]: last success {_when(s.last_success_at, now)}, "
                f"next poll {'paused' if s.paused else _when(s.next_poll_at, now)}, "
                f"{plural(f.items, 'item')}; last new item {seen}; last delivered {_when(f.last_delivered_at, now)}")
        if s.last_error:
            line += (f"; last error {_when(s.last_error_at, now)}: {trim(s.last_error, 160)} "
                     f"({_failures(s.consecutive_failures)})")
        lines.append(line)
    routes = await ctx.store.list_routes()
    route_facts = await ctx.store.route_facts(now)
    capped = [r.id for r in routes if r.daily_cap is not None]
    tallies = await ctx.store.route_tallies(capped, day_start(now)) if capped else {}
    lines.append("Routes:" if routes else "No routes: `announce <kinds> here` adds one.")
    for r in routes:
        lines.append(_route_line(r, route_facts.get(r.id, RouteFacts()), tallies, now))
    if ctx.drift is not None:
        drift = await ctx.drift()
        if drift:
            lines.append("The config file differs from the database (the database is what runs; "
                         "`showbot apply-config` makes it match the file):")
            lines += [f"• {d}" for d in drift]
    if ctx.health is not None:
        adapters = ctx.health()
        if adapters:
            lines.append("Adapters: " + ", ".join(
                f"{name} {'up' if up else 'DOWN'}" for name, up in sorted(adapters.items())))
    return Reply(kind="status", text="\n".join(lines), ephemeral=True)


def _route_line(r: Route, f: RouteFacts, tallies: dict[int, RouteTally], now: datetime) -> str:
    kinds = ", ".join(k.value for k in ROUTE_KINDS if k in r.kinds)
    what = kinds + (f"; from {', '.join(sorted(r.feeds))}" if r.feeds else "")
    health = f"broken: {r.broken_reason}" if r.broken else "fine"
    parts = [f"• {r.platform.value} {r.channel} ({what}): {health}", f"last delivered {_when(f.last_delivered_at, now)}"]
    if r.template is not None:
        parts.append("template " + next((g.name for g in GALLERY if g.text == r.template), "custom"))
    if r.pace_s:
        parts.append(f"pace {format_span(r.pace_s)}")
    if r.daily_cap is not None:
        used = tallies.get(r.id, RouteTally(0, None)).capped_since
        parts.append(f"{used} of {r.daily_cap} posts today")
    if r.digest is not None:
        parts.append(f"{r.digest.value} digest: {plural(f.held, 'item')} held for it")
    if f.queued:
        parts.append(f"{f.queued} to send")
    if f.waiting:
        why = ""
        if r.daily_cap is not None and tallies.get(r.id, RouteTally(0, None)).capped_since >= r.daily_cap:
            why = f", daily cap of {r.daily_cap} reached"
        parts.append(f"{f.waiting} waiting (next {_when(f.next_attempt_at, now)}{why})")
    return "; ".join(parts)
