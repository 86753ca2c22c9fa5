"""The Slack adapter: bolt (Socket Mode or HTTP) in, Web API out.

This module owns the connection (a Socket Mode session or the HTTP server,
kept up by the adapters' shared ``Supervisor``) and wires bolt's listeners
to ``Inbound``; ``Poster`` (outbound.py) posts announcements; ``Callers``
(caller.py) says who is a moderator; ``render.py`` builds Block Kit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.app.async_server import AsyncSlackAppServer
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.socket_mode.aiohttp import SocketModeClient

from adapters.slack.api import Sleep, announcement_client, describe, reply_client
from adapters.slack.caller import Callers
from adapters.slack.inbound import Inbound
from adapters.slack.outbound import CHANNEL_INTERVAL_S, Pacer, Poster
from adapters.slack.render import MORE_ACTION_ID
from adapters.supervisor import Supervisor
from bot.config import SlackConfig
from bot.models import Announcement, Caller, Delivered, Platform
from bot.ports import CommandHandler, HttpMounts

log = logging.getLogger("showbot.slack")


class _NoBodiesFilter(logging.Filter):
    """bolt logs request bodies in a few warnings; keep the line, drop the body."""

    _REWRITE = (
        ("Invalid request signature detected", "Invalid Slack request signature (body not logged)"),
        ("Unhandled request", "Unhandled Slack request (body not logged)"),
        ("A global middleware", "A bolt middleware returned no response (body not logged)"),
    )

    def filter(self, record: logging.LogRecord) -> bool:
        msg = str(record.msg)
        if msg.startswith("As you gave `client` as well"):
            return False  # SLACK_BOT_TOKEN in the env is expected; not worth a warning
        for prefix, replacement in self._REWRITE:
            if msg.startswith(prefix):
                record.msg, record.args = replacement, ()
        return True


_BOLT_LOGGER = logging.getLogger("showbot.slack.bolt")
if not any(isinstance(f, _NoBodiesFilter) for f in _BOLT_LOGGER.filters):
    _BOLT_LOGGER.addFilter(_NoBodiesFilter())
# bolt and slack_sdk log whole request/response bodies at DEBUG: keep these at INFO
# (unless an operator set a level on purpose) so a global DEBUG never dumps them.
for _name in ("showbot.slack.bolt", "showbot.slack.web", "showbot.slack.socket"):
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.INFO)


class _Stopped(Exception):
    """stop() was called while the supervisor was connecting."""


class _BoltSocketHandler(AsyncSocketModeHandler):
    """bolt's Socket Mode bridge, on a SocketModeClient this adapter built and owns."""

    def __init__(self, app: AsyncApp, client: SocketModeClient) -> None:  # noqa: D107
        self.app = app
        self.app_token = client.app_token
        self.client = client
        client.socket_mode_request_listeners.append(self.handle)  # type: ignore[arg-type]


@web.middleware
async def _log_rejections(request: web.Request, handler: Any) -> web.StreamResponse:
    response = await handler(request)
    if response.status == 401:
        _log_rejection(request)
    return response


def _log_rejection(request: web.Request) -> None:
    """One line for a rejected request: never the body or the signature, only what
    helps spot a clock skew or a bad secret."""
    ts = request.headers.get("X-Slack-Request-Timestamp", "")
    age = ""
    try:
        age = f", {int(time.time() - int(ts))}s old"
    except ValueError:
        pass
    has_sig = "X-Slack-Signature" in request.headers
    log.warning(
        "rejected a request to %s: bad, missing or stale Slack signature (signature %s%s)",
        request.path,
        "present" if has_sig else "missing",
        age,
    )


class SlackAdapter:
    """ChatAdapter for Slack. See the module docstring."""

    platform = Platform.SLACK

    def __init__(
        self,
        config: SlackConfig,
        *,
        bot_token: str,
        handler: CommandHandler,
        app_token: str | None = None,
        signing_secret: str | None = None,
        host: str = "0.0.0.0",
        command: str = "/showbot",
        clock: Callable[[], float] = time.monotonic,
        moderator_ttl_s: float = 300.0,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 60.0,
        rate_limit_retries: int = 1,
        rate_limit_sleep: Sleep | None = None,
        ping_interval_s: float = 10.0,
        watch_interval_s: float = 2.0,
        connect_timeout_s: float = 30.0,
        channel_interval_s: float = CHANNEL_INTERVAL_S,
        http: HttpMounts | None = None,
    ) -> None:
        if not bot_token:
            raise ValueError("the Slack adapter needs a bot token (SLACK_BOT_TOKEN)")
        self.config = config
        self.mode = "socket" if (app_token and config.mode == "socket") else "http"
        if self.mode == "http" and not signing_secret:
            why = (
                "slack.mode is 'socket' but SLACK_APP_TOKEN is not set, so HTTP mode was chosen; "
                if config.mode == "socket"
                else ""
            )
            raise ValueError(
                f"{why}Slack HTTP mode needs SLACK_SIGNING_SECRET to verify requests from Slack"
            )
        self._app_token = app_token
        self._host = host
        self._ping_interval = ping_interval_s
        self._watch_interval = watch_interval_s
        self._connect_timeout = connect_timeout_s

        # Replies (members are waiting) keep slack_sdk's retries; announcements
        # get none: the outbox owns their retries (api.py).
        self.client = reply_client(bot_token, config.api_base_url, rate_limit_retries=rate_limit_retries,
                                   sleep=rate_limit_sleep)
        self._callers = Callers(self.client, frozenset(config.admin_user_ids), ttl_s=moderator_ttl_s, clock=clock)
        self._inbound = Inbound(handler, self.client, self._callers)
        self._poster = Poster(announcement_client(bot_token, config.api_base_url), Pacer(channel_interval_s))
        self.app = AsyncApp(
            client=self.client,
            signing_secret=signing_secret or "",
            logger=_BOLT_LOGGER,
            name="showbot",
            request_verification_enabled=self.mode == "http",
            process_before_response=False,  # ack within 3 s; listeners go on in the background
        )
        self.app.command(command)(self._inbound.on_command)
        self.app.event("app_mention")(self._inbound.on_mention)
        self.app.event("message")(self._inbound.on_message)
        self.app.action(MORE_ACTION_ID)(self._inbound.on_more)

        self._healthy = False
        # HTTP mode with the bot's own HTTP server on ([http] port): Slack's
        # requests come in there, at config.path, instead of on a port of ours.
        self._shared = http if self.mode == "http" else None
        if self._shared is not None:
            self._shared.mount("POST", config.path, self._handle_shared)
        connect = (self._socket_once if self.mode == "socket"
                   else self._shared_once if self._shared is not None else self._http_once)
        self._supervisor = Supervisor(
            f"slack {self.mode}", connect,
            log=log, base_s=backoff_base_s, cap_s=backoff_max_s,
            expected=(SlackApiError, SlackClientError, aiohttp.ClientError), describe=describe,
        )
        self.http_port: int | None = None
        self._team_url: str | None = None  # https://<workspace>.slack.com/, for message links
        self._team_url_retry_at = 0.0

    # ------------------------------------------------------------------ lifecycle

    @property
    def healthy(self) -> bool:
        return self._healthy

    @property
    def restarts(self) -> int:
        """How many times the connection/server was started again after it ended."""
        return self._supervisor.restarts

    async def start(self) -> None:
        """Launch the supervised Socket Mode connection or HTTP server; return at once."""
        self._supervisor.start()

    async def stop(self) -> None:
        await self._supervisor.stop(timeout_s=15)
        self._healthy = False

    async def caller_for(self, user_id: str, channel: str, display_name: str | None = None) -> Caller:
        return await self._callers.caller_for(user_id, channel, display_name)

    @property
    def _stopping(self) -> asyncio.Event:
        return self._supervisor.stopping

    async def _wait_stopping(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def _interruptible(self, coro: Awaitable[Any], timeout: float) -> Any:
        """Await ``coro`` unless stop() comes first (-> _Stopped) or ``timeout`` passes."""
        task = asyncio.ensure_future(coro)
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            done, _ = await asyncio.wait({task, stop}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if task in done:
            return task.result()
        task.cancel()
        await asyncio.wait({task})
        if self._stopping.is_set():
            raise _Stopped()
        raise asyncio.TimeoutError()

    async def _socket_once(self) -> bool:
        """One Socket Mode session. Returns True if it got connected before it ended."""
        assert self._app_token is not None
        client = SocketModeClient(
            app_token=self._app_token,
            logger=logging.getLogger("showbot.slack.socket"),
            web_client=self.client,
            auto_reconnect_enabled=False,  # the supervisor reconnects, with backoff
            ping_interval=self._ping_interval,
        )
        closed = asyncio.Event()

        async def on_close(_message: Any) -> None:
            closed.set()

        client.on_close_listeners.append(on_close)
        client.on_error_listeners.append(on_close)
        _BoltSocketHandler(self.app, client)
        reached = False
        try:
            client.wss_uri = await self._interruptible(client.issue_new_wss_url(), self._connect_timeout)
            # connect() retries by itself forever; bound it, the supervisor decides what next.
            await self._interruptible(client.connect(), self._connect_timeout)
            if not await client.is_connected():
                raise ConnectionError("the Socket Mode websocket did not open")
            reached = True
            self._healthy = True
            log.info("slack socket mode connected")
            while not self._stopping.is_set():
                if closed.is_set() or not await client.is_connected():
                    return reached
                await self._wait_stopping(self._watch_interval)
            return reached
        finally:
            self._healthy = False
            await _close_socket_client(client)

    async def _http_once(self) -> bool:
        """One HTTP server run on config.port/config.path. True if it was listening."""
        server = AsyncSlackAppServer(port=self.config.port, path=self.config.path, app=self.app, host=self._host)
        web_app = server.web_app
        web_app.middlewares.append(_log_rejections)
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        reached = False
        try:
            site = web.TCPSite(runner, self._host, self.config.port)
            await site.start()
            self.http_port = runner.addresses[0][1] if runner.addresses else self.config.port
            reached = True
            self._healthy = True
            log.info("slack http mode listening on port %s%s", self.http_port, self.config.path)
            while not self._stopping.is_set():
                if not runner.addresses:
                    raise ConnectionError("the HTTP server's socket closed")
                await self._wait_stopping(self._watch_interval)
            return reached
        finally:
            self._healthy = False
            await runner.cleanup()

    async def _handle_shared(self, request: web.Request) -> web.Response:
        """Slack's request on the shared server: what AsyncSlackAppServer does."""
        response = await to_aiohttp_response(await self.app.async_dispatch(await to_bolt_request(request)))
        if response.status == 401:
            _log_rejection(request)
        return response

    async def _shared_once(self) -> bool:
        """HTTP mode on the bot's HTTP server: connected while it listens."""
        assert self._shared is not None
        serving = self._shared.serving
        try:
            await self._interruptible(serving.wait(), timeout=self._connect_timeout)
        except _Stopped:
            return False
        self._healthy = True
        log.info("slack http mode answering on the bot's HTTP server at %s", self.config.path)
        try:
            while not self._stopping.is_set():
                if not serving.is_set():
                    raise ConnectionError("the bot's HTTP server stopped")
                await self._wait_stopping(self._watch_interval)
            return True
        finally:
            self._healthy = False

    # ------------------------------------------------------------------ outbound

    async def deliver(self, announcement: Announcement) -> Delivered:
        return await self._with_link(await self._poster.deliver(announcement), announcement)

    async def edit(self, announcement: Announcement) -> Delivered:
        return await self._with_link(await self._poster.edit(announcement), announcement)

    async def find_delivered(self, announcement: Announcement) -> Delivered | None:
        found = await self._poster.find(announcement)
        return await self._with_link(found, announcement) if found is not None else None

    async def _with_link(self, delivered: Delivered, announcement: Announcement) -> Delivered:
        """Add the message's link (for `why` and the status page): the
        workspace's URL (auth.test, asked once) + archives/channel/p<ts>.
        Never fails a delivery: without the URL there is just no link."""
        ts = delivered.message_id
        if not ts or announcement.destination.is_direct:
            return delivered  # a DM's channel is not the member id the row names
        base = await self._workspace_url()
        if base is None:
            return delivered
        url = f"{base.rstrip('/')}/archives/{announcement.destination.id}/p{ts.replace('.', '')}"
        if announcement.reply_to:
            url += f"?thread_ts={announcement.reply_to}&cid={announcement.destination.id}"
        return Delivered(ts, url)

    async def _workspace_url(self) -> str | None:
        now = time.monotonic()
        if self._team_url is None and now >= self._team_url_retry_at:
            self._team_url_retry_at = now + 600.0  # a failed auth.test is asked again in 10 minutes
            try:
                resp = await asyncio.wait_for(self.client.auth_test(), timeout=5.0)
                url = resp.get("url")
                self._team_url = url if isinstance(url, str) and url.startswith("https://") else None
            except Exception as exc:  # noqa: BLE001 - a link is a nicety
                log.info("no message links for now: auth.test failed: %s", describe(exc))
        return self._team_url


async def _close_socket_client(client: SocketModeClient) -> None:
    try:
        await asyncio.wait_for(client.close(), timeout=10)
    except Exception as exc:  # noqa: BLE001
        log.info("closing the Socket Mode client: %s", describe(exc))
    pending = [
        f
        for f in (client.message_processor, client.current_session_monitor, client.message_receiver)
        if f is not None and not f.done()
    ]
    if pending:
        await asyncio.wait(pending, timeout=5)
