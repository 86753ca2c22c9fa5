"""What a moderator shapes about one channel's announcements: its kinds
(added, replaced, removed), its feeds, mention and thread, template, pace,
daily cap and digest; a preview of the newest item as the channel would get
it, a real test post through the outbox, and backfilling a feed.

Every reply says what changed, before → after, and warns when the channel
stops being a moderators' channel (``alert`` leaves). Each change is one
``put_route`` of the whole route plus an audit row.
"""

from __future__ import annotations

from dataclasses import replace

from bot.commands.context import Context
from bot.commands.moderation import find_feed, parse_mention
from bot.commands.grammar import (
    AnnounceCap, AnnounceDigest, AnnounceHere, AnnounceOff, AnnouncePace, AnnounceTest, FeedBackfill, Preview,
    TemplateSet, TemplateUse,
)
from bot.config import parse_duration
from bot.errors import ConfigError, NotFound, SourceError, UserError
from bot.filters import make_item_filter
from bot.models import (
    Announcement, AnnouncementView, Caller, Destination, DestinationKind, DigestPeriod, Event, EventKind,
    EventPurpose, Item, Reply, ReplyKind, Route, ROUTE_KINDS, Segment, SegmentRole, StoredItem,
)
from bot.plan import plan_backfill
from bot.verdicts import ItemFate
from bot.presenter import present
from bot.replies import format_span, plural, reply_item
from bot.storage.records import QueuedDelivery, QueuedEvent, RouteSeed
from bot.templates import GALLERY, GALLERY_BY_NAME, PLACEHOLDERS, check_template

MAX_BACKFILL = 50
ALL_FEEDS = ("all", "any", "every")


# -- helpers -------------------------------------------------------------------------

def kinds_text(kinds: frozenset[EventKind]) -> str:
    return ", ".join(k.value for k in ROUTE_KINDS if k in kinds) or "nothing"


def feeds_text(feeds: frozenset[str]) -> str:
    return ", ".join(sorted(feeds)) if feeds else "every feed"


def every_text(seconds: int) -> str:
    return format_span(seconds)


def seed_of(route: Route) -> RouteSeed:
    return RouteSeed(route.platform, route.channel, route.kinds, route.mention, route.thread, route.feeds,
                     route.template, route.pace_s, route.daily_cap, route.digest)


async def channel_route(ctx: Context, caller: Caller) -> Route | None:
    return next((r for r in await ctx.store.list_routes()
                 if r.platform == caller.platform and r.channel == caller.channel), None)


async def _needs_route(ctx: Context, caller: Caller, what: str) -> Route:
    route = await channel_route(ctx, caller)
    if route is None:
        raise NotFound(f"Nothing is announced in this channel yet, so there is no {what} to set. "
                       "`announce <kinds> here` first (e.g. `announce episode video here`).")
    return route


def _parse_kinds(words: tuple[str, ...]) -> frozenset[EventKind]:
    """A moderator's kind words; "all" is every kind a route can select."""
    if any(w in ("all", "everything") for w in words):
        return frozenset(ROUTE_KINDS)
    names = {k.value: k for k in ROUTE_KINDS}
    kinds = set()
    for word in words:
        # "episodes" is what people type; the kind is "episode".
        kind = names.get(word) or (names.get(word[:-1]) if word.endswith("s") else None)
        if kind is None:
            raise UserError(f"“{word}” isn't a kind. Kinds are: {' '.join(names)} (or all).")
        kinds.add(kind)
    return frozenset(kinds)


async def _alert_warning(ctx: Context, caller: Caller, before: frozenset[EventKind],
                         after: frozenset[EventKind]) -> list[str]:
    if EventKind.ALERT in before and EventKind.ALERT not in after:
        others = [f"{r.platform.value} {r.channel}" for r in await ctx.store.list_routes()
                  if EventKind.ALERT in r.kinds and not r.broken
                  and not (r.platform == caller.platform and r.channel == caller.channel)]
        where = (f"they still go to {', '.join(others)}" if others
                 else "no channel gets them now: failing feeds and broken routes will go unnoticed")
        return [f"⚠ This channel no longer gets moderator alerts; {where}."]
    if EventKind.ALERT in after and EventKind.ALERT not in before:
        return ["This is now a moderators' channel: failing feeds and broken routes are told here."]
    return []


async def _save(ctx: Context, caller: Caller, seed: RouteSeed, action: str, detail: str) -> Route:
    route = await ctx.store.put_route(seed, ctx.clock())
    await ctx.store.add_audit(ctx.clock(), caller.platform, caller.user_id, action,
                              f"{caller.platform.value}:{caller.channel} {detail}")
    return route


def _reply(lines: list[str], kind: ReplyKind = "announce") -> Reply:
    return Reply(kind=kind, text="\n".join(lines), ephemeral=True)


# -- announce: kinds, feeds, mention, thread -----------------------------------------

async def announce_here(ctx: Context, caller: Caller, cmd: AnnounceHere) -> Reply:
    kinds = _parse_kinds(cmd.kinds)
    current = await channel_route(ctx, caller)
    before = current.kinds if current else frozenset()
    after = kinds if cmd.only else before | kinds
    old_feeds = current.feeds if current else frozenset()
    feeds = old_feeds
    notes: list[str] = []
    if cmd.feed is not None:
        if cmd.feed.casefold() in ALL_FEEDS:
            feeds = frozenset()
        else:
            source = await find_feed(ctx, cmd.feed)
            feeds = frozenset({source.name}) if cmd.only or not old_feeds else old_feeds | {source.name}
            if not cmd.only and current is not None and not old_feeds and before - kinds:
                notes.append(f"Feeds are the channel's, not a kind's: {kinds_text(before - kinds)} now comes "
                             f"only from {feeds_text(feeds)} too (`announce <kinds> from all here` undoes it).")
    mention = current.mention if current else None
    if cmd.mention is not None:
        mention = None if cmd.mention.casefold() in ("none", "off", "nobody") else parse_mention(cmd.mention)
    thread = cmd.thread if cmd.thread is not None else (current.thread if current else False)
    base = seed_of(current) if current else RouteSeed(caller.platform, caller.channel, frozenset())
    seed = replace(base, kinds=after, feeds=feeds, mention=mention, thread=thread)
    if current is not None and seed == seed_of(current):
        return _reply([f"Already announcing {kinds_text(after)} here from {feeds_text(feeds)}; nothing changed."])
    route = await _save(ctx, caller, seed, "announce",
                        f"{kinds_text(before)} -> {kinds_text(after)}; feeds {feeds_text(feeds)}"
                        + (f"; mention {mention}" if mention else "") + ("; thread" if thread else ""))
    lines = [f"Announcing here: {kinds_text(before)} → {kinds_text(route.kinds)}."]
    if feeds != old_feeds:
        lines.append(f"Feeds: {feeds_text(old_feeds)} → {feeds_text(feeds)}.")
    if current is None or mention != current.mention:
        if mention:
            lines.append(f"Each announcement mentions {mention}.")
        elif current is not None and current.mention:
            lines.append("Announcements no longer mention anyone.")
    if (current is None and thread) or (current is not None and thread != current.thread):
        lines.append("Each announcement gets a discussion thread." if thread else "No more discussion threads.")
    lines += notes + await _alert_warning(ctx, caller, before, route.kinds)
    return _reply(lines)


async def announce_off(ctx: Context, caller: Caller, cmd: AnnounceOff) -> Reply:
    current = await channel_route(ctx, caller)
    if current is None:
        raise NotFound("Nothing is announced in this channel.")
    remove = _parse_kinds(cmd.kinds) if cmd.kinds else current.kinds
    after = current.kinds - remove
    if after == current.kinds:
        return _reply([f"None of those are announced here; still announcing {kinds_text(after)}."])
    lines = [f"Announcing here: {kinds_text(current.kinds)} → {kinds_text(after)}."]
    if after:
        await _save(ctx, caller, replace(seed_of(current), kinds=after), "announce off",
                    f"{kinds_text(current.kinds)} -> {kinds_text(after)}")
    else:
        held = (await ctx.store.held_counts()).get(current.id, 0)
        await ctx.store.remove_route(caller.platform, caller.channel)
        await ctx.store.add_audit(ctx.clock(), caller.platform, caller.user_id, "announce off",
                                  f"{caller.platform.value}:{caller.channel}")
        lines = ["Stopped announcing here: " + f"{kinds_text(current.kinds)} → nothing."]
        if held:
            lines.append(f"The {plural(held, 'item')} held for this channel's digest won't be posted.")
    return _reply(lines + await _alert_warning(ctx, caller, current.kinds, after))


# -- flood control ----------------------------------------------------------------------

def _flow_text(route: Route | RouteSeed) -> str:
    parts = []
    if route.digest is not None:
        parts.append(f"a {route.digest.value} digest")
    if route.daily_cap is not None:
        parts.append(f"at most {plural(route.daily_cap, 'post')} a day")
    if route.pace_s:
        parts.append(f"one post every {every_text(route.pace_s)} at most")
    return ", ".join(parts) or "every item as it comes"


async def announce_digest(ctx: Context, caller: Caller, cmd: AnnounceDigest) -> Reply:
    current = await _needs_route(ctx, caller, "digest")
    held = (await ctx.store.held_counts()).get(current.id, 0)
    seed = replace(seed_of(current), digest=cmd.period)
    await _save(ctx, caller, seed, "announce digest", cmd.period.value if cmd.period else "off")
    lines = [f"This channel gets: {_flow_text(current)} → {_flow_text(seed)}."]
    if cmd.period is not None:
        when = "00:00 UTC every day" if cmd.period is DigestPeriod.DAILY else "Monday 00:00 UTC every week"
        lines.append(f"One message with the period's items goes out at {when}"
                     + (f"; the first {plural(seed.daily_cap, 'item')} a day still come one by one"
                        if seed.daily_cap is not None else "") + ". Alerts and test posts still come at once.")
    elif held:
        lines.append(f"The {plural(held, 'item')} held for the digest are posted now, one by one.")
        if ctx.on_queued is not None:
            ctx.on_queued()
    return _reply(lines)


async def announce_pace(ctx: Context, caller: Caller, cmd: AnnouncePace) -> Reply:
    current = await _needs_route(ctx, caller, "pace")
    pace_s = None
    if cmd.every is not None:
        try:
            pace_s = parse_duration(cmd.every, "pace")
        except ConfigError:
            raise UserError(f"A pace is an interval like `30s`, `5m` or `1h`, not “{cmd.every}”.") from None
    seed = replace(seed_of(current), pace_s=pace_s)
    await _save(ctx, caller, seed, "announce pace", f"{pace_s}s" if pace_s else "off")
    lines = [f"This channel gets: {_flow_text(current)} → {_flow_text(seed)}."]
    if pace_s:
        lines.append("A post that comes sooner waits its turn; nothing is dropped, and alerts don't wait.")
    return _reply(lines)


async def announce_cap(ctx: Context, caller: Caller, cmd: AnnounceCap) -> Reply:
    current = await _needs_route(ctx, caller, "daily cap")
    if cmd.per_day is not None and cmd.per_day < 1:
        raise UserError("A daily cap is at least 1 post (`announce cap off here` removes it).")
    seed = replace(seed_of(current), daily_cap=cmd.per_day)
    await _save(ctx, caller, seed, "announce cap", str(cmd.per_day) if cmd.per_day else "off")
    lines = [f"This channel gets: {_flow_text(current)} → {_flow_text(seed)}."]
    if cmd.per_day is not None:
        rest = (f"go into the {seed.digest.value} digest" if seed.digest is not None
                else "wait for the next day (00:00 UTC)")
        lines.append(f"Past {plural(cmd.per_day, 'post')} a day the rest {rest}; none is dropped, "
                     "and `status` shows what waits.")
    return _reply(lines)


# -- templates ----------------------------------------------------------------------------

def _template_name(text: str | None) -> str:
    for g in GALLERY:
        if g.text == text:
            return g.name
    return "custom"


def _template_text(text: str | None) -> str:
    if text is None:
        return "card (the default)"
    shown = text.replace("\n", "\\n")
    name = _template_name(text)
    return f"{name} (`{shown}`)" if name != "custom" else f"your own (`{shown}`)"


async def template_list(ctx: Context, caller: Caller) -> Reply:
    route = await channel_route(ctx, caller)
    lines = ["Templates (`template <name> here` uses one, `template set here <text>` writes your own):"]
    for g in GALLERY:
        text = f" — `{g.text}`".replace("\n", "\\n") if g.text else ""
        lines.append(f"• {g.name}: {g.about}{text}")
    lines.append("Placeholders: " + " ".join("{" + name + "}" for name in PLACEHOLDERS)
                 + ". Write \\n for a line break, {{ and }} for braces.")
    if route is not None:
        lines.append(f"Here: {_template_text(route.template)}.")
    return Reply(kind="template", text="\n".join(lines), ephemeral=True)


async def _set_template(ctx: Context, caller: Caller, text: str | None) -> Reply:
    current = await _needs_route(ctx, caller, "template")
    await _save(ctx, caller, replace(seed_of(current), template=text), "template", text or "card")
    lines = [f"Template here: {_template_text(current.template)} → {_template_text(text)}.",
             "`preview <feed> here` shows the newest item with it; `announce test here` posts one."]
    return Reply(kind="template", text="\n".join(lines), ephemeral=True)


async def template_use(ctx: Context, caller: Caller, cmd: TemplateUse) -> Reply:
    chosen = GALLERY_BY_NAME.get(cmd.name)
    if chosen is None:
        raise NotFound(f"There is no template “{cmd.name}”. Templates: {', '.join(g.name for g in GALLERY)} "
                       "(`template list` shows them).")
    return await _set_template(ctx, caller, chosen.text)


async def template_set(ctx: Context, caller: Caller, cmd: TemplateSet) -> Reply:
    return await _set_template(ctx, caller, check_template(cmd.text))


async def template_reset(ctx: Context, caller: Caller) -> Reply:
    return await _set_template(ctx, caller, None)


# -- see before it posts -------------------------------------------------------------------

def inert(view: AnnouncementView) -> AnnouncementView:
    """A preview is shown to one moderator: the role appears as text, pinging nobody."""
    body = tuple(Segment(f"@{s.text}", SegmentRole.LITERAL) if s.role is SegmentRole.MENTION else s
                 for s in view.body)
    return replace(view, body=body, mention=None)


def preview_view(stored: StoredItem, caller: Caller, route: Route | None, now_event: Event) -> AnnouncementView:
    announcement = Announcement(
        outbox_id=0, idempotency_key="preview", event=now_event,
        destination=Destination(caller.platform, DestinationKind.CHANNEL, caller.channel), item=stored,
        mention=route.mention if route else None, template=route.template if route else None,
    )
    return present(announcement)


def _event_for(stored: StoredItem, ctx: Context) -> Event:
    return Event(0, EventKind(stored.kind.value), stored.item.title, stored.item.link, ctx.clock(), stored.id)


async def preview(ctx: Context, caller: Caller, cmd: Preview) -> Reply:
    source = await find_feed(ctx, cmd.feed)
    newest = await ctx.store.feed_items(source.name, 1)
    if not newest:
        raise NotFound(f"“{source.name}” has no items stored yet; `feed test {source.name}` fetches it now.")
    stored = newest[0]
    route = await channel_route(ctx, caller) if cmd.here else None
    view = preview_view(stored, caller, route, _event_for(stored, ctx))
    if cmd.here and route is None:
        text = (f"The newest item of “{source.name}” with the default card: nothing is announced in this "
                "channel yet. Nothing was posted.")
    elif cmd.here:
        assert route is not None
        takes = route.takes(EventKind(stored.kind.value), source.name)
        note = "" if takes else (f" (this channel doesn't take {stored.kind.value}s from “{source.name}”, "
                                 "so it wouldn't get this one)")
        text = f"The newest item of “{source.name}” as this channel would get it{note}. Nothing was posted."
    else:
        text = f"The newest item of “{source.name}” with the default card. Nothing was posted."
    if view.mention or any(s.role is SegmentRole.MENTION for s in view.body):
        text += " The role is shown, not pinged."
    return Reply(kind="preview", text=text, items=(reply_item(stored),), announcement=inert(view), ephemeral=True)


def _newest(items: tuple[Item, ...]) -> Item | None:
    if not items:
        return None
    dated = [(i.published_at, n, i) for n, i in enumerate(items) if i.published_at is not None]
    # Undated feeds list newest first; among equal dates, the first listed.
    return max(dated, key=lambda d: (d[0], -d[1]))[2] if dated else items[0]


async def feed_test(ctx: Context, caller: Caller, name: str) -> Reply:
    """Fetch the feed now and show its newest item the way `preview` does
    (the default card), posting nothing."""
    source = await find_feed(ctx, name)
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
    stored = StoredItem(0, source.name, source.spec.content, "preview", item, ctx.clock())
    view = preview_view(stored, caller, None, _event_for(stored, ctx))
    return Reply(kind="preview",
                 text=f"The newest item of “{name}” as it would be announced{note}, with the default card. "
                      "Nothing was posted.",
                 items=(reply_item(stored),), announcement=inert(view), ephemeral=True)


async def announce_test(ctx: Context, caller: Caller, cmd: AnnounceTest) -> Reply:
    route = await _needs_route(ctx, caller, "test post to send")
    candidates = await ctx.store.latest_items(None, limit=100)
    if not candidates:
        raise NotFound("Nothing is stored yet to test with; the first poll of a feed fills the catalogue.")
    stored = next((s for s in candidates if route.takes(EventKind(s.kind.value), s.source_name)), candidates[0])
    source = await ctx.store.find_source(stored.source_name)
    event = QueuedEvent(
        EventKind(stored.kind.value), stored.item.title, stored.item.link or stored.item.enclosure_url, stored.id,
        source.id if source else None,
        (QueuedDelivery(Destination(route.platform, DestinationKind.CHANNEL, route.channel), route.id,
                        route.mention),),
        EventPurpose.TEST,
    )
    await ctx.store.queue_events([event], ctx.clock())
    await ctx.store.add_audit(ctx.clock(), caller.platform, caller.user_id, "announce test",
                              f"{caller.platform.value}:{caller.channel} item {stored.id}")
    if ctx.on_queued is not None:
        ctx.on_queued()
    return _reply([f"Posting a test of “{stored.item.title}” ({stored.kind.value} from {stored.source_name}) "
                   "here, through the outbox like a real announcement, with this channel's template. It is "
                   "marked as a test and mentions nobody."])


# -- backfill ------------------------------------------------------------------------------

async def feed_backfill(ctx: Context, caller: Caller, cmd: FeedBackfill) -> Reply:
    source = await find_feed(ctx, cmd.feed)
    if not 1 <= cmd.count <= MAX_BACKFILL:
        raise UserError(f"Backfill 1 to {MAX_BACKFILL} items at a time, not {cmd.count}.")
    items = await ctx.store.feed_items(source.name, cmd.count)
    if not items:
        raise NotFound(f"“{source.name}” has no items stored yet: nothing to backfill.")
    # A YouTube Short stored on a source with shorts = false is never
    # announced, by backfill either (its decision record says it is one).
    shorts = {i.id for i in items if i.item.video_id and await _is_short(ctx, i.id)}
    items = [i for i in items if i.id not in shorts]
    if not items:
        raise UserError(f"Nothing to backfill: the newest {plural(len(shorts), 'item')} of “{source.name}” "
                        "are all YouTube Shorts, which this feed doesn't announce (shorts = false).")
    routes = await ctx.store.list_routes()
    planned = plan_backfill(items, routes, source.id)
    kind = EventKind(source.spec.content.value)
    if not planned:
        raise UserError(f"No channel takes {kind.value}s from “{source.name}”, so there is nowhere to backfill "
                        f"to. `announce {kind.value} here` in the channel that should get them.")
    written = await ctx.store.queue_events(planned, ctx.clock())
    await ctx.store.add_audit(ctx.clock(), caller.platform, caller.user_id, "feed backfill",
                              f"{source.name} newest {cmd.count}: {len(written)} queued")
    if written and ctx.on_queued is not None:
        ctx.on_queued()
    where = sorted({f"{d.destination.platform.value} {d.destination.id}" for e in planned for d in e.deliveries})
    before = len(planned) - len(written)
    if not written:
        return _reply([f"The newest {plural(len(items), 'item')} of “{source.name}” were announced already; "
                       "nothing new was queued."], kind="feed")
    lines = [f"Queued {plural(len(written), 'item')} of “{source.name}” (oldest first) to {', '.join(where)}."]
    if before:
        lines.append(f"{plural(before, 'other was', 'others were')} announced before: not posted again.")
    if len(planned) < len(items):
        lines.append(f"{len(items) - len(planned)} left out: no channel takes them.")
    if shorts:
        lines.append(f"{plural(len(shorts), 'YouTube Short')} left out (the feed has shorts = false).")
    return _reply(lines, kind="feed")


async def _is_short(ctx: Context, item_id: int) -> bool:
    trail = await ctx.store.item_trail(item_id)
    return trail is not None and trail.verdict is not None and trail.verdict.fate is ItemFate.SHORT
