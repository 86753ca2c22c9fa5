"""The status page's HTML, rendered on the server (pure: data -> text).

No script anywhere: forms are plain GETs (why, search) and one POST (log in
/ out); it reads on a phone (one column, tables scroll sideways). Every
value from a feed, a member or the database is escaped.
"""

from __future__ import annotations

import re
from datetime import datetime
from html import escape
from urllib.parse import quote_plus

from bot import charts
from bot.models import EventKind, Reply
from bot.storage.records import DeliveryTrail, OutboxStatus, SourceFacts
from bot.web import status, svg
from bot.web.status import StatusData
from bot.why import at

STYLE = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1a1a1a;background:#fafafa}
main{max-width:1000px;margin:0 auto;padding:12px}
h1{font-size:1.3em;margin:.3em 0}h2{font-size:1.1em;margin:1.4em 0 .4em;border-bottom:1px solid #ddd}
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:.92em}
th,td{text-align:left;padding:4px 6px;border-bottom:1px solid #eee;vertical-align:top}
.ok{color:#0a7a32}.bad{color:#b3261e;font-weight:600}.muted{color:#666}
form.inline{display:flex;gap:6px;flex-wrap:wrap;margin:.4em 0}
input[type=text],input[type=password]{flex:1;min-width:12em;padding:6px;font-size:1em}
button{padding:6px 12px;font-size:1em}
.answer{background:#fff;border:1px solid #ddd;padding:8px 10px;white-space:pre-wrap;word-wrap:break-word}
.chart{width:100%;max-width:640px;height:auto;background:#fff;border:1px solid #eee;margin:4px 0}
nav{display:flex;justify-content:space-between;align-items:center;flex-wrap:wrap}
"""

_URL = re.compile(r"https?://[^\s<>\"'’”)]+")


def _doc(title: str, body: str) -> str:
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>")


def linkify(text: str) -> str:
    """Escape ``text`` and make its URLs links (why answers carry message links)."""
    out, last = [], 0
    for m in _URL.finditer(text):
        url = m.group(0).rstrip(".,;:")
        out.append(escape(text[last:m.start()]))
        out.append(f'<a href="{escape(url)}" rel="noreferrer">{escape(url)}</a>')
        last = m.start() + len(url)
    out.append(escape(text[last:]))
    return "".join(out)


def when(value: datetime | None, now: datetime) -> str:
    if value is None:
        return '<span class="muted">never</span>'
    seconds = int((value - now).total_seconds())
    span = abs(seconds)
    text = (f"{span}s" if span < 120 else f"{span // 60}m" if span < 7200 else f"{span // 3600}h" if span < 172800
            else f"{span // 86400}d")
    rel = "now" if span < 1 else (f"in {text}" if seconds > 0 else f"{text} ago")
    return f'<time datetime="{value.isoformat()}" title="{at(value)}">{rel}</time>'


def login_page(error: str | None = None, *, refused: str | None = None) -> str:
    if refused:
        return _doc("showbot status", f"<h1>showbot status</h1><p class=\"bad\">{escape(refused)}</p>")
    note = f'<p class="bad" role="alert">{escape(error)}</p>' if error else ""
    return _doc("showbot: log in", f"""<h1>showbot status</h1>{note}
<form method="post" action="/login" class="inline"><label for="token">Token</label>
<input type="password" id="token" name="token" autocomplete="current-password" required autofocus>
<button type="submit">Log in</button></form>
<p class="muted">The token is SHOWBOT_WEB_TOKEN from the bot's environment.</p>""")


def _reply_html(reply: Reply, search_more: bool = False) -> str:
    parts = [f'<div class="answer" data-kind="{escape(reply.kind)}">{linkify(reply.text)}</div>']
    if reply.items:
        lis = []
        for item in reply.items:
            title = (f'<a href="{escape(item.url)}" rel="noreferrer">{escape(item.title)}</a>' if item.url
                     else escape(item.title))
            date = f" · {item.published_at:%Y-%m-%d}" if item.published_at else ""
            lis.append(f"<li>{title} <span class=\"muted\">({escape(item.kind)}, {escape(item.source)}{date})</span></li>")
        parts.append("<ol class=\"results\">" + "".join(lis) + "</ol>")
    if search_more and reply.more:
        more = reply.more.removeprefix("search ")
        parts.append(f'<p><a href="/?search={quote_plus(more)}">More results</a></p>')
    return "".join(parts)


def _feeds(d: StatusData) -> str:
    rows = []
    for s in d.sources:
        facts = d.facts.get(s.id, SourceFacts(0, None))
        last = d.activity.get(s.id)
        health = ('<span class="muted">paused</span>' if s.paused else
                  f'<span class="bad">failing ({s.consecutive_failures} in a row)</span>' if s.consecutive_failures
                  else '<span class="ok">ok</span>')
        error = f'<br><span class="muted">{escape(s.last_error[:200])}</span>' if s.last_error else ""
        newest = (f"{escape(last.last_item_title[:80])} <span class=\"muted\">({when(last.last_item_at, d.now)})</span>"
                  if last else '<span class="muted">none</span>')
        rows.append(
            f"<tr class=\"feed\"><td>{escape(s.name)}<br><span class=\"muted\">{escape(s.spec.content.value)}</span></td>"
            f"<td>{health}{error}</td><td>{when(s.last_polled_at, d.now)}</td>"
            f"<td>{'<span class=muted>paused</span>' if s.paused else when(s.next_poll_at, d.now)}</td>"
            f"<td>{s.consecutive_failures}</td><td>{newest}</td><td>{facts.items}</td></tr>")
    if not rows:
        return "<p>No feeds are watched.</p>"
    return ("<div class=\"scroll\"><table id=\"feeds\"><thead><tr><th>Feed</th><th>Health</th><th>Last poll</th>"
            "<th>Next poll</th><th>Failures in a row</th><th>Last new item</th><th>Items</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table></div>")


def _routes(d: StatusData) -> str:
    rows = []
    for r in d.routes:
        act = d.route_activity.get(r.id)
        kinds = ", ".join(k.value for k in EventKind if k in r.kinds)
        state = (f'<span class="bad">broken: {escape(r.broken_reason or "")}</span>' if r.broken
                 else '<span class="ok">fine</span>')
        rows.append(f"<tr><td>{escape(r.platform.value)} {escape(r.channel)}</td><td>{escape(kinds)}</td>"
                    f"<td>{state}</td><td>{when(act.last_sent_at if act else None, d.now)}</td>"
                    f"<td>{act.unsent if act else 0}</td><td>{act.failed if act else 0}</td></tr>")
    adapters = ", ".join(f"{escape(p)} <span class=\"{'ok' if up else 'bad'}\">{'connected' if up else 'DOWN'}</span>"
                         for p, up in sorted(d.adapters.items()))
    head = f"<p>Adapters: {adapters}</p>" if adapters else ""
    if not rows:
        return head + "<p>No routes: <code>announce &lt;kinds&gt; here</code> in a channel adds one.</p>"
    return head + ("<div class=\"scroll\"><table id=\"routes\"><thead><tr><th>Channel</th><th>Kinds</th><th>State</th>"
                   "<th>Last delivery</th><th>Unsent</th><th>Failed</th></tr></thead><tbody>"
                   + "".join(rows) + "</tbody></table></div>")


def _dest(t: DeliveryTrail) -> str:
    return f"{t.destination.platform.value} {t.destination.label}"


def _queue(d: StatusData) -> str:
    total = sum(d.unsent.values())
    per = ", ".join(f"{p.value}: {n}" for p, n in sorted(d.unsent.items(), key=lambda kv: kv[0].value))
    head = f"<p>{total} unsent" + (f" ({escape(per)})" if per else "") + ".</p>"
    if not d.queue:
        return head
    rows = [f"<tr><td>{t.outbox_id}</td><td>{escape(_dest(t))}</td><td>{escape(t.status.value)}</td>"
            f"<td>{t.attempts}</td><td>{when(t.next_attempt_at, d.now)}</td><td>{t.ahead}</td>"
            f"<td>{escape((t.last_error or '')[:160])}</td></tr>" for t in d.queue]
    return head + ("<div class=\"scroll\"><table id=\"queue\"><thead><tr><th>#</th><th>To</th><th>Status</th>"
                   "<th>Attempts</th><th>Next attempt</th><th>Ahead</th><th>Last error</th></tr></thead><tbody>"
                   + "".join(rows) + "</tbody></table></div>")


def _outcome(t: DeliveryTrail, now: datetime) -> str:
    if t.status is OutboxStatus.SENT:
        link = f' <a href="{escape(t.message_url)}" rel="noreferrer">message</a>' if t.message_url else ""
        return f'<span class="ok">sent</span> {when(t.sent_at, now)}{link}'
    if t.status is OutboxStatus.FAILED:
        return f'<span class="bad">failed</span>: {escape((t.last_error or "")[:160])}'
    return f"{escape(t.status.value)}" + (f": {escape(t.last_error[:120])}" if t.last_error else "")


def _announcements(d: StatusData) -> str:
    if not d.announcements:
        return "<p>Nothing announced yet.</p>"
    rows = []
    for e in d.announcements:
        title = (f'<a href="{escape(e.event.url)}" rel="noreferrer">{escape(e.event.title[:120])}</a>'
                 if e.event.url else escape(e.event.title[:120]))
        outcomes = "<br>".join(f"{escape(_dest(t))}: {_outcome(t, d.now)}" for t in e.deliveries) or \
            '<span class="muted">no destination</span>'
        why = (f' <a class="muted" href="/?why={quote_plus(e.event.url or e.event.title)}">why</a>'
               if e.event.item_id is not None else "")
        rows.append(f"<tr><td>{when(e.event.created_at, d.now)}</td><td>{escape(e.event.kind.value)}</td>"
                    f"<td>{title}{why}<br><span class=\"muted\">{escape(e.source)}</span></td><td>{outcomes}</td></tr>")
    return ("<div class=\"scroll\"><table id=\"announcements\"><thead><tr><th>When</th><th>Kind</th><th>What</th>"
            "<th>Per channel</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")


def _charts(d: StatusData) -> str:
    followers = d.profile.followers_daily if d.profile else []
    who = f"@{d.profile.handle} followers" if d.profile and d.profile.handle else "Followers"
    months = [(charts.month_label(m, i == 0), n) for i, (m, n) in enumerate(d.episodes_per_month)]
    cadence = [(c.source, c.per_week) for c in d.cadence]
    return (svg.line_chart(who, followers, empty="no follower history yet")
            + svg.bar_chart("Episodes per month", months, empty="no episodes in the last 12 months")
            + svg.hbar_chart("Items per week per feed (last 90 days)", cadence, empty="no feeds", unit="/wk"))


def status_page(d: StatusData, *, why_q: str = "", why: Reply | None = None, search_q: str = "",
                search: Reply | None = None, logout: bool = False) -> str:
    out = ['<nav><h1>showbot status</h1>']
    if logout:
        out.append('<form method="post" action="/logout"><button type="submit">Log out</button></form>')
    out.append(f'</nav><p class="muted">As of {at(d.now)}. Read-only.</p>')
    out.append(f"""<h2 id="why">Why wasn't it announced?</h2>
<form method="get" action="/" class="inline"><input type="text" name="why" aria-label="URL or title"
placeholder="An item's URL or title" value="{escape(why_q)}"><button type="submit">Why</button></form>""")
    if why is not None:
        out.append(_reply_html(why))
    out.append(f"""<h2 id="search">Search the catalogue</h2>
<form method="get" action="/" class="inline"><input type="text" name="search" aria-label="Search"
placeholder="e.g. postgres" value="{escape(search_q)}"><button type="submit">Search</button></form>""")
    if search is not None:
        out.append(_reply_html(search, search_more=True))
    out.append("<h2>Feeds</h2>" + _feeds(d))
    out.append("<h2>Routes</h2>" + _routes(d))
    out.append("<h2>Outbox</h2>" + _queue(d))
    out.append(f"<h2>Last announcements (up to {status.ANNOUNCEMENTS})</h2>" + _announcements(d))
    out.append("<h2>Stats</h2>" + _charts(d))
    return _doc("showbot status", "".join(out))

