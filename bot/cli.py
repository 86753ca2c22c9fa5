"""``showbot run | check | poll | ask | health | why | backup | migrate | apply-config``: the contract in docs/design.md.

Exit codes: 0 ok, 2 bad usage or config, 1 anything else; always a one-line
error on stderr, never a traceback for a user mistake (SHOWBOT_DEBUG=1 shows
tracebacks of unexpected errors).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Sequence

from bot.config import Config, Secrets, load_config
from bot.errors import ConfigError, ShowbotError
from bot.logs import configure_logging
from bot.models import Caller, Event, EventKind, Platform

if TYPE_CHECKING:  # imported where used: a command loads only what it needs
    from bot.storage.inspect import StorageStatus

log = logging.getLogger("showbot")


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        raise UsageError(message)


def version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as installed

        return installed("showbot")
    except PackageNotFoundError:  # run from a source tree without installing
        import bot

        return bot.__version__


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="showbot", description="A community bot for a creator's shows.")
    parser.add_argument("--version", action="version", version=f"showbot {version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", type=Path, default=None,
                       help="TOML config (default ./config.toml, then config.example.toml)")

    run = sub.add_parser("run", help="run the bot (console adapter when no chat token is set)")
    with_config(run)
    run.add_argument("--console", action="store_true", help="also start the console adapter")

    check = sub.add_parser("check", help="validate the config and print a summary")
    with_config(check)

    poll = sub.add_parser("poll", help="poll now, store, queue; print what is new")
    with_config(poll)
    poll.add_argument("--source", help="only this source")
    poll.add_argument("--json", action="store_true", help="print JSON")

    ask = sub.add_parser("ask", help="answer TEXT as the bot would")
    with_config(ask)
    ask.add_argument("--json", action="store_true", help="print JSON")
    ask.add_argument("--moderator", action="store_true", help="ask as a moderator")
    ask.add_argument("text", nargs="+", help='e.g. "episodes on postgres"')

    migrate = sub.add_parser("migrate", help="copy the SQLite database to PostgreSQL")
    with_config(migrate)
    migrate.add_argument("--to", required=True, metavar="URL",
                         help="the target, postgresql://user:password@host:5432/db (never printed)")
    migrate.add_argument("--resume", action="store_true",
                         help="continue an interrupted copy into a target that already holds part of it")

    why = sub.add_parser("why", help="why an item was or wasn't announced, step by step")
    with_config(why)
    why.add_argument("text", nargs="+", metavar="URL_OR_TITLE", help="the item's URL or title")

    backup = sub.add_parser("backup", help="copy the database to PATH, safely while the bot runs")
    with_config(backup)
    backup.add_argument("path", type=Path, metavar="PATH", help="a file, or a folder to put a dated copy in")

    apply = sub.add_parser("apply-config", help="make the database's sources and routes match the config file")
    with_config(apply)

    health = sub.add_parser("health", help="exit 0 when a running bot is alive (container HEALTHCHECK)")
    with_config(health)
    health.add_argument("--max-age", type=float, default=90.0,
                        help="seconds a heartbeat stays fresh (default 90)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(f"showbot: {exc}", file=sys.stderr)
        return 2
    # Until the config is read: errors only, as text.
    configure_logging(level="error", fmt="text", secrets=Secrets.from_env().values())
    try:
        # Starting, validating or applying on nothing but defaults is a mistake to name.
        config = load_config(args.config, required=args.command in ("run", "check", "apply-config"))
        # [log] sets what `run` logs; one-shot commands print their answer
        # and log errors only, in the configured format.
        configure_logging(level=config.log.level if args.command == "run" else "error",
                          fmt=config.log.format, secrets=Secrets.from_env().values())
        handler = {"run": _run, "check": _check, "poll": _poll, "ask": _ask, "health": _health,
                   "why": _why, "backup": _backup, "migrate": _migrate, "apply-config": _apply_config}
        return handler[args.command](config, args)
    except BrokenPipeError:
        # `showbot poll --json | head`: the reader left. Say nothing more;
        # point stdout at nothing so the exit's flush can't fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except ConfigError as exc:
        print(f"showbot: {exc}", file=sys.stderr)
        return 2
    except ShowbotError as exc:
        print(f"showbot: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: one line, details only when asked
        if os.environ.get("SHOWBOT_DEBUG"):
            raise
        print(f"showbot: internal error: {type(exc).__name__}: {exc} "
              "(set SHOWBOT_DEBUG=1 for details)", file=sys.stderr)
        return 1


# -- check ----------------------------------------------------------------------

def _check(config: Config, args: argparse.Namespace) -> int:
    secrets = Secrets.from_env()
    print(f"config: {config.origin or '(defaults)'}")
    from bot.storage.inspect import inspect_storage

    # Reads only: check never creates or migrates a database.
    storage = inspect_storage(config.storage_path, secrets.database_url or config.storage_url)
    print(f"storage: {storage.describe()}")
    print(f"sources: {len(config.sources)}")
    for s in config.sources:
        where = s.url or f"@{s.handle} via {s.provider}"
        held = config.source_options.get(s.name)
        extra = "".join([f", settle {held.settle_s}s" if held and held.settle_s else "",
                         ", shorts announced" if held and held.shorts else ""])
        print(f"  - {s.name} ({s.kind}, {s.content.value}, every {s.every_s}s{extra}): {where}")
    print(f"routes: {len(config.routes)}")
    for r in config.routes:
        kinds = ", ".join(sorted(k.value for k in r.kinds))
        options = [f"mention {r.mention}" if r.mention else "", "thread" if r.thread else "",
                   f"from {', '.join(sorted(r.feeds))}" if r.feeds else "",
                   f"template {r.template!r}" if r.template else "", f"pace {r.pace_s}s" if r.pace_s else "",
                   f"daily cap {r.daily_cap}" if r.daily_cap else "", f"{r.digest.value} digest" if r.digest else ""]
        shown = "; ".join(o for o in options if o)
        print(f"  - {r.platform.value} {r.channel}: {kinds}" + (f" ({shown})" if shown else ""))
    if not config.sources:
        print("note: no sources: nothing will be polled or announced")
    elif not config.routes:
        print("note: no routes in the file: nothing is announced until a moderator says `announce <kinds> here`")
    _check_database(config, secrets, storage)
    chat = [name for name, token in (("discord", secrets.discord_token),
                                     ("slack", secrets.slack_bot_token)) if token]
    print(f"adapters: {', '.join(chat) if chat else 'console (no chat token set)'}")
    # Never the key itself: only whether it is set.
    print("youtube: premieres and live streams " + (
        "via the Data API (YOUTUBE_API_KEY set)" if secrets.youtube_api_key
        else "held until their watch page plays (no YOUTUBE_API_KEY)"))
    for platform, token_name in ((Platform.DISCORD, "DISCORD_TOKEN"), (Platform.SLACK, "SLACK_BOT_TOKEN")):
        if any(r.platform == platform for r in config.routes) and platform.value not in chat:
            print(f"note: routes for {platform.value} wait in the outbox until {token_name} is set")
    if secrets.slack_bot_token and not secrets.slack_app_token and not secrets.slack_signing_secret:
        raise ConfigError("SLACK_SIGNING_SECRET",
                          "Slack HTTP mode needs SLACK_SIGNING_SECRET (or set SLACK_APP_TOKEN for socket mode)")
    if not storage.ok:
        print(f"showbot: the database is not usable: {storage.describe()}", file=sys.stderr)
        return 1
    print("ok")
    return 0


def _check_database(config: Config, secrets: Secrets, status: StorageStatus) -> None:
    """How the database differs from the file (the file only seeds it at the
    first start; after that the database is what runs). Opening the storage
    migrates it, so only a database already at this showbot's schema is
    opened: check reads, it never creates or migrates one."""
    from bot.drift import config_drift
    from bot.storage import open_storage

    url = secrets.database_url or config.storage_url
    if not status.exists:
        print(f"database: {config.storage_path} not created yet (the first start seeds it from this file)")
        return
    if not status.reachable or status.version != status.current:
        print("database: not compared with this file until it is reachable and migrated (at the next start)")
        return

    async def go() -> list[str]:
        store = await open_storage(config.storage_path, url)
        try:
            return [d.text for d in config_drift(config, await store.list_sources(), await store.list_routes())]
        finally:
            await store.close()

    differences = asyncio.run(go())
    if not differences:
        print("database: its sources and routes match this file")
        return
    print(f"database differs from this file in {len(differences)} way(s) (the database is what runs; "
          "`showbot apply-config` makes it match the file):")
    for line in differences:
        print(f"  - {line}")


# -- apply-config -----------------------------------------------------------------

def _apply_config(config: Config, args: argparse.Namespace) -> int:
    from bot.clock import utc_now
    from bot.drift import apply_config
    from bot.storage import open_storage

    secrets = Secrets.from_env()

    async def go() -> list[str]:
        store = await open_storage(config.storage_path, secrets.database_url or config.storage_url)
        try:
            return await apply_config(store, config, utc_now())
        finally:
            await store.close()

    changes = asyncio.run(go())
    for line in changes:
        print(line)
    print(f"{len(changes)} change(s); the database now matches {config.origin}" if changes
          else f"nothing to change: the database already matches {config.origin}")
    return 0


# -- poll -----------------------------------------------------------------------

def _poll(config: Config, args: argparse.Namespace) -> int:
    from bot.app import App
    from bot.replies import item_to_json, reply_item

    async def go() -> list[Any]:
        async with await App.open(config) as app:
            if args.source:
                await app.store.get_source(args.source)  # NotFound -> exit 1 with a clear line
            return await app.poll_now(args.source)

    reports = asyncio.run(go())
    if args.json:
        print(json.dumps({"sources": [
            {
                "name": r.name,
                "ok": r.ok,
                "error": r.error,
                "new": [item_to_json(reply_item(i)) for i in r.new],
                "events": [{"kind": e.kind.value, "title": e.title, "url": e.url} for e in r.events
                           if e.kind is not EventKind.EDIT],
                # Announcements changed in place (bot.edits): a merge adds
                # this source's link to another source's announcement.
                "edits": [_edit_json(e) for e in r.events if e.kind is EventKind.EDIT],
            }
            for r in reports
        ]}, ensure_ascii=False, indent=2))
    else:
        for r in reports:
            if not r.ok:
                print(f"{r.name}: FAILED: {r.error}")
            elif r.unchanged:
                print(f"{r.name}: unchanged")
            else:
                announced = [e for e in r.events if e.kind is not EventKind.EDIT]
                edits = [e for e in r.events if e.kind is EventKind.EDIT]
                posts = "" if not r.events else (
                    f", {r.queued} post(s) queued" if r.queued else ", but no channel takes them: nothing queued")
                more = f", {len(edits)} edit(s) of earlier announcements" if edits else ""
                print(f"{r.name}: {len(r.new)} new, {len(announced)} to announce{more}{posts}")
                for e in announced:
                    print(f"  [{e.kind.value}] {e.title}  {e.url or ''}")
                for e in edits:
                    edit = _edit_json(e)
                    print(f"  [edit of #{edit['edit_of']}: {edit['change']}] {e.title}  {e.url or ''}")
    failed = [r for r in reports if not r.ok]
    for r in failed:
        print(f"showbot: source {r.name!r} failed: {r.error}", file=sys.stderr)
    return 1 if failed else 0


def _edit_json(event: Event) -> dict[str, Any]:
    out: dict[str, Any] = {"edit_of": event.payload.get("edit_of"), "change": event.payload.get("change"),
                           "title": event.title, "url": event.url}
    also = event.payload.get("also") or []
    if also:
        out["also"] = also
    return out


# -- ask ------------------------------------------------------------------------

def _ask(config: Config, args: argparse.Namespace) -> int:
    # Only what answering needs: the store and the commands. No fetcher, no
    # parse worker, no scheduler, no chat SDK: a one-shot answer should start
    # about as fast as Python does (bench/bench_cli.py measures it).
    from bot.clock import utc_now
    from bot.commands import Commands
    from bot.hybrid import SemanticModel
    from bot.plaintext import render_text
    from bot.replies import reply_to_json
    from bot.storage import open_storage

    text = " ".join(args.text)
    caller = Caller(Platform.CONSOLE, "cli", "cli", is_moderator=args.moderator, display_name="cli")
    secrets = Secrets.from_env()

    async def go() -> Any:
        store = await open_storage(config.storage_path, secrets.database_url or config.storage_url)
        try:
            # The model loads only if TEXT is a search (SemanticModel.get on first use).
            semantic = SemanticModel(enabled=config.search.semantic)
            return await Commands(store, clock=utc_now, book_config=config.book, semantic=semantic)(text, caller)
        finally:
            await store.close()

    reply = asyncio.run(go())
    if args.json:
        print(json.dumps(reply_to_json(reply), ensure_ascii=False, indent=2))
    else:
        print(render_text(reply))
    return 1 if reply.kind == "failure" else 0


# -- why and backup (operators) ----------------------------------------------------

def _why(config: Config, args: argparse.Namespace) -> int:
    """The moderators' `why`, from the command line: exit 1 when nothing matches."""
    from bot.app import App
    from bot.commands.why import NOT_FOUND

    caller = Caller(Platform.CONSOLE, "cli", "cli", is_moderator=True, display_name="cli")

    async def go() -> Any:
        async with await App.open(config) as app:
            return await app.commands("why " + " ".join(args.text), caller)

    reply = asyncio.run(go())
    print(reply.text)
    return 1 if reply.kind in (NOT_FOUND, "error", "failure") else 0


def _backup(config: Config, args: argparse.Namespace) -> int:
    """A consistent copy of the database while the bot runs (the storage's
    backup: SQLite's online backup API). A folder gets a dated file."""
    from bot.clock import utc_now
    from bot.storage import open_storage

    target: Path = args.path
    if target.is_dir():
        target = target / f"showbot-{utc_now():%Y%m%d-%H%M%S}.db"

    async def go() -> None:
        store = await open_storage(config.storage_path, Secrets.from_env().database_url or config.storage_url)
        try:
            await store.backup(target)
        finally:
            await store.close()

    asyncio.run(go())
    print(f"backed up to {target}")
    return 0


# -- run ------------------------------------------------------------------------

def _run(config: Config, args: argparse.Namespace) -> int:
    from bot.app import App, discover_adapter_factories

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):
                pass
        async with await App.open(config) as app:
            log.info("showbot running with %d source(s); storage %s",
                     len(await app.store.list_sources()), config.storage_path)
            await app.run(stop, discover_adapter_factories(), force_console=args.console)
        log.info("showbot stopped cleanly")

    asyncio.run(go())
    return 0


# -- migrate --------------------------------------------------------------------

def _migrate(config: Config, args: argparse.Namespace) -> int:
    from bot.storage.migrate import migrate

    asyncio.run(migrate(config.storage_path, args.to, resume=args.resume, out=sys.stdout))
    return 0


# -- health ---------------------------------------------------------------------

def _health(config: Config, args: argparse.Namespace) -> int:
    """With the HTTP server on, its /readyz decides; else the heartbeat file."""
    if config.http.port:
        return _readyz(config)
    from bot.app import heartbeat_path
    from bot.clock import utc_now

    path = heartbeat_path(config)
    try:
        beat = json.loads(path.read_text())
        at = datetime.fromisoformat(beat["at"])
    except (OSError, ValueError, KeyError) as exc:
        print(f"showbot: unhealthy: no heartbeat at {path} ({exc})", file=sys.stderr)
        return 1
    age = utc_now() - at
    if age > timedelta(seconds=args.max_age):
        print(f"showbot: unhealthy: last heartbeat {age.total_seconds():.0f}s ago", file=sys.stderr)
        return 1
    down = [name for name, ok in beat.get("adapters", {}).items() if not ok]
    if down:
        print(f"showbot: unhealthy: adapter(s) down: {', '.join(down)}", file=sys.stderr)
        return 1
    if beat.get("store_writable") is False:
        print("showbot: unhealthy: the database cannot be written (disk full or read-only?)",
              file=sys.stderr)
        return 1
    print("ok")
    return 0


def _readyz(config: Config) -> int:
    import urllib.error
    import urllib.request

    bind = config.http.bind
    host = "127.0.0.1" if bind in ("0.0.0.0", "", "*") else "[::1]" if bind == "::" else (
        f"[{bind}]" if ":" in bind and not bind.startswith("[") else bind)
    url = f"http://{host}:{config.http.port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - our own address
            resp.read()
        print("ok")
        return 0
    except urllib.error.HTTPError as exc:  # 503: the body names what is not ready
        try:
            body = json.loads(exc.read() or b"{}")
            down = ", ".join(body.get("not_ready", [])) or f"HTTP {exc.code}"
        except ValueError:
            down = f"HTTP {exc.code}"
        print(f"showbot: unhealthy: not ready: {down}", file=sys.stderr)
        return 1
    except (OSError, urllib.error.URLError) as exc:
        print(f"showbot: unhealthy: no answer from {url} ({exc})", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
