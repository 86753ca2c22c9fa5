"""Edits in place: an announcement already posted is changed, never posted again.

An edit is an event of kind ``edit`` whose payload (``EditSpec``) names
the announcement it edits (``edit_of``, an event id) and says what that
message shows NOW: the overrides of the original card (title, heading,
link, summary) and the links to the same release elsewhere ("Also on
YouTube"). Each edit carries the whole state, cumulative over the edits
before it, so delivering one is idempotent (PATCH the message to this)
and needs no history: the newest edit of a message wins, and an edit
delivered twice changes nothing.

Where it goes: one outbox row per destination the edited announcement was
queued to and not given up on (``plan_edit``), behind that announcement in
the destination's queue. The dispatcher waits for the post to exist, then
asks the adapter to edit the message by its stored id (``outbox.message_id``);
if the post was given up, held for a digest or deleted meanwhile, the edit
is given up with a log line and nothing is posted instead.

Pure data and pure functions; who decides an edit is due is the planner
(bot.plan: title edits, merges, a premiere going live or ending), which
builds every edit of one poll on the newest spec of its announcement, so
two changes in one poll never undo each other.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

# Why an announcement was edited (``EditSpec.change``): the ones the core
# makes, all planned in one place (bot.plan) so each builds on the others.
CHANGE_TITLE = "title"  # the item's title changed within [merge] window
CHANGE_MERGE = "merge"  # another source published the same release: its link is added
CHANGE_LIVE = "live"  # a followed premiere or stream started or ended


@dataclass(frozen=True, slots=True)
class AlsoLink:
    """The same release on another source: "YouTube" -> the video's URL."""

    label: str
    url: str


@dataclass(frozen=True, slots=True)
class EditSpec:
    """What an edited announcement shows now. ``None`` keeps the original's
    value (as the presenter makes it from the event and its item)."""

    edit_of: int  # the event id of the announcement edited
    change: str = CHANGE_TITLE
    title: str | None = None
    heading: str | None = None  # e.g. "Live now" (a premiere that started)
    url: str | None = None
    summary: str | None = None
    also: tuple[AlsoLink, ...] = ()
    # Merged items (their ids): the announcement stands for them too.
    merged_items: tuple[int, ...] = ()


def edit_payload(spec: EditSpec) -> dict[str, Any]:
    """The event payload of an edit (JSON-safe)."""
    out: dict[str, Any] = {"edit_of": spec.edit_of, "change": spec.change}
    for key in ("title", "heading", "url", "summary"):
        value = getattr(spec, key)
        if value is not None:
            out[key] = value
    if spec.also:
        out["also"] = [{"label": a.label, "url": a.url} for a in spec.also]
    if spec.merged_items:
        out["merged_items"] = list(spec.merged_items)
    return out


def parse_edit(payload: Mapping[str, Any]) -> EditSpec:
    """An edit event's payload back to an ``EditSpec``. ValueError when it
    names no event (not an edit's payload)."""
    edit_of = payload.get("edit_of")
    if isinstance(edit_of, bool) or not isinstance(edit_of, int):
        raise ValueError(f"not an edit payload: edit_of is {edit_of!r}")

    def text(key: str) -> str | None:
        value = payload.get(key)
        return value if isinstance(value, str) else None

    also = tuple(AlsoLink(str(a.get("label", "")), str(a.get("url", "")))
                 for a in payload.get("also") or () if isinstance(a, Mapping) and a.get("url"))
    merged = tuple(int(i) for i in payload.get("merged_items") or () if isinstance(i, int))
    return EditSpec(edit_of, str(payload.get("change") or CHANGE_TITLE), text("title"), text("heading"),
                    text("url"), text("summary"), also, merged)


def next_edit(previous: EditSpec | None, edit_of: int, change: str, *, title: str | None = None,
              heading: str | None = None, url: str | None = None, summary: str | None = None,
              also: AlsoLink | None = None, merged_item: int | None = None) -> EditSpec:
    """The edit after ``previous`` (the newest edit queued for that
    announcement, or None): what it showed, plus this change. Cumulative,
    so the message never loses an earlier edit's link or title."""
    base = previous if previous is not None and previous.edit_of == edit_of else EditSpec(edit_of)
    links = base.also
    if also is not None and all(a.url != also.url for a in links):
        links = (*links, also)
    merged = base.merged_items
    if merged_item is not None and merged_item not in merged:
        merged = (*merged, merged_item)
    return replace(
        base, change=change,
        title=title if title is not None else base.title,
        heading=heading if heading is not None else base.heading,
        url=url if url is not None else base.url,
        summary=summary if summary is not None else base.summary,
        also=links, merged_items=merged,
    )


def edit_note(spec: EditSpec, heading: str, title: str, url: str | None) -> str:
    """One line saying what changed, for a platform that can't edit (the
    console): "+ also on YouTube: <url>" or "(edited) New episode: <title> <url>"."""
    if spec.change == CHANGE_MERGE and spec.also:
        newest = spec.also[-1]
        return f"+ also on {newest.label}: {newest.url}"
    return f"(edited) {heading}: {title}" + (f" {url}" if url else "")
