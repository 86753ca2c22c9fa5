"""DiscordAdapter: the ChatAdapter for Discord, built on discord.py 2.x.

Lifecycle: ``start()`` launches a supervisor task and returns. The supervisor
builds a fresh ``discord.Client`` and runs ``client.start(token)``; discord.py
reconnects by itself after ordinary drops, but some failures end its
connection task for good (an exception inside a gateway event parser, a
non-resumable close code). Then the supervisor logs the cause, marks the
adapter unhealthy, closes that client and starts a new one after a capped
exponential backoff, until ``stop()``.

Endpoints: ``DiscordConfig.api_base_url`` and ``gateway_url`` are applied at
``start()`` to ``discord.http.Route.BASE`` and
``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY``. Those are PROCESS-WIDE
class attributes of discord.py: every Discord client in the process uses the
last values set (fine for one bot per process; tests point them at a fake).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging

import aiohttp
import discord
import yarl

from adapters.discord.commands import build_tree, commands_hash
from adapters.discord.inbound import DEFAULT_RESPOND_WITHIN_S, Inbound
from adapters.discord.render import (
    FOOTER_MAX,
    announcement_content,
    announcement_embed,
    delivery_marker,
    truncate,
)
from adapters.discord.views import MoreButton
from bot.config import DiscordConfig
from bot.errors import DeliveryError
from bot.models import Announcement, Delivered, Platform
from bot.ports import DM_CHANNEL_PREFIX, CommandHandler, Settings, TopicCompleter

log = logging.getLogger("showbot.discord")

COMMANDS_HASH_KEY = "discord.commands_hash"
HISTORY_SCAN_LIMIT = 50
NONCE_MAX = 25  # Discord: a nonce string is at most 25 characters
# discord.py sleeps through 429s itself; one that asks for longer than this
# surfaces as RateLimited so the outbox can schedule the retry instead.
MAX_RATELIMIT_WAIT_S = 30.0  # discord.py's minimum for this setting
DELIVER_TIMEOUT_S = 60.0


def nonce_for(idempotency_key: str) -> str:
    """A stable message nonce for an outbox row. With ``enforce_nonce`` Discord
    returns the earlier message instead of creating a second one when the same
    nonce is re-sent within a few minutes (the fast half of crash recovery)."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:NONCE_MAX]


def intents() -> discord.Intents:
    # No privileged intent: Discord still sends the content of messages that
    # mention the bot, which is all the mention path needs.
    result = discord.Intents.none()
    result.guilds = True
    result.guild_messages = True
    return result


class _Client(discord.Client):
    """discord.Client wired to the adapter; one instance per connection attempt."""

    def __init__(self, adapter: "DiscordAdapter") -> None:
        super().__init__(
            intents=intents(),
            allowed_mentions=discord.AllowedMentions.none(),
            max_ratelimit_timeout=MAX_RATELIMIT_WAIT_S,
            guild_ready_timeout=adapter._guild_ready_timeout_s,
        )
        self._adapter = adapter
        self.was_ready = False  # READY seen at least once on this client
        self.showbot_sink = adapter._inbound  # read by MoreButton.callback
        self.tree = build_tree(self, adapter._inbound)

    async def setup_hook(self) -> None:
        self.add_dynamic_items(MoreButton)
        await self._adapter._sync_commands(self)

    async def on_ready(self) -> None:
        self._adapter._on_connected(self)

    async def on_resumed(self) -> None:
        self._adapter._on_connected(self)

    async def on_disconnect(self) -> None:
        self._adapter._set_healthy(False)

    async def on_message(self, message: discord.Message) -> None:
        await self._adapter._inbound.on_message(self, message)


class DiscordAdapter:
    platform: Platform = Platform.DISCORD

    def __init__(
        self,
        config: DiscordConfig,
        token: str,
        handler: CommandHandler,
        *,
        completer: TopicCompleter | None = None,
        settings: Settings | None = None,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 300.0,
        respond_within_s: float = DEFAULT_RESPOND_WITHIN_S,
        guild_ready_timeout_s: float = 2.0,
    ) -> None:
        self._config = config
        self._token = token  # never logged, never in a repr
        self._settings = settings
        self._inbound = Inbound(
            handler, config.moderator_role_ids, completer, respond_within_s=respond_within_s
        )
        self._backoff_base_s = backoff_base_s
        self._backoff_cap_s = backoff_cap_s
        self._guild_ready_timeout_s = guild_ready_timeout_s
        self._client: _Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._healthy = False
        self._synced_hash: str | None = None  # used when no Settings store is given

    def __repr__(self) -> str:
        return f"DiscordAdapter(healthy={self._healthy})"

    # --- lifecycle ---

    @property
    def healthy(self) -> bool:
        return self._healthy

    async def start(self) -> None:
        if self._task is not None:
            return
        discord.http.Route.BASE = self._config.api_base_url.rstrip("/")
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self._config.gateway_url)
        self._stopping.clear()
        self._task = asyncio.create_task(self._supervise(), name="showbot-discord")

    async def stop(self) -> None:
        self._stopping.set()
        self._healthy = False
        client = self._client
        if client is not None:
            await client.close()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(task, timeout=10)
            except asyncio.TimeoutError:
                log.warning("discord client did not stop in time; cancelling it")
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def _supervise(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            client = _Client(self)
            self._client = client
            try:
                await client.start(self._token)
                if not self._stopping.is_set():
                    log.warning("discord connection ended without an error; reconnecting")
            except asyncio.CancelledError:
                await client.close()
                raise
            except discord.LoginFailure:
                log.error("discord rejected the bot token (LoginFailure); not retrying")
                await client.close()
                self._healthy = False
                return
            except Exception as exc:
                # Log the cause (type and message, with traceback). discord.py
                # never puts the token in exception messages.
                log.error("discord connection failed: %s: %s", type(exc).__name__, exc, exc_info=exc)
            finally:
                self._healthy = False
            await client.close()
            # close() is memoised: if stop() closed this client before start()
            # logged in, login opened a new HTTP session that close() skipped.
            await client.http.close()
            if self._stopping.is_set():
                break
            if client.was_ready:
                failures = 0  # it had been working: start the backoff over
            delay = min(self._backoff_cap_s, self._backoff_base_s * (2**failures))
            failures += 1
            log.info("reconnecting to discord in %.2fs", delay)
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            except asyncio.TimeoutError:
                pass
        self._client = None

    def _on_connected(self, client: _Client) -> None:
        client.was_ready = True
        if client is self._client and not self._stopping.is_set():
            self._healthy = True
            log.info("connected to discord as %s", client.user)

    def _set_healthy(self, value: bool) -> None:
        self._healthy = value

    # --- command sync ---

    async def _sync_commands(self, client: _Client) -> None:
        guild_ids = tuple(self._config.dev_guild_ids)
        digest = commands_hash(client.tree, guild_ids)
        try:
            stored = await self._settings.find_setting(COMMANDS_HASH_KEY) if self._settings else self._synced_hash
        except Exception:
            log.exception("could not read the stored command hash; syncing anyway")
            stored = None
        if stored == digest:
            log.debug("slash commands unchanged; not syncing")
            return
        try:
            if guild_ids:
                # Guild commands update instantly (global ones can take an hour).
                for gid in guild_ids:
                    guild = discord.Object(id=int(gid))
                    client.tree.copy_global_to(guild=guild)
                    await client.tree.sync(guild=guild)
            else:
                await client.tree.sync()
        except discord.HTTPException as exc:
            # Not fatal: the bot still answers mentions; the next start retries.
            log.error("slash command sync failed: %s %s", exc.status, exc.text[:200])
            return
        self._synced_hash = digest
        if self._settings is not None:
            try:
                await self._settings.set_setting(COMMANDS_HASH_KEY, digest)
            except Exception:
                log.exception("could not store the command hash")
        log.info("slash commands synced to %s", ", ".join(guild_ids) or "all guilds (global)")

    # --- outbound ---

    def _ready_client(self, what: str) -> _Client:
        client = self._client
        if client is None or client.user is None or client.is_closed():
            raise DeliveryError(f"discord is not connected; cannot {what}")
        return client

    async def _destination(self, client: _Client, channel: str) -> discord.abc.Messageable:
        if channel.startswith(DM_CHANNEL_PREFIX):
            user_id = channel[len(DM_CHANNEL_PREFIX):]
            if not user_id.isdigit():
                raise DeliveryError(f"bad DM route {channel!r}", permanent=True)
            dm = await client.create_dm(discord.Object(id=int(user_id)))
            return dm
        if not channel.isdigit():
            raise DeliveryError(f"bad channel id {channel!r}", permanent=True)
        return client.get_partial_messageable(int(channel))

    async def deliver(self, announcement: Announcement) -> Delivered:
        if not self._healthy:
            raise DeliveryError("discord is not connected")
        client = self._ready_client("deliver")
        route = announcement.route
        content = announcement_content(announcement)
        mentions = discord.AllowedMentions.none()
        if content is not None and route.mention:
            mentions = discord.AllowedMentions(
                everyone=False, users=False, replied_user=False, roles=[discord.Object(id=int(route.mention))]
            )
        embed = announcement_embed(announcement)
        try:
            async with asyncio.timeout(DELIVER_TIMEOUT_S):
                dest = await self._destination(client, route.channel)
                message = await dest.send(
                    content=content,
                    embed=embed,
                    allowed_mentions=mentions,
                    nonce=nonce_for(announcement.idempotency_key),
                    reference=_reply_reference(announcement, route.channel),
                )
        except DeliveryError:
            raise
        except Exception as exc:
            raise self._delivery_error(exc, route.channel) from exc
        if route.thread and not announcement.is_follow_up and not route.channel.startswith(DM_CHANNEL_PREFIX):
            await self._open_thread(client, message, announcement)
        return Delivered(message_id=str(message.id))

    async def _open_thread(
        self, client: discord.Client, message: discord.Message, announcement: Announcement
    ) -> None:
        """A discussion thread under the announcement (the route's ``thread``
        option). The message is already posted, so a failure here is logged,
        never a failed delivery: a retry would post the announcement twice."""
        name = (announcement.event.title or "Discussion").strip()[:100] or "Discussion"
        try:
            async with asyncio.timeout(DELIVER_TIMEOUT_S):
                # The raw route: Message.create_thread needs the guild cached,
                # and a channel reached by id alone has none attached.
                await client.http.start_thread_with_message(
                    message.channel.id, message.id, name=name, auto_archive_duration=1440)
        except Exception as exc:
            log.warning("announcement %s posted, but its thread could not be opened: %s",
                        message.id, exc)

    async def find_delivered(self, announcement: Announcement) -> Delivered | None:
        client = self._ready_client("look for an earlier announcement")
        marker = truncate(delivery_marker(announcement.idempotency_key), FOOTER_MAX)
        nonce = nonce_for(announcement.idempotency_key)
        me = client.user.id if client.user else None
        try:
            async with asyncio.timeout(DELIVER_TIMEOUT_S):
                dest = await self._destination(client, announcement.route.channel)
                async for message in dest.history(limit=HISTORY_SCAN_LIMIT):
                    if me is not None and message.author.id != me:
                        continue
                    if str(message.nonce or "") == nonce or any(
                        (e.footer.text or "") == marker for e in message.embeds
                    ):
                        return Delivered(message_id=str(message.id))
        except DeliveryError:
            raise
        except Exception as exc:
            raise self._delivery_error(exc, announcement.route.channel) from exc
        return None

    @staticmethod
    def _delivery_error(exc: BaseException, channel: str) -> DeliveryError:
        if isinstance(exc, discord.RateLimited):
            return DeliveryError(f"rate limited posting to {channel}", retry_after=exc.retry_after)
        if isinstance(exc, discord.Forbidden):
            return DeliveryError(f"missing permission in channel {channel}", permanent=True)
        if isinstance(exc, discord.NotFound):
            return DeliveryError(f"channel {channel} not found (deleted?)", permanent=True)
        if isinstance(exc, discord.HTTPException):
            if exc.status == 429:
                retry = exc.response.headers.get("Retry-After") if exc.response is not None else None
                try:
                    retry_after = float(retry) if retry else None
                except ValueError:
                    retry_after = None
                return DeliveryError(f"rate limited posting to {channel}", retry_after=retry_after)
            # 5xx and anything else: worth another try later. (A 400 means our
            # payload is wrong, which no route change fixes; still not "broken".)
            return DeliveryError(f"discord answered {exc.status} posting to {channel}: {exc.text[:200]}")
        if isinstance(exc, (aiohttp.ClientError, OSError, asyncio.TimeoutError)):
            return DeliveryError(f"network error posting to {channel}: {type(exc).__name__}")
        return DeliveryError(f"unexpected error posting to {channel}: {type(exc).__name__}: {exc}")


def _reply_reference(announcement: Announcement, channel: str) -> discord.MessageReference | None:
    """A follow-up is sent as a reply to the first announcement; if that
    message was deleted meanwhile, Discord posts it plainly instead of failing."""
    if announcement.reply_to is None or not announcement.reply_to.isdigit() or not channel.isdigit():
        return None
    return discord.MessageReference(
        message_id=int(announcement.reply_to), channel_id=int(channel), fail_if_not_exists=False)
