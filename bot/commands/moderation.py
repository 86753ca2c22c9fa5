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
from bot.commands.grammar import (
    AnnounceHere, AnnounceOff, FeedAction, FeedAdd, FilterAdd, FilterClear, FilterList,
)
from bot.config import check_url, parse_duration, parse_kinds, validate_name
from bot.detect import decide
from bot.errors import AlreadyExists, ConfigError, NotFound, SourceError, UserError
from bot.filters import compile_filter, make_item_filter
from bot.models import (
    Caller, ContentKind, EventKind, Item, ParsedFeed, Reply, ReplyItem, Source, SourceSpec,
)
from bot.replies import format_duration, trim
from bot.intents import FilterRule, PollState, SourceProgress
from bot.plan import plan_poll
from bot.storage.records import SourceFacts

DEFAULT_EVERY = "15m"
MIN_EVERY_S = 60
_AUDIO = (".mp3", ".m4a", ".aac", ".ogg", ".opus", ".wav", ".flac")


def _when(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "never"
    seconds = int((value - now).total_seconds())
    if abs(seconds) < 60:
        return "just now" if seconds <= 0 else "in under a minute"
    span = format_duration(abs(seconds) // 60 * 60).replace(" 00s", "")
    return f"in {span}" if seconds > 0 else f"{span} ago"


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
        every = format_duration(s.spec.every_s).replace(" 00s", "")
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
    every = format_duration(every_s).replace(" 00s", "")
    title = f" ({parsed.title.strip()})" if parsed.title.strip() else ""
    return Reply(
        kind="feed",
        text=f"Added “{name}”{title}: {kind.value}s, checked every {every}. Stored the {stored} "
             "items already there without announcing them; new ones will be announced.",
        ephemeral=True,
    )


async def _silent_first_sync(ctx: Context, source: Source, items: tuple[Item, ...], now: datetime) -> int:
    """Store what the preview fetched as the first poll: nothing announced
    (announce_on_first_poll is 0), and search sees the feed at once."""
    decision = decide(spec=source.spec, synced=False, known=[], fetched=items, now=now)
    progress = SourceProgress(polled_at=now, next_poll_at=now + timedelta(seconds=source.spec.every_s))
    write = await ctx.store.write_poll(source, plan_poll(decision, PollState()), progress)
    return len(write.new_items)


async def feed_action(ctx: Context, caller: Caller, cmd: FeedAction) -> Reply:
    if cmd.action == "test":
        return await _feed_test(ctx, cmd.name)
    if cmd.action == "remove":
        await ctx.store.remove_source(cmd.name)
        text = f"Removed “{cmd.name}” and the items it stored."
    else:
        paused = cmd.action == "pause"
        await ctx.store.set_paused(cmd.name, paused)
        text = f"Paused “{cmd.name}”." if paused else f"Resumed “{cmd.name}”: it is polled again."
    await _audit(ctx, caller, f"feed {cmd.action}", cmd.name)
    await _changed(ctx)
    return Reply(kind="feed", text=text, ephemeral=True)


def _newest(items: tuple[Item, ...]) -> Item | None:
    if not items:
        return None
    dated = [(i.published_at, n, i) for n, i in enumerate(items) if i.published_at is not None]
    # Undated feeds list newest first; among equal dates, the first listed.
    return max(dated, key=lambda d: (d[0], -d[1]))[2] if dated else items[0]


async def _feed_test(ctx: Context, name: str) -> Reply:
    source = await ctx.store.get_source(name)
    if source.spec.kind != "rss" or not source.spec.url:
        raise UserError(f"`feed test` works on RSS feeds; “{name}” is a {source.spec.kind} source.")
    if ctx.preview is None:
        raise UserError("Testing feeds from chat isn't available on this bot.")
    try:
        parsed = await ctx.preview(source.spec.url)
    except SourceError as exc:
        raise UserError(f"Fetching “{name}” failed: {exc}") from None
    item = _newest(parsed.items)
    if item is None:
        return Reply(kind="preview", text=f"“{name}” fetched fine but has no items yet.", ephemeral=True)
    allowed = make_item_filter(await ctx.store.load_filters(source.id))(item)
    note = "" if allowed else " (its filters would hold this one back)"
    preview = ReplyItem(
        title=item.title, url=item.link or item.enclosure_url, kind=source.spec.content.value,
        source=source.name, published_at=item.published_at, duration_s=item.duration_s,
        chapters=item.chapters, summary=trim(item.summary), image_url=item.image_url,
    )
    return Reply(kind="preview",
                 text=f"The newest item of “{name}” as it would be announced{note}. Nothing was posted.",
                 items=(preview,), ephemeral=True)


# -- routes -------------------------------------------------------------------------

_MENTION = re.compile(r"^(?:<@&(\d+)>|<!subteam\^([A-Za-z0-9]+)(?:\|[^>]*)?>|@?([A-Za-z0-9_.-]{1,64}))$")


def _mention(raw: str) -> str:
    m = _MENTION.match(raw)
    if m is None:
        raise UserError("Mention a role by its id or as a role mention, e.g. `mention 987654321`.")
    return next(g for g in m.groups() if g)


async def announce_here(ctx: Context, caller: Caller, cmd: AnnounceHere) -> Reply:
    words = list(cmd.kinds)
    if any(w in ("all", "everything") for w in words):
        words = [k.value for k in EventKind]
    try:
        kinds = parse_kinds(words, "kinds")
    except ConfigError:
        allowed = " ".join(k.value for k in EventKind)
        raise UserError(f"Kinds are: {allowed} (or all).") from None
    mention = _mention(cmd.mention) if cmd.mention else None
    await ctx.store.upsert_route(caller.platform, caller.channel, kinds, mention, ctx.clock(),
                                 thread=cmd.thread)
    listed = ", ".join(k.value for k in EventKind if k in kinds)
    await _audit(ctx, caller, "announce", f"{caller.platform.value}:{caller.channel} {listed}"
                 + (f" mention {mention}" if mention else "") + (" thread" if cmd.thread else ""))
    ping = f", mentioning {mention}" if mention else ""
    threads = ", each with a discussion thread" if cmd.thread else ""
    return Reply(kind="announce", text=f"Announcing {listed} here{ping}{threads}.", ephemeral=True)


async def announce_off(ctx: Context, caller: Caller, cmd: AnnounceOff) -> Reply:
    try:
        await ctx.store.remove_route(caller.platform, caller.channel)
    except NotFound:
        raise NotFound("Nothing is announced in this channel.") from None
    await _audit(ctx, caller, "announce off", f"{caller.platform.value}:{caller.channel}")
    return Reply(kind="announce", text="Stopped announcing here.", ephemeral=True)


# -- filters ------------------------------------------------------------------------

async def filter_add(ctx: Context, caller: Caller, cmd: FilterAdd) -> Reply:
    source = await ctx.store.get_source(cmd.feed)
    compile_filter(cmd.pattern)  # refuses what is unsafe or invalid, with the reason
    await ctx.store.add_filter(source.id, FilterRule(cmd.mode, cmd.pattern.strip()), ctx.clock(),
                             audit=(caller.platform, caller.user_id))
    verb = "only announce items matching" if cmd.mode == "include" else "hold back items matching"
    return Reply(kind="filter", text=f"“{source.name}” will {verb} {cmd.pattern.strip()}.", ephemeral=True)


async def filter_clear(ctx: Context, caller: Caller, cmd: FilterClear) -> Reply:
    source = await ctx.store.get_source(cmd.feed)
    removed = await ctx.store.clear_filters(source.id, ctx.clock(),
                                          audit=(caller.platform, caller.user_id))
    return Reply(kind="filter", ephemeral=True, text=f"Removed {removed} filter{'s' if removed != 1 else ''} "
                                     f"from “{source.name}”.")


async def filter_list(ctx: Context, cmd: FilterList) -> Reply:
    source = await ctx.store.get_source(cmd.feed)
    rules = await ctx.store.load_filters(source.id)
    if not rules:
        return Reply(kind="filter", text=f"“{source.name}” has no filters.", ephemeral=True)
    lines = [f"Filters of “{source.name}”:"] + [f"• {r.mode} {r.pattern}" for r in rules]
    return Reply(kind="filter", text="\n".join(lines), ephemeral=True)


# -- status -------------------------------------------------------------------------

async def status(ctx: Context) -> Reply:
    now = ctx.clock()
    sources = await ctx.store.list_sources()
    facts = await ctx.store.source_facts()
    lines = ["Feeds:" if sources else "No feeds are watched."]
    for s in sources:
        f = facts.get(s.id, SourceFacts(0, None))
        state = "paused" if s.paused else ("failing" if s.consecutive_failures else "ok")
        line = (f"• {s.name} [{state}]: last success {_when(s.last_success_at, now)}, "
                f"next poll {'paused' if s.paused else _when(s.next_poll_at, now)}, "
                f"{f.items} items, last announced {_when(f.last_announced_at, now)}")
        if s.last_error:
            line += (f"; last error {_when(s.last_error_at, now)}: {trim(s.last_error, 160)} "
                     f"({s.consecutive_failures} failures in a row)")
        lines.append(line)
    routes = await ctx.store.list_routes()
    lines.append("Routes:" if routes else "No routes: `announce <kinds> here` adds one.")
    for r in routes:
        kinds = ",".join(k.value for k in EventKind if k in r.kinds)
        health = f"broken: {r.broken_reason}" if r.broken else "fine"
        lines.append(f"• {r.platform.value} {r.channel} ({kinds}): {health}")
    if ctx.health is not None:
        adapters = ctx.health()
        if adapters:
            lines.append("Adapters: " + ", ".join(
                f"{name} {'up' if up else 'DOWN'}" for name, up in sorted(adapters.items())))
    return Reply(kind="status", text="\n".join(lines), ephemeral=True)
