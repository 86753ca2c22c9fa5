"""The config file and the database: how they differ (pure), and making
the database match the file (``apply_config``, the one function here that
writes).

The file seeds the database once (``Storage.seed``); after that moderators
change sources and routes from chat and the database is what runs. That
used to be said only in a comment, so an edit to config.toml after the
first start was silently ignored. Now every difference is found here, and
the app logs it at start, `status` and `showbot check` show it, and
`showbot apply-config` makes the database match the file (operators who
manage the bot as code).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Sequence

from bot.config import Config, RouteSpec
from bot.models import ROUTE_KINDS, Platform, Route, Source, SourceSpec
from bot.replies import format_span
from bot.storage.records import RouteSeed

if TYPE_CHECKING:
    from bot.storage import Storage

SOURCE_FIELDS = ("kind", "url", "content", "every_s", "announce_on_first_poll", "max_age_s", "handle",
                 "provider", "api_base_url")
ROUTE_FIELDS = ("kinds", "mention", "thread", "feeds", "template", "pace_s", "daily_cap", "digest")
# How a field is called in config.toml.
_KEYS = {"every_s": "every", "max_age_s": "max_age", "pace_s": "pace"}


class Change(enum.StrEnum):
    ONLY_IN_FILE = "only in the file"
    ONLY_IN_DATABASE = "only in the database"
    DIFFERS = "differs"


@dataclass(frozen=True, slots=True)
class Difference:
    what: str  # "source" | "route"
    name: str  # the source's name; "platform channel" for a route
    change: Change
    fields: tuple[tuple[str, str, str], ...] = ()  # (config key, in the file, in the database)

    @property
    def text(self) -> str:
        label = f"{self.what} “{self.name}”"
        if self.change is Change.ONLY_IN_FILE:
            return f"{label} is in the file, not in the database"
        if self.change is Change.ONLY_IN_DATABASE:
            return f"{label} is in the database only (added from chat?), not in the file"
        return f"{label} differs: " + "; ".join(f"{key} is {file} in the file, {db} in the database"
                                                for key, file, db in self.fields)


def route_seed(spec: RouteSpec) -> RouteSeed:
    return RouteSeed(spec.platform, spec.channel, spec.kinds, spec.mention, spec.thread, spec.feeds,
                     spec.template, spec.pace_s, spec.daily_cap, spec.digest)


def seed_of_route(route: Route) -> RouteSeed:
    return RouteSeed(route.platform, route.channel, route.kinds, route.mention, route.thread, route.feeds,
                     route.template, route.pace_s, route.daily_cap, route.digest)


def _show(field: str, value: Any) -> str:
    if value is None:
        return "not set"
    if isinstance(value, frozenset):
        if field == "kinds":
            return "[" + ", ".join(k.value for k in ROUTE_KINDS if k in value) + "]"
        return "[" + ", ".join(sorted(value)) + "]" if value else "every feed"
    if isinstance(value, bool):
        return "true" if value else "false"
    if field.endswith("_s") and isinstance(value, int):
        return format_span(value)
    if hasattr(value, "value"):
        return str(value.value)
    return repr(value) if isinstance(value, str) else str(value)


def _fields(file: Any, db: Any, names: Sequence[str]) -> tuple[tuple[str, str, str], ...]:
    return tuple((_KEYS.get(n, n), _show(n, getattr(file, n)), _show(n, getattr(db, n)))
                 for n in names if getattr(file, n) != getattr(db, n))


def source_differences(file: Sequence[SourceSpec], db: Sequence[Source]) -> list[Difference]:
    stored = {s.name: s.spec for s in db}
    out = []
    for spec in file:
        have = stored.pop(spec.name, None)
        if have is None:
            out.append(Difference("source", spec.name, Change.ONLY_IN_FILE))
        elif fields := _fields(spec, have, SOURCE_FIELDS):
            out.append(Difference("source", spec.name, Change.DIFFERS, fields))
    out += [Difference("source", name, Change.ONLY_IN_DATABASE) for name in sorted(stored)]
    return out


def route_differences(file: Sequence[RouteSpec], db: Sequence[Route]) -> list[Difference]:
    stored = {(r.platform, r.channel): seed_of_route(r) for r in db}
    out = []
    for spec in file:
        name = f"{spec.platform.value} {spec.channel}"
        have = stored.pop((spec.platform, spec.channel), None)
        if have is None:
            out.append(Difference("route", name, Change.ONLY_IN_FILE))
        elif fields := _fields(route_seed(spec), have, ROUTE_FIELDS):
            out.append(Difference("route", name, Change.DIFFERS, fields))
    out += [Difference("route", f"{p.value} {c}", Change.ONLY_IN_DATABASE) for p, c in sorted(stored)]
    return out


def config_drift(config: Config, sources: Sequence[Source], routes: Sequence[Route]) -> list[Difference]:
    """Every way the database's sources and routes differ from ``config``'s."""
    return source_differences(config.sources, sources) + route_differences(config.routes, routes)


async def apply_config(store: "Storage", config: Config, now: datetime) -> list[str]:
    """Make the database's sources and routes what ``config`` says, one
    change at a time (each its own transaction, each audited); returns a
    line per change, in the order made. Removing a source removes its items."""
    changes: list[str] = []
    file_sources = {s.name: s for s in config.sources}
    file_routes = {(r.platform, r.channel): r for r in config.routes}
    for diff in config_drift(config, await store.list_sources(), await store.list_routes()):
        if diff.what == "source":
            if diff.change is Change.ONLY_IN_FILE:
                await store.add_source(file_sources[diff.name], now)
                line = f"added source “{diff.name}” (its first poll stores what is there, announcing nothing)"
            elif diff.change is Change.ONLY_IN_DATABASE:
                await store.remove_source(diff.name)
                line = f"removed source “{diff.name}” and the items it stored"
            else:
                await store.update_source(file_sources[diff.name])
                line = "updated " + diff.text.replace(" differs: ", ": ", 1)
        else:
            platform, _, channel = diff.name.partition(" ")
            key = (Platform(platform), channel)
            if diff.change is Change.ONLY_IN_DATABASE:
                await store.remove_route(*key)
                line = f"removed route “{diff.name}”"
            else:
                await store.put_route(route_seed(file_routes[key]), now)
                line = (f"added route “{diff.name}”" if diff.change is Change.ONLY_IN_FILE
                        else "updated " + diff.text.replace(" differs: ", ": ", 1))
        await store.add_audit(now, Platform.CONSOLE, "apply-config", "apply-config", line)
        changes.append(line)
    return changes
