"""The TOML config: read with tomllib, validated once at start.

Every error names the key and the bad value (``ConfigError``). Secrets never
come from the file: only from the environment, through ``Secrets``.
"""

from __future__ import annotations

import enum
import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from bot.errors import ConfigError, ShowbotError
from bot.models import ContentKind, DigestPeriod, EventKind, Platform, SourceSpec
from bot.templates import check_template

DEFAULT_CONFIG = Path("config.toml")
EXAMPLE_CONFIG = Path("config.example.toml")

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def parse_duration(value: object, key: str) -> int:
    """'15m' -> 900. Plain integers are seconds."""
    if isinstance(value, bool):
        raise ConfigError(key, f"expected a duration like '15m', got {value!r}")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = int(m.group(1)) * _UNIT_S[m.group(2)]
    else:
        raise ConfigError(key, f"expected a duration like '30s', '15m', '6h' or '1d', got {value!r}")
    if seconds <= 0:
        raise ConfigError(key, f"must be positive, got {value!r}")
    return seconds


def validate_name(name: object, key: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            key, f"expected a short name of letters, digits, '-', '_' or '.', got {name!r}"
        )
    return name


@dataclass(frozen=True, slots=True)
class RouteSpec:
    platform: Platform
    channel: str
    kinds: frozenset[EventKind]
    mention: str | None = None
    thread: bool = False
    feeds: frozenset[str] = frozenset()  # route by feed as well as by kind; empty: every feed
    template: str | None = None  # bot.templates syntax; None: the default card
    pace_s: int | None = None
    daily_cap: int | None = None
    digest: DigestPeriod | None = None


@dataclass(frozen=True, slots=True)
class XSourceOptions:
    """Options of an ``x`` source that live in the config file only."""

    profile_every_s: int = 86400  # a user read costs ~$0.010: daily by default
    milestones: tuple[int, ...] = ()  # explicit follower thresholds...
    milestone_every: int = 10_000  # ...or one every N followers (used when the list is empty)


@dataclass(frozen=True, slots=True)
class SourceOptions:
    """Per-source options that live in the config file only (a feed added
    from chat gets the defaults): how an item is held before it is announced."""

    # Announce an item only once it has looked the same (title, link,
    # summary...) for this long: for hosts who publish, then fix the title.
    settle_s: int | None = None
    # YouTube: announce Shorts too. False (the default): a Short is stored
    # and searchable, never announced.
    shorts: bool = False


YOUTUBE_BASE = "https://www.youtube.com"
YOUTUBE_API = "https://www.googleapis.com/youtube/v3"


@dataclass(frozen=True, slots=True)
class YouTubeConfig:
    """``[youtube]``: where every YouTube address the bot builds points
    (/watch, /shorts/, playlist feeds) and the Data API it asks about
    premieres and live streams; tests point both at 127.0.0.1."""

    base_url: str = YOUTUBE_BASE
    api_base_url: str = YOUTUBE_API
    # A video that is not watchable yet (a premiere, a scheduled stream) is
    # held at most this long, then announced anyway.
    hold_unplayable_s: int = 48 * 3600


@dataclass(frozen=True, slots=True)
class BookConfig:
    title: str = ""
    keywords: tuple[str, ...] = ()
    links: tuple[str, ...] = ()


DISCORD_API = "https://discord.com/api/v10"
DISCORD_GATEWAY = "wss://gateway.discord.gg"
SLACK_API = "https://slack.com/api/"
USER_AGENT = "showbot/0.1 (self-hosted community feed bot)"
MAX_BODY_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class DiscordConfig:
    api_base_url: str = DISCORD_API
    gateway_url: str = DISCORD_GATEWAY
    moderator_role_ids: tuple[str, ...] = ()
    dev_guild_ids: tuple[str, ...] = ()
    # Gateway shards. Each instance connects at most one, taken by lease
    # (bot.shards), unless shard_id fixes it; instances without one deliver
    # over REST only.
    shard_count: int = 1
    shard_id: int | None = None


@dataclass(frozen=True, slots=True)
class SlackConfig:
    mode: str = "socket"
    port: int = 3000
    path: str = "/slack/events"
    api_base_url: str = SLACK_API
    admin_user_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MergeConfig:
    """``[merge]``: the same release on several sources is one announcement,
    edited (bot.merge), and titles fixed within the window edit theirs."""

    enabled: bool = True
    window_s: int = 48 * 3600
    # Names stripped from titles before comparing them ("| The Backend
    # Engineering Show"); each polled feed's own title is stripped too.
    show_names: tuple[str, ...] = ()

    @property
    def edit_window_s(self) -> int:
        """How far back announcements may be edited: 0 when merging is off."""
        return self.window_s if self.enabled else 0


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """``[delivery]``: how the outbox retries and shares work (bot.outbox.DeliveryPolicy)."""

    concurrency: int = 50
    retry_base_s: int = 5
    retry_cap_s: int = 3600
    probe_every_s: int = 15
    lease_s: int = 60


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """``[http]``: the operators' HTTP server (/healthz, /readyz, /metrics and
    the moderators' status page at /). Off unless ``port`` is set."""

    port: int | None = None
    bind: str = "127.0.0.1"

    @property
    def enabled(self) -> bool:
        return self.port is not None


LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")


@dataclass(frozen=True, slots=True)
class LogConfig:
    """``[log]``: how much ``showbot run`` logs, as text or one JSON object a line."""

    level: str = "info"
    format: str = "text"


@dataclass(frozen=True, slots=True)
class SearchConfig:
    """``[search]``: semantic = false keeps search lexical (no model loaded)."""

    semantic: bool = True


@dataclass(frozen=True, slots=True)
class Secrets:
    """Tokens, read from the environment only. Never logged (repr hides them)."""

    discord_token: str | None = field(default=None, repr=False)
    slack_bot_token: str | None = field(default=None, repr=False)
    slack_app_token: str | None = field(default=None, repr=False)
    slack_signing_secret: str | None = field(default=None, repr=False)
    x_bearer_token: str | None = field(default=None, repr=False)
    # A database URL may hold a password: only ever from the environment.
    database_url: str | None = field(default=None, repr=False)
    # The status page's login token (SHOWBOT_WEB_TOKEN).
    web_token: str | None = field(default=None, repr=False)
    # The YouTube Data API key (YOUTUBE_API_KEY): premieres and live streams.
    youtube_api_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Secrets":
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        return cls(
            discord_token=get("DISCORD_TOKEN"),
            slack_bot_token=get("SLACK_BOT_TOKEN"),
            slack_app_token=get("SLACK_APP_TOKEN"),
            slack_signing_secret=get("SLACK_SIGNING_SECRET"),
            x_bearer_token=get("X_BEARER_TOKEN"),
            database_url=get("SHOWBOT_DATABASE_URL"),
            web_token=get("SHOWBOT_WEB_TOKEN"),
            youtube_api_key=get("YOUTUBE_API_KEY"),
        )

    def values(self) -> tuple[str, ...]:
        """Every secret that is set: what log redaction looks for."""
        return tuple(v for v in (self.discord_token, self.slack_bot_token, self.slack_app_token,
                                 self.slack_signing_secret, self.x_bearer_token, self.database_url,
                                 self.web_token, self.youtube_api_key) if v)


@dataclass(frozen=True, slots=True)
class Config:
    storage_path: Path = Path("data/showbot.db")
    storage_url: str | None = None  # postgresql://host:5432/db (no password: SHOWBOT_DATABASE_URL)
    allow_private_addresses: bool = False
    timeout_s: float = 20.0
    max_body_bytes: int = MAX_BODY_BYTES
    user_agent: str = USER_AGENT
    failure_alert_after: int = 5
    sources: tuple[SourceSpec, ...] = ()
    x_options: Mapping[str, XSourceOptions] = field(default_factory=dict)
    # settle / shorts per source name (absent: the defaults)
    source_options: Mapping[str, SourceOptions] = field(default_factory=dict)
    youtube: YouTubeConfig = YouTubeConfig()
    book_window_s: int = 3 * 86400
    routes: tuple[RouteSpec, ...] = ()
    book: BookConfig = BookConfig()
    discord: DiscordConfig = DiscordConfig()
    slack: SlackConfig = SlackConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    merge: MergeConfig = MergeConfig()
    http: HttpConfig = HttpConfig()
    log: LogConfig = LogConfig()
    search: SearchConfig = SearchConfig()
    origin: Path | None = None  # the file this was read from


def _table(raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(key, f"expected a table [{key}], got {value!r}")
    return value


def _str(table: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str | None:
    value = table.get(key, default)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}.{key}", f"expected a string, got {value!r}")
    return value


def _bool(table: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}.{key}", f"expected true or false, got {value!r}")
    return value


def _int(table: Mapping[str, Any], key: str, where: str, default: int, minimum: int = 0) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where}.{key}", f"expected a whole number >= {minimum}, got {value!r}")
    return value


def _str_list(table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list):
        raise ConfigError(f"{where}.{key}", f"expected a list, got {value!r}")
    out = []
    for v in value:
        # Discord/Slack ids are often written as numbers; accept both.
        if isinstance(v, bool) or not isinstance(v, (str, int)):
            raise ConfigError(f"{where}.{key}", f"expected strings, got {v!r}")
        out.append(str(v))
    return tuple(out)


def _enum(enum_cls: type[enum.Enum], value: object, key: str) -> Any:
    try:
        return enum_cls(value)
    except ValueError:
        allowed = " | ".join(m.value for m in enum_cls)
        raise ConfigError(key, f"expected one of {allowed}, got {value!r}") from None


def check_url(value: object, key: str) -> str:
    if not isinstance(value, str) or not re.match(r"^https?://[^\s/]+", value):
        raise ConfigError(key, f"expected an http(s) URL, got {value!r}")
    return value


def parse_source(raw: Mapping[str, Any], where: str) -> SourceSpec:
    if not isinstance(raw, dict):
        raise ConfigError(where, f"expected a table, got {raw!r}")
    known = {
        "name", "kind", "url", "content", "every", "announce_on_first_poll", "max_age",
        "handle", "provider", "api_base_url", "profile_every", "milestones", "milestone_every",
        "settle", "shorts",
    }
    for k in raw:
        if k not in known:
            raise ConfigError(f"{where}.{k}", f"unknown key (known: {', '.join(sorted(known))})")
    name = validate_name(raw.get("name"), f"{where}.name")
    kind = raw.get("kind", "rss")
    if kind not in ("rss", "x"):
        raise ConfigError(f"{where}.kind", f"expected rss | x, got {kind!r}")
    url = _str(raw, "url", where)
    handle = _str(raw, "handle", where)
    provider = _str(raw, "provider", where)
    api_base_url = _str(raw, "api_base_url", where)
    if kind == "rss":
        url = check_url(url, f"{where}.url")
        content = _enum(ContentKind, raw.get("content", "article"), f"{where}.content")
    else:
        if not handle or not re.match(r"^@?[A-Za-z0-9_]{1,15}$", handle):
            raise ConfigError(f"{where}.handle", f"expected an X handle like 'hnasr', got {handle!r}")
        handle = handle.lstrip("@")
        provider = provider or "api"
        if provider not in ("api", "rss", "snapshot"):
            raise ConfigError(f"{where}.provider", f"expected api | rss | snapshot, got {provider!r}")
        if provider in ("rss", "snapshot") and not url:
            raise ConfigError(f"{where}.url", f"provider {provider!r} needs a url")
        if api_base_url is not None:
            check_url(api_base_url, f"{where}.api_base_url")
        content = _enum(ContentKind, raw.get("content", "post"), f"{where}.content")
    return SourceSpec(
        name=name,
        kind=kind,
        url=url,
        content=content,
        every_s=parse_duration(raw.get("every", "15m"), f"{where}.every"),
        announce_on_first_poll=_int(raw, "announce_on_first_poll", where, 0),
        max_age_s=parse_duration(raw.get("max_age", "7d"), f"{where}.max_age"),
        handle=handle,
        provider=provider if kind == "x" else None,
        api_base_url=api_base_url,
    )


def parse_x_options(raw: Mapping[str, Any], where: str) -> XSourceOptions:
    milestones = raw.get("milestones", [])
    if not isinstance(milestones, list) or any(
        isinstance(m, bool) or not isinstance(m, int) or m <= 0 for m in milestones
    ):
        raise ConfigError(f"{where}.milestones", f"expected a list of follower counts, got {milestones!r}")
    return XSourceOptions(
        profile_every_s=parse_duration(raw.get("profile_every", "1d"), f"{where}.profile_every"),
        milestones=tuple(sorted(milestones)),
        milestone_every=_int(raw, "milestone_every", where, 10_000, minimum=1),
    )


def parse_source_options(raw: Mapping[str, Any], where: str) -> SourceOptions:
    settle = raw.get("settle")
    return SourceOptions(
        settle_s=parse_duration(settle, f"{where}.settle") if settle is not None else None,
        shorts=_bool(raw, "shorts", where, False),
    )


def parse_youtube(y: Mapping[str, Any]) -> YouTubeConfig:
    known = ("base_url", "api_base_url", "hold_unplayable")
    for k in y:
        if k not in known:
            raise ConfigError(f"youtube.{k}", f"unknown key (known: {', '.join(known)})")
    return YouTubeConfig(
        base_url=check_url(y.get("base_url", YOUTUBE_BASE), "youtube.base_url").rstrip("/"),
        api_base_url=check_url(y.get("api_base_url", YOUTUBE_API), "youtube.api_base_url").rstrip("/"),
        hold_unplayable_s=parse_duration(y.get("hold_unplayable", "48h"), "youtube.hold_unplayable"),
    )


def parse_kinds(value: object, key: str) -> frozenset[EventKind]:
    if not isinstance(value, list) or not value:
        raise ConfigError(key, f"expected a non-empty list of kinds, got {value!r}")
    kinds = frozenset(_enum(EventKind, v, key) for v in value)
    if EventKind.DIGEST in kinds:
        raise ConfigError(key, 'a digest is not a kind to select: set digest = "daily" on the route')
    if EventKind.EDIT in kinds:
        raise ConfigError(key, "an edit is not a kind to select: it goes where the announcement it edits went")
    return kinds


ROUTE_KEYS = {"platform", "channel", "kinds", "mention", "thread", "feeds", "template", "pace", "daily_cap",
              "digest"}


def _route_options(r: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The keys of issue #12 on a [[routes]] table: feeds, template, pace,
    daily_cap, digest. A template is parsed here, so a typo in a
    placeholder stops `check`, not the first announcement."""
    for k in r:
        if k not in ROUTE_KEYS:
            raise ConfigError(f"{where}.{k}", f"unknown key (known: {', '.join(sorted(ROUTE_KEYS))})")
    feeds = _str_list(r, "feeds", where)
    for n, name in enumerate(feeds):
        validate_name(name, f"{where}.feeds[{n}]")
    template = _str(r, "template", where)
    if template is not None:
        try:
            check_template(template)
        except ShowbotError as exc:
            raise ConfigError(f"{where}.template", str(exc)) from None
    pace = r.get("pace")
    cap = r.get("daily_cap")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        raise ConfigError(f"{where}.daily_cap", f"expected a whole number of posts a day >= 1, got {cap!r}")
    digest = r.get("digest")
    return {
        "feeds": frozenset(feeds),
        "template": template,
        "pace_s": parse_duration(pace, f"{where}.pace") if pace is not None else None,
        "daily_cap": cap,
        "digest": _enum(DigestPeriod, digest, f"{where}.digest") if digest is not None else None,
    }


def parse_storage_url(url: str | None) -> str | None:
    if url is None:
        return None
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        raise ConfigError("storage.url", "not a database URL") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError("storage.url", f"expected postgresql://host:5432/db, got scheme {parts.scheme!r}")
    if password is not None:
        raise ConfigError("storage.url", "no passwords in the config file: put the whole URL in "
                          "SHOWBOT_DATABASE_URL instead")
    return url


def parse_delivery(d: Mapping[str, Any]) -> DeliveryConfig:
    known = {"concurrency", "retry_base", "retry_cap", "probe_every", "lease"}
    for k in d:
        if k not in known:
            raise ConfigError(f"delivery.{k}", f"unknown key (known: {', '.join(sorted(known))})")
    defaults = DeliveryConfig()
    retry_base = parse_duration(d.get("retry_base", defaults.retry_base_s), "delivery.retry_base")
    retry_cap = parse_duration(d.get("retry_cap", defaults.retry_cap_s), "delivery.retry_cap")
    if retry_cap < retry_base:
        raise ConfigError("delivery.retry_cap", f"must be at least retry_base ({retry_base}s), got {retry_cap}s")
    probe_every = parse_duration(d.get("probe_every", defaults.probe_every_s), "delivery.probe_every")
    if probe_every > 300:
        raise ConfigError("delivery.probe_every", f"at most 5m, so an outage ends promptly; got {probe_every}s")
    return DeliveryConfig(
        concurrency=_int(d, "concurrency", "delivery", defaults.concurrency, minimum=1),
        retry_base_s=retry_base,
        retry_cap_s=retry_cap,
        probe_every_s=probe_every,
        lease_s=parse_duration(d.get("lease", defaults.lease_s), "delivery.lease"),
    )


def parse_merge(m: Mapping[str, Any]) -> MergeConfig:
    known = {"enabled", "window", "show_names"}
    for k in m:
        if k not in known:
            raise ConfigError(f"merge.{k}", f"unknown key (known: {', '.join(sorted(known))})")
    defaults = MergeConfig()
    window = parse_duration(m.get("window", "48h"), "merge.window")
    if not 0 < window <= 30 * 86400:
        raise ConfigError("merge.window", f"expected a duration from 1s to 30d, got {m.get('window')!r}")
    return MergeConfig(enabled=_bool(m, "enabled", "merge", defaults.enabled), window_s=window,
                       show_names=_str_list(m, "show_names", "merge"))


def parse_http(h: Mapping[str, Any]) -> HttpConfig:
    for k in h:
        if k not in ("port", "bind"):
            raise ConfigError(f"http.{k}", "unknown key (known: bind, port)")
    port = h.get("port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535):
        raise ConfigError("http.port", f"expected a port number from 1 to 65535 (0: any free port), got {port!r}")
    bind = _str(h, "bind", "http", "127.0.0.1") or "127.0.0.1"
    return HttpConfig(port=port, bind=bind.strip())


def parse_log(lg: Mapping[str, Any]) -> LogConfig:
    for k in lg:
        if k not in ("level", "format"):
            raise ConfigError(f"log.{k}", "unknown key (known: format, level)")
    level = (_str(lg, "level", "log", "info") or "info").lower()
    if level not in LOG_LEVELS:
        raise ConfigError("log.level", f"expected one of {' | '.join(LOG_LEVELS)}, got {level!r}")
    fmt = (_str(lg, "format", "log", "text") or "text").lower()
    if fmt not in LOG_FORMATS:
        raise ConfigError("log.format", f"expected text | json, got {fmt!r}")
    return LogConfig(level=level, format=fmt)


def parse_search(table: Mapping[str, Any]) -> SearchConfig:
    for k in table:
        if k != "semantic":
            raise ConfigError(f"search.{k}", "unknown key (known: semantic)")
    return SearchConfig(semantic=_bool(table, "semantic", "search", True))


def parse_config(raw: Mapping[str, Any], origin: Path | None = None) -> Config:
    known = {"storage", "network", "sources", "routes", "book", "discord", "slack", "delivery", "http", "log",
             "merge", "youtube", "search"}
    for k in raw:
        if k not in known:
            raise ConfigError(k, f"unknown section (known: {', '.join(sorted(known))})")
    storage = _table(raw, "storage")
    network = _table(raw, "network")
    path = _str(storage, "path", "storage", "data/showbot.db") or "data/showbot.db"
    storage_url = parse_storage_url(_str(storage, "url", "storage"))
    for k in storage:
        if k not in ("path", "url"):
            raise ConfigError(f"storage.{k}", "unknown key (known: path, url)")

    sources_raw = raw.get("sources", [])
    if not isinstance(sources_raw, list):
        raise ConfigError("sources", "expected [[sources]] tables")
    sources = tuple(parse_source(s, f"sources[{i}]") for i, s in enumerate(sources_raw))
    x_options = {
        spec.name: parse_x_options(raw_source, f"sources[{i}]")
        for i, (spec, raw_source) in enumerate(zip(sources, sources_raw)) if spec.kind == "x"
    }
    source_options = {
        spec.name: options
        for i, (spec, raw_source) in enumerate(zip(sources, sources_raw))
        if (options := parse_source_options(raw_source, f"sources[{i}]")) != SourceOptions()
    }
    seen: set[str] = set()
    for i, spec in enumerate(sources):
        if spec.name in seen:
            raise ConfigError(f"sources[{i}].name", f"duplicate source name {spec.name!r}")
        seen.add(spec.name)

    routes_raw = raw.get("routes", [])
    if not isinstance(routes_raw, list):
        raise ConfigError("routes", "expected [[routes]] tables")
    routes = []
    for i, r in enumerate(routes_raw):
        where = f"routes[{i}]"
        if not isinstance(r, dict):
            raise ConfigError(where, f"expected a table, got {r!r}")
        platform = _enum(Platform, r.get("platform"), f"{where}.platform")
        channel = r.get("channel")
        if isinstance(channel, int) and not isinstance(channel, bool):
            channel = str(channel)
        if not isinstance(channel, str) or not channel.strip():
            raise ConfigError(f"{where}.channel", f"expected a channel id, got {channel!r}")
        mention = r.get("mention")
        if mention is not None and not isinstance(mention, (str, int)):
            raise ConfigError(f"{where}.mention", f"expected a role or group id, got {mention!r}")
        routes.append(
            RouteSpec(
                platform=platform,
                channel=channel.strip(),
                kinds=parse_kinds(r.get("kinds"), f"{where}.kinds"),
                mention=str(mention) if mention is not None else None,
                thread=_bool(r, "thread", where, False),
                **_route_options(r, where),
            )
        )
    seen_routes: set[tuple[Platform, str]] = set()
    for i, route in enumerate(routes):
        if (route.platform, route.channel) in seen_routes:
            raise ConfigError(f"routes[{i}].channel", f"a second route for {route.platform.value} "
                              f"{route.channel!r}: one channel has one route")
        seen_routes.add((route.platform, route.channel))

    book_raw = _table(raw, "book")
    book_window_s = parse_duration(book_raw.get("window", "3d"), "book.window")
    book = BookConfig(
        title=_str(book_raw, "title", "book", "") or "",
        keywords=_str_list(book_raw, "keywords", "book"),
        links=_str_list(book_raw, "links", "book"),
    )
    d = _table(raw, "discord")
    shard_count = _int(d, "shard_count", "discord", 1, minimum=1)
    shard_ids = d.get("shard_ids", [])
    if not isinstance(shard_ids, list) or len(shard_ids) > 1 or any(
            isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < shard_count for i in shard_ids):
        raise ConfigError("discord.shard_ids", f"expected at most one shard id (one gateway shard per "
                          f"instance) from 0 to {shard_count - 1}, got {shard_ids!r}")
    shard_id = shard_ids[0] if shard_ids else None
    discord = DiscordConfig(
        api_base_url=check_url(
            d.get("api_base_url", DISCORD_API), "discord.api_base_url"
        ),
        gateway_url=_str(d, "gateway_url", "discord", DISCORD_GATEWAY) or DISCORD_GATEWAY,
        moderator_role_ids=_str_list(d, "moderator_role_ids", "discord"),
        dev_guild_ids=_str_list(d, "dev_guild_ids", "discord"),
        shard_count=shard_count,
        shard_id=shard_id,
    )
    s = _table(raw, "slack")
    mode = _str(s, "mode", "slack", "socket")
    if mode not in ("socket", "http"):
        raise ConfigError("slack.mode", f"expected socket | http, got {mode!r}")
    slack = SlackConfig(
        mode=mode,
        port=_int(s, "port", "slack", 3000, minimum=1),
        path=_str(s, "path", "slack", "/slack/events") or "/slack/events",
        api_base_url=check_url(s.get("api_base_url", SLACK_API), "slack.api_base_url"),
        admin_user_ids=_str_list(s, "admin_user_ids", "slack"),
    )
    delivery = parse_delivery(_table(raw, "delivery"))
    merge = parse_merge(_table(raw, "merge"))
    max_body = _int(network, "max_body_bytes", "network", MAX_BODY_BYTES, minimum=1024)
    timeout = network.get("timeout", "20s")
    return Config(
        storage_path=Path(path),
        storage_url=storage_url,
        allow_private_addresses=_bool(network, "allow_private_addresses", "network", False),
        timeout_s=float(parse_duration(timeout, "network.timeout")),
        max_body_bytes=max_body,
        user_agent=_str(network, "user_agent", "network", USER_AGENT) or USER_AGENT,
        failure_alert_after=_int(network, "failure_alert_after", "network", 5, minimum=1),
        sources=sources,
        x_options=x_options,
        source_options=source_options,
        youtube=parse_youtube(_table(raw, "youtube")),
        book_window_s=book_window_s,
        routes=tuple(routes),
        book=book,
        discord=discord,
        slack=slack,
        delivery=delivery,
        merge=merge,
        http=parse_http(_table(raw, "http")),
        log=parse_log(_table(raw, "log")),
        search=parse_search(_table(raw, "search")),
        origin=origin,
    )


def http_from_env(http: HttpConfig, env: Mapping[str, str]) -> HttpConfig:
    """``SHOWBOT_HTTP_PORT`` / ``SHOWBOT_HTTP_BIND`` win over ``[http]``: the
    Docker image turns the server on and binds it to 0.0.0.0 this way, so a
    config mounted over the image's keeps working unchanged."""
    port = env.get("SHOWBOT_HTTP_PORT", "").strip()
    bind = env.get("SHOWBOT_HTTP_BIND", "").strip()
    if not port and not bind:
        return http
    raw: dict[str, Any] = {"port": http.port, "bind": bind or http.bind}
    if port:
        if not port.isdigit():
            raise ConfigError("SHOWBOT_HTTP_PORT", f"expected a port number, got {port!r}")
        raw["port"] = int(port)
    return parse_http({k: v for k, v in raw.items() if v is not None})


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None, *,
                required: bool = False) -> Config:
    """``path``, else ./config.toml, else config.example.toml's values; then
    the environment's overrides (``http_from_env``). With no file found: the
    defaults, or (``required``: `check`, `run`, `apply-config`) a ConfigError
    naming the files looked for, because a bot run on defaults watches
    nothing and says nothing."""
    config = _load_file(path, required)
    http = http_from_env(config.http, os.environ if env is None else env)
    return config if http == config.http else replace(config, http=http)


def _load_file(path: Path | None, required: bool) -> Config:
    if path is None:
        path = DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else EXAMPLE_CONFIG
        if not path.exists():
            if required:
                looked = " and ".join(str(p.resolve()) for p in (DEFAULT_CONFIG, EXAMPLE_CONFIG))
                raise ConfigError("--config", f"no config file found: looked for {looked}. Copy "
                                  "config.example.toml to config.toml, or pass --config PATH")
            return Config()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("--config", f"no such file: {str(path)!r}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read: {exc}") from None
    return parse_config(raw, origin=path)
