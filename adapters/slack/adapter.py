"""The Slack adapter: bolt (Socket Mode or HTTP) in, Web API out.

Thin by design: a member's text goes to the core's ``CommandHandler`` as is
(mention / command name stripped, Slack's link and escape markup undone), the
``Reply`` comes back and is rendered by ``render.py``. Permissions, grammar and
"permission denied" answers are the core's business; this module only fills
``Caller.is_moderator`` truthfully.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.app.async_server import AsyncSlackAppServer
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import SlackConfig
from bot.errors import DeliveryError
from bot.models import Announcement, Caller, Delivered, Platform, Reply
from bot.ports import DM_CHANNEL_PREFIX, CommandHandler

from .mrkdwn import inbound_text, strip_bot_mention
from .render import MORE_ACTION_ID, render_announcement, render_reply

log = logging.getLogger("showbot.slack")

METADATA_EVENT_TYPE = "showbot_announcement"

# Errors after which posting to that channel cannot work until a human acts.
PERMANENT_ERRORS = frozenset(
    {
        "not_in_channel",
        "channel_not_found",
        "is_archived",
        "account_inactive",
        "invalid_auth",
        "not_authed",
        "token_revoked",
        "token_expired",
        "missing_scope",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "ekm_access_denied",
        "user_not_found",
        "user_disabled",
        "cannot_dm_bot",
        "team_access_not_granted",
    }
)
# What a reply into a thread whose parent message was deleted may get back:
# the follow-up is then posted on its own rather than retried forever.
THREAD_GONE_ERRORS = frozenset({"thread_not_found", "invalid_thread_ts", "message_not_found"})

Sleep = Callable[[float], Awaitable[None]]


class _RateLimitRetry(AsyncRateLimitErrorRetryHandler):
    """slack_sdk's 429 retry, honouring Retry-After, with an injectable sleep (tests)."""

    def __init__(self, max_retry_count: int, sleep: Sleep) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self._sleep = sleep

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        if response is None:  # pragma: no cover - same contract as the parent
            raise error  # type: ignore[misc]
        state.next_attempt_requested = True
        await self._sleep(_retry_after(response.headers) or 1.0)
        state.increment_current_attempt()


def _retry_after(headers: Any) -> float | None:
    """Retry-After from slack_sdk's header shapes (str values or lists of str)."""
    if not headers:
        return None
    for key in list(headers.keys()):
        if str(key).lower() == "retry-after":
            value = headers[key]
            if isinstance(value, (list, tuple)):
                value = value[0] if value else None
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return None
    return None


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
        # Never the body or the signature: only what helps spot a clock skew or a bad secret.
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
    return response


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
        self._handler = handler
        self._app_token = app_token
        self._host = host
        self._command = command
        self._clock = clock
        self._moderator_ttl = moderator_ttl_s
        self._admin_ids = frozenset(config.admin_user_ids)
        self._backoff_base = backoff_base_s
        self._backoff_max = backoff_max_s
        self._ping_interval = ping_interval_s
        self._watch_interval = watch_interval_s
        self._connect_timeout = connect_timeout_s

        self.client = AsyncWebClient(
            token=bot_token,
            base_url=config.api_base_url,
            logger=logging.getLogger("showbot.slack.web"),
            retry_handlers=[
                AsyncConnectionErrorRetryHandler(),
                _RateLimitRetry(rate_limit_retries, rate_limit_sleep or asyncio.sleep),
            ],
        )
        self.app = AsyncApp(
            client=self.client,
            signing_secret=signing_secret or "",
            logger=_BOLT_LOGGER,
            name="showbot",
            request_verification_enabled=self.mode == "http",
            process_before_response=False,  # ack within 3 s; listeners go on in the background
        )
        self.app.command(command)(self._on_command)
        self.app.event("app_mention")(self._on_mention)
        self.app.event("message")(self._on_message)
        self.app.action(MORE_ACTION_ID)(self._on_more)

        self._moderators: dict[str, tuple[float, bool, str | None]] = {}
        self._dm_channels: dict[str, str] = {}
        self._healthy = False
        self._task: asyncio.Task[None] | None = None
        self._stopping: asyncio.Event | None = None
        self._socket_client: SocketModeClient | None = None
        self.http_port: int | None = None
        self.restarts = 0  # how many times the connection/server was (re)started after a failure

    # ------------------------------------------------------------------ lifecycle

    @property
    def healthy(self) -> bool:
        return self._healthy

    async def start(self) -> None:
        """Launch the supervised Socket Mode connection or HTTP server; return at once."""
        if self._task is not None and not self._task.done():
            return
        self._stopping = asyncio.Event()
        self._task = asyncio.create_task(self._supervise(), name=f"showbot-slack-{self.mode}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if self._stopping is not None:
            self._stopping.set()
        if task is not None:
            try:
                await asyncio.wait_for(task, timeout=15)
            except asyncio.TimeoutError:  # pragma: no cover - a stuck close
                log.warning("slack adapter did not stop within 15s; cancelled")
            except Exception:  # pragma: no cover
                log.exception("slack adapter stopped with an error")
        self._healthy = False

    async def _supervise(self) -> None:
        assert self._stopping is not None
        run = self._run_socket_once if self.mode == "socket" else self._run_http_once
        attempt = 0
        while not self._stopping.is_set():
            reached = False
            try:
                reached = await run()
                reason = "connection closed"
            except _Stopped:
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means: log, back off, retry
                reason = _describe(exc)
            finally:
                self._healthy = False
            if self._stopping.is_set():
                break
            attempt = 0 if reached else attempt + 1
            delay = min(self._backoff_max, self._backoff_base * (2 ** max(0, attempt - 1)))
            self.restarts += 1
            log.warning(
                "slack %s %s (%s); restarting in %.2fs",
                self.mode,
                "connection lost" if self.mode == "socket" else "server stopped",
                reason,
                delay,
            )
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            except asyncio.TimeoutError:
                pass

    async def _wait_stopping(self, timeout: float) -> bool:
        assert self._stopping is not None
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def _interruptible(self, coro: Awaitable[Any], timeout: float) -> Any:
        """Await ``coro`` unless stop() comes first (-> _Stopped) or ``timeout`` passes."""
        assert self._stopping is not None
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

    async def _run_socket_once(self) -> bool:
        """One Socket Mode session. Returns True if it got connected before it ended."""
        assert self._app_token is not None and self._stopping is not None
        client = SocketModeClient(
            app_token=self._app_token,
            logger=logging.getLogger("showbot.slack.socket"),
            web_client=self.client,
            auto_reconnect_enabled=False,  # this supervisor reconnects, with backoff
            ping_interval=self._ping_interval,
        )
        closed = asyncio.Event()

        async def on_close(_message: Any) -> None:
            closed.set()

        client.on_close_listeners.append(on_close)
        client.on_error_listeners.append(on_close)
        _BoltSocketHandler(self.app, client)
        self._socket_client = client
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
            self._socket_client = None
            await _close_socket_client(client)

    async def _run_http_once(self) -> bool:
        """One HTTP server run on config.port/config.path. True if it was listening."""
        assert self._stopping is not None
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

    # ------------------------------------------------------------------ inbound

    async def _on_command(self, ack: Any, command: dict[str, Any], respond: Any) -> None:
        await ack()
        caller = await self.caller_for(
            command.get("user_id", ""), command.get("channel_id", ""), command.get("user_name")
        )
        text = inbound_text(command.get("text") or "") or "help"
        reply = await self._ask(text, caller)
        await self._respond(respond, reply, caller)

    async def _on_mention(self, ack: Any, event: dict[str, Any], context: Any) -> None:
        await ack()
        user, channel = event.get("user"), event.get("channel")
        if not user or not channel or event.get("bot_id"):
            return
        text = inbound_text(strip_bot_mention(event.get("text") or "", context.get("bot_user_id")))
        caller = await self.caller_for(user, channel)
        reply = await self._ask(text or "help", caller)
        await self._post_reply(channel, user, reply, thread_ts=event.get("thread_ts"))

    async def _on_message(self, ack: Any, event: dict[str, Any], context: Any) -> None:
        await ack()
        if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id"):
            return
        user, channel = event.get("user"), event.get("channel")
        if not user or not channel or user == context.get("bot_user_id"):
            return
        text = inbound_text(strip_bot_mention(event.get("text") or "", context.get("bot_user_id")))
        caller = await self.caller_for(user, channel)
        reply = await self._ask(text or "help", caller)
        await self._post_reply(channel, user, reply, thread_ts=event.get("thread_ts"))

    async def _on_more(self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
        await ack()
        value = (action or {}).get("value") or ""
        user = (body.get("user") or {}).get("id", "")
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id", "")
        if not value or not user:
            return
        caller = await self.caller_for(user, channel)
        reply = await self._ask(value, caller)
        if body.get("response_url"):
            await self._respond(respond, reply, caller)
        else:
            await self._post_reply(channel, user, reply)

    async def caller_for(self, user_id: str, channel: str, display_name: str | None = None) -> Caller:
        is_moderator, name = await self._moderator(user_id)
        return Caller(
            platform=Platform.SLACK,
            user_id=user_id,
            channel=channel,
            is_moderator=is_moderator,
            display_name=display_name or name,
        )

    async def _moderator(self, user_id: str) -> tuple[bool, str | None]:
        """Configured admin ids, else workspace admins/owners per users.info (cached)."""
        if user_id in self._admin_ids:
            return True, None
        now = self._clock()
        cached = self._moderators.get(user_id)
        if cached is not None and cached[0] > now:
            return cached[1], cached[2]
        try:
            resp = await self.client.users_info(user=user_id)
        except (SlackApiError, SlackClientError, aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            log.warning("users.info failed for %s (%s); treating as not a moderator", user_id, _describe(exc))
            return False, None
        user = resp.get("user") or {}
        is_mod = bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))
        profile = user.get("profile") or {}
        name = profile.get("display_name") or user.get("real_name") or user.get("name") or None
        self._moderators[user_id] = (now + self._moderator_ttl, is_mod, name)
        return is_mod, name

    async def _ask(self, text: str, caller: Caller) -> Reply:
        try:
            return await self._handler(text, caller)
        except Exception:  # noqa: BLE001 - the core should answer; a bug must not go silent
            log.exception("the command handler failed")
            return Reply(kind="error", text="Sorry, something went wrong answering that.", ephemeral=True)

    @staticmethod
    def _private(reply: Reply) -> bool:
        return reply.ephemeral or reply.kind == "error"

    async def _respond(self, respond: Any, reply: Reply, caller: Caller) -> None:
        """Answer a slash command / button click through its response_url."""
        message = render_reply(reply)
        private = self._private(reply)
        try:
            resp = await respond(
                text=message["text"],
                blocks=message["blocks"],
                response_type="ephemeral" if private else "in_channel",
                replace_original=False,
                unfurl_links=False,
                unfurl_media=False,
            )
            if getattr(resp, "status_code", 200) >= 300:
                log.warning("slack response_url answered HTTP %s", resp.status_code)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
            log.warning("could not answer through response_url (%s)", _describe(exc))
        if reply.image_path and not private:
            await self._upload_image(caller.channel, reply.image_path, None)

    async def _post_reply(self, channel: str, user: str, reply: Reply, thread_ts: str | None = None) -> None:
        """Answer a mention or a DM with chat.postMessage (chat.postEphemeral if private)."""
        message = render_reply(reply)
        private = self._private(reply) and not channel.startswith("D")
        try:
            if private:
                await self.client.chat_postEphemeral(
                    channel=channel, user=user, text=message["text"], blocks=message["blocks"], thread_ts=thread_ts
                )
            else:
                await self.client.chat_postMessage(
                    channel=channel,
                    text=message["text"],
                    blocks=message["blocks"],
                    thread_ts=thread_ts,
                    unfurl_links=False,
                    unfurl_media=False,
                )
        except (SlackApiError, SlackClientError, aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            log.warning("could not answer in %s (%s)", channel, _describe(exc))
            return
        if reply.image_path and not private:
            await self._upload_image(channel, reply.image_path, thread_ts)

    async def _upload_image(self, channel: str, path: str, thread_ts: str | None) -> None:
        if not channel or not Path(path).is_file():
            log.warning("reply image %s is missing; not uploaded", Path(path).name)
            return
        try:
            await self.client.files_upload_v2(
                channel=channel, file=path, filename=Path(path).name, title=Path(path).stem, thread_ts=thread_ts
            )
        except (SlackApiError, SlackClientError, aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            log.warning("could not upload %s to %s (%s)", Path(path).name, channel, _describe(exc))

    # ------------------------------------------------------------------ outbound

    async def _channel_for(self, route_channel: str) -> str:
        """A route's channel id; ``user:<id>`` opens (once) the DM with that user."""
        if not route_channel.startswith(DM_CHANNEL_PREFIX):
            return route_channel
        user = route_channel[len(DM_CHANNEL_PREFIX):]
        if user not in self._dm_channels:
            resp = await self.client.conversations_open(users=user)
            self._dm_channels[user] = resp["channel"]["id"]
        return self._dm_channels[user]

    async def deliver(self, announcement: Announcement) -> Delivered:
        where = announcement.route.channel
        message = render_announcement(announcement)
        try:
            channel = await self._channel_for(where)
            try:
                # A follow-up goes in the first announcement's thread.
                resp = await self._post_announcement(channel, announcement, message, announcement.reply_to)
            except SlackApiError as exc:
                if announcement.reply_to is None or _api_error(exc) not in THREAD_GONE_ERRORS:
                    raise
                log.info("the announcement to follow up in %s is gone (%s); posting on its own",
                         where, _api_error(exc))
                resp = await self._post_announcement(channel, announcement, message, None)
        except Exception as exc:  # noqa: BLE001 - everything becomes a DeliveryError
            raise _delivery_error(exc, where) from exc
        return Delivered(message_id=resp.get("ts"))

    async def _post_announcement(
        self, channel: str, announcement: Announcement, message: dict[str, Any], thread_ts: str | None
    ) -> Any:
        return await self.client.chat_postMessage(
            channel=channel,
            text=message["text"],
            blocks=message["blocks"],
            unfurl_links=False,
            unfurl_media=False,
            thread_ts=thread_ts,
            metadata={
                "event_type": METADATA_EVENT_TYPE,
                "event_payload": {
                    "key": announcement.idempotency_key,
                    "event_id": announcement.event.id,
                },
            },
        )

    async def find_delivered(self, announcement: Announcement) -> Delivered | None:
        where = announcement.route.channel
        try:
            channel = await self._channel_for(where)
            if announcement.reply_to:  # thread replies are not in the channel's history
                resp = await self.client.conversations_replies(
                    channel=channel, ts=announcement.reply_to, limit=50, include_all_metadata=True)
            else:
                resp = await self.client.conversations_history(
                    channel=channel, limit=50, include_all_metadata=True)
        except SlackApiError as exc:
            err = _delivery_error(exc, where)
            if err.retry_after is not None:
                raise err from exc
            # Can't look (no history scope, channel gone...): say "not found";
            # deliver() will then surface a permanent error properly.
            log.warning("could not look for an earlier announcement in %s (%s)", where, _describe(exc))
            return None
        except Exception as exc:  # noqa: BLE001 - network: let the outbox try again later
            raise _delivery_error(exc, where) from exc
        for msg in resp.get("messages") or []:
            meta = msg.get("metadata") or {}
            payload = meta.get("event_payload") or {}
            if meta.get("event_type") == METADATA_EVENT_TYPE and payload.get("key") == announcement.idempotency_key:
                return Delivered(message_id=msg.get("ts"))
        return None


# ---------------------------------------------------------------------- helpers


def _api_error(exc: SlackApiError) -> str:
    data = getattr(exc.response, "data", None)
    if isinstance(data, dict):
        return str(data.get("error") or "unknown_error")
    return "unknown_error"


def _describe(exc: BaseException) -> str:
    """A one-line reason for logs: never a token, never a request body."""
    if isinstance(exc, SlackApiError):
        status = getattr(exc.response, "status_code", "?")
        return f"slack api error {_api_error(exc)} (HTTP {status})"
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


def _delivery_error(exc: BaseException, where: str) -> DeliveryError:
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, SlackApiError):
        error = _api_error(exc)
        status = getattr(exc.response, "status_code", 200)
        if status == 429 or error == "ratelimited":
            retry_after = _retry_after(getattr(exc.response, "headers", None)) or 1.0
            return DeliveryError(
                f"slack rate-limited posting to {where}; retry after {retry_after:g}s", retry_after=retry_after
            )
        if error in PERMANENT_ERRORS:
            return DeliveryError(f"slack refused to post to {where}: {error}", permanent=True)
        return DeliveryError(f"slack error posting to {where}: {error} (HTTP {status})")
    return DeliveryError(f"could not reach slack to post to {where}: {_describe(exc)}")


async def _close_socket_client(client: SocketModeClient) -> None:
    try:
        await asyncio.wait_for(client.close(), timeout=10)
    except Exception as exc:  # noqa: BLE001
        log.info("closing the Socket Mode client: %s", _describe(exc))
    pending = [
        f
        for f in (client.message_processor, client.current_session_monitor, client.message_receiver)
        if f is not None and not f.done()
    ]
    if pending:
        await asyncio.wait(pending, timeout=5)
