"""Decision records: what became of each new item and each event, and why.

The pure deciders write them while they decide -- ``bot.detect.decide``
the fate of every new item (``ItemVerdict``), ``bot.plan.plan_poll`` where
every event went (``Routing``) -- and they travel in the ``PollIntent``.
Storage writes them with the poll, in the same transaction, and decides
nothing; ``bot.why`` reads them back to answer "why wasn't this announced?".

A record says what was decided and on what grounds at that moment: a filter
removed or a route added later doesn't change why an item was held then.
Items stored before these records existed have none (``why`` says so).

Plain data, serialised to JSON by ``to_json``/``*_from_json`` so every
backend stores the same text (a JSON column; JSONB in PostgreSQL).
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class ItemFate(enum.StrEnum):
    BASELINE = "baseline"  # stored at the source's first sync: what was there before we watched
    TOO_OLD = "too_old"  # new to us, but published before now - max_age
    FILTERED = "filtered"  # held back by a moderator's filter
    ANNOUNCED = "announced"  # events were made of it (see each event's Routing)
    # The same release as an announcement another source made within
    # [merge] window (bot.merge): that announcement was edited to add this
    # item's link. ``merged_into`` names it, ``merged_by`` says why ("title"
    # or "link"); a route that got none of the release's announcements still
    # gets this item's own event.
    MERGED = "merged"
    # Stored, its announcement waiting (bot.holds): until it has looked the
    # same for the source's ``settle``, and/or until a YouTube video can be
    # watched. A later poll releases it (the verdict is then rewritten).
    HELD = "held"
    SHORT = "short"  # a YouTube Short on a source with shorts = false: stored, never announced


@dataclass(frozen=True, slots=True)
class FilterHold:
    """Which filter held an item back."""

    mode: str  # "exclude": the rule in ``patterns`` matched; "include": none of ``patterns`` did
    patterns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ItemVerdict:
    fate: ItemFate
    first_sync: bool = False  # decided by the source's first successful poll
    announce_first: int = 0  # the source's announce_on_first_poll at that first sync
    max_age_s: int | None = None  # TOO_OLD: the limit...
    cutoff: datetime | None = None  # ...and the publication time it meant then
    held_by: FilterHold | None = None  # FILTERED
    merged_into: int | None = None  # MERGED: the event id
    merged_by: str | None = None  # MERGED: "title" (normalised titles match) or "link" (one links the other)
    held_until: datetime | None = None  # HELD while settling: announced then if nothing changes
    give_up_at: datetime | None = None  # HELD while not playable: announced then anyway
    # What a YouTube check found or why it could not tell (a Short, a
    # premiere, a failed HEAD): said as-is by `why`.
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Routing:
    """Where one event was queued, decided with the routes of that moment."""

    queued: tuple[int, ...] = ()  # route ids it was queued for
    direct: int = 0  # direct messages queued with it (members' subscriptions)
    broken: tuple[int, ...] = ()  # routes that take its kind but were broken: nothing queued there
    # Routes that take its kind but had this item already as an earlier
    # event of the same poll (book news first): one announcement per item.
    served: tuple[int, ...] = ()
    routes: int = 0  # routes that existed then (0: none at all)
    # Book news already announced within [book] window: this event follows
    # up on that one (its links join it) instead of being announced again.
    follow_up_of: int | None = None
    new_link: bool = False  # the follow-up brought a link the first one lacked (else nothing is sent)
    # An edit (bot.edits): the announcement it changes in place, and why
    # ("title", "merge", ...). Its rows go where that announcement went.
    edit_of: int | None = None
    change: str | None = None
    # An item's own event when it was merged: the announcement of its
    # release it joined (the routes that got that one were edited instead).
    merged_into: int | None = None


# -- JSON (every backend stores the same text) ------------------------------------


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def verdict_to_json(v: ItemVerdict) -> str:
    out: dict[str, Any] = {"fate": v.fate.value}
    if v.first_sync:
        out["first_sync"] = True
        out["announce_first"] = v.announce_first
    if v.max_age_s is not None:
        out["max_age_s"] = v.max_age_s
        out["cutoff"] = _time(v.cutoff)
    if v.held_by is not None:
        out["held_by"] = {"mode": v.held_by.mode, "patterns": list(v.held_by.patterns)}
    if v.merged_into is not None:
        out["merged_into"] = v.merged_into
    if v.merged_by is not None:
        out["merged_by"] = v.merged_by
    if v.held_until is not None:
        out["held_until"] = _time(v.held_until)
    if v.give_up_at is not None:
        out["give_up_at"] = _time(v.give_up_at)
    if v.note:
        out["note"] = v.note
    return json.dumps(out, ensure_ascii=False)


def verdict_from_json(text: str | None) -> ItemVerdict | None:
    if not text:
        return None
    raw = json.loads(text)
    held = raw.get("held_by")
    cutoff = raw.get("cutoff")
    return ItemVerdict(
        fate=ItemFate(raw["fate"]), first_sync=bool(raw.get("first_sync")),
        announce_first=int(raw.get("announce_first", 0)), max_age_s=raw.get("max_age_s"),
        cutoff=datetime.fromisoformat(cutoff) if cutoff else None,
        held_by=FilterHold(held["mode"], tuple(held["patterns"])) if held else None,
        merged_into=raw.get("merged_into"), merged_by=raw.get("merged_by"),
        held_until=_parse_time(raw.get("held_until")), give_up_at=_parse_time(raw.get("give_up_at")),
        note=raw.get("note"),
    )


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def routing_to_json(r: Routing) -> str:
    out: dict[str, Any] = {"queued": list(r.queued), "routes": r.routes}
    for key in ("broken", "served"):
        if getattr(r, key):
            out[key] = list(getattr(r, key))
    if r.direct:
        out["direct"] = r.direct
    if r.follow_up_of is not None:
        out["follow_up_of"] = r.follow_up_of
        out["new_link"] = r.new_link
    if r.edit_of is not None:
        out["edit_of"] = r.edit_of
        out["change"] = r.change
    if r.merged_into is not None:
        out["merged_into"] = r.merged_into
    return json.dumps(out)


def routing_from_json(text: str | None) -> Routing | None:
    if not text:
        return None
    raw = json.loads(text)
    return Routing(
        queued=tuple(raw.get("queued", ())), direct=int(raw.get("direct", 0)),
        broken=tuple(raw.get("broken", ())), served=tuple(raw.get("served", ())),
        routes=int(raw.get("routes", 0)), follow_up_of=raw.get("follow_up_of"),
        new_link=bool(raw.get("new_link")),
        edit_of=raw.get("edit_of"), change=raw.get("change"), merged_into=raw.get("merged_into"),
    )
