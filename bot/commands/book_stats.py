"""`book` and `stats`: the creator's book and the community's numbers.

``stats`` draws a chart when matplotlib is installed (the ``charts`` extra),
off the event loop; without it, or if drawing fails, the answer is the same
text with no image.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from bot import charts
from bot.commands.context import Context
from bot.config import BookConfig
from bot.models import Reply, ReplyItem
from bot.detect import make_book_matcher, normalize_link
from bot.replies import format_date, format_duration, reply_item
from bot.storage.records import Cadence, ProfileStats

log = logging.getLogger("showbot.commands")

BOOK_NEWS_LIMIT = 5
BOOK_SCAN = 50  # candidate items read for `book`, newest first
WINDOWS = (7, 30)
CADENCE_DAYS = 90
MONTHS = 12


# -- book --------------------------------------------------------------------------

def _configured(book: BookConfig | None) -> bool:
    return book is not None and bool(book.title or book.keywords or book.links)


async def book(ctx: Context, config: BookConfig | None) -> Reply:
    if config is None or not _configured(config):
        return Reply(kind="book", text="No book is configured for this community yet. "
                                       "(A moderator can add a `[book]` section to the bot's config.)")
    title = config.title or (config.keywords[0] if config.keywords else "The book")
    lines = [f"📖 {title}"]
    if config.links:
        lines.append("Links: " + " · ".join(config.links))
    news = [ReplyItem(title=n.title, url=n.url, kind="book", source=n.source, published_at=n.at)
            for n in await ctx.store.book_news(BOOK_NEWS_LIMIT)]
    news = sorted(news + await _book_items(ctx, config, news), key=_newest_first)[:BOOK_NEWS_LIMIT]
    lines.append("Latest book news:" if news else "No book news yet.")
    return Reply(kind="book", text="\n".join(lines), items=tuple(news))


def _newest_first(item: ReplyItem) -> tuple[bool, float]:
    at = item.published_at
    return (at is None, -at.timestamp() if at is not None else 0.0)


async def _book_items(ctx: Context, config: BookConfig, news: list[ReplyItem]) -> list[ReplyItem]:
    """Stored items that are book news but were never announced as such:
    a first sync stores a feed's back catalogue silently, book episode and
    book article included (the issue: "No book news yet." beside both).
    Storage finds candidates by plain text; the book matcher decides."""
    words = [*config.keywords, *([config.title] if config.title else [])]
    links = [n for n in (normalize_link(u) for u in config.links) if n]
    candidates = await ctx.store.items_mentioning([*words, *links], limit=BOOK_SCAN)
    matches = make_book_matcher(words, config.links)
    seen = {n.url for n in news if n.url} | {n.title for n in news}
    out = []
    for stored in candidates:
        if not matches(stored.item):
            continue
        found = reply_item(stored)
        if found.url in seen or found.title in seen:
            continue  # announced already: its book event is listed
        seen |= {found.url or "", found.title}
        out.append(replace(found, kind="book", chapters=(), summary=""))
    return out


# -- stats -------------------------------------------------------------------------

def _signed(n: int) -> str:
    return f"+{n:,}" if n > 0 else f"{n:,}" if n < 0 else "±0"


def _profile_lines(profile: ProfileStats) -> list[str]:
    who = f"@{profile.handle}" if profile.handle else profile.source
    latest = profile.latest
    lines = [f"{who} on X (as of {format_date(latest.taken_at)}):"]
    no_history = all(b is None for b in profile.baselines.values())
    for label, attr in (("Followers", "followers"), ("Following", "following"), ("Posts", "posts")):
        value = getattr(latest, attr)
        if value is None:
            lines.append(f"• {label}: unknown")
            continue
        changes = []
        if not no_history:
            for days, base in profile.baselines.items():
                old = getattr(base, attr) if base is not None else None
                changes.append(f"{days} days: not enough history" if old is None
                               else f"{_signed(value - old)} in {days} days")
        lines.append(f"• {label}: {value:,}" + (f" ({', '.join(changes)})" if changes else ""))
    if no_history:
        windows = " and ".join(str(d) for d in profile.baselines)
        lines.append(f"Change over {windows} days: not enough history yet.")
    return lines


def _episode_lines(months: list[tuple[str, int]]) -> list[str]:
    total = sum(n for _, n in months)
    if total == 0:
        return [f"Episodes per month: none in the last {len(months)} months."]
    row = " · ".join(f"{charts.month_label(m, i == 0)}: {n}" for i, (m, n) in enumerate(months))
    return [f"Episodes per month, last {len(months)} months ({total} in all):", row]


def _cadence_lines(rows: list[Cadence]) -> list[str]:
    if not rows:
        return []
    lines = [f"Posting cadence (last {CADENCE_DAYS} days):"]
    for c in rows:
        state = " (paused)" if c.paused else ""
        if c.newest is None:
            lines.append(f"• {c.source} ({c.kind}){state}: nothing yet")
            continue
        rate = f"{c.per_week:.1f} a week" if c.recent else "nothing recent"
        lines.append(f"• {c.source} ({c.kind}){state}: {rate}, newest {format_date(c.newest)}")
    return lines


async def stats(ctx: Context) -> Reply:
    now = ctx.clock()
    store = ctx.store
    kinds = await store.kind_stats()
    profile = await store.profile_stats(now, WINDOWS)
    if not kinds and profile is None:
        return Reply(kind="stats", text="Nothing to count yet: no episodes, videos, articles or posts "
                                        "are stored and no profile is watched. Numbers appear after "
                                        "the first polls.")
    lines: list[str] = []
    if kinds:
        lines.append("The catalogue:")
        for r in kinds:
            span = f", {format_date(r.first)} to {format_date(r.last)}" if r.first else ""
            hours = f", {format_duration(r.total_duration_s)} in all" if r.total_duration_s else ""
            lines.append(f"• {r.count} {r.kind}{'s' if r.count != 1 else ''}{span}{hours}")
    else:
        lines.append("The catalogue is empty so far.")
    if profile is not None:
        lines += [""] + _profile_lines(profile)
    months = await store.episodes_per_month(now, MONTHS)
    lines += [""] + _episode_lines(months)
    cadence = _cadence_lines(await store.cadence(now, CADENCE_DAYS))
    if cadence:
        lines += [""] + cadence

    data = charts.StatsChartData(
        followers=tuple(profile.followers_daily) if profile else (),
        episodes_per_month=tuple(months),
        handle=profile.handle if profile else None,
    )
    image = await _chart(data)
    return Reply(kind="stats", text="\n".join(lines), image_path=image)


async def _chart(data: charts.StatsChartData) -> str | None:
    if data.empty():
        return None
    try:
        return await asyncio.to_thread(charts.render_stats_chart, data)
    except ImportError:
        return None  # matplotlib is optional: text only
    except Exception:
        log.warning("stats chart failed; answering with text only", exc_info=True)
        return None
