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
import logging

import aiohttp
import discord
import yarl

from adapters.discord.commands import build_tree, commands_hash
from adapters.discord.inbound import DEFAULT_RESPOND_WITHIN_S, Inbound
from adapters.discord.outbound import Poster, SlidingWindow, fail_fast_trace, nonce_for
from adapters.discord.views import MoreButton
from adapters.supervisor import GiveUp, Supervisor
from bot.shards import ShardLeases
from bot.config import DiscordConfig
from bot.errors import DeliveryError
from bot.models import Announcement, Delivered, Platform
from bot.ports import CommandHandler, Settings, TopicCompleter

log = logging.getLogger("showbot.discord")

__all__ = ["DiscordAdapter", "nonce_for"]

COMMANDS_HASH_KEY = "discord.commands_hash"
# discord.py sleeps through 429s itself; one that asks for longer than this
# surfaces as RateLimited. (Outbox requests never get that far: see outbound.py.)
MAX_RATELIMIT_WAIT_S = 30.0  # discord.py's minimum for this setting


def intents() -> discord.Intents:
    # No privileged intent: Discord still sends the content of messages that
    # mention the bot, which is all the mention path needs.
    result = discord.Intents.none()
    result.guilds = True
    result.guild_messages = True
    return result


class _Client(discord.Client):
    """discord.Client wired to the adapter; one instance per connection attempt."""

    def __init__(self, adapter: "DiscordAdapter", shard: int | None = None) -> None:
        super().__init__(
            intents=intents(),
            allowed_mentions=discord.AllowedMentions.none(),
            max_ratelimit_timeout=MAX_RATELIMIT_WAIT_S,
            guild_ready_timeout=adapter._guild_ready_timeout_s,
            http_trace=fail_fast_trace(adapter._poster.limiter),
            shard_id=shard,
            shard_count=adapter._config.shard_count if shard is not None else None,
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
        limiter: SlidingWindow | None = None,
        shards: ShardLeases | None = None,
    ) -> None:
        self._config = config
        self._token = token  # never logged, never in a repr
        self._settings = settings
        self._inbound = Inbound(
            handler, config.moderator_role_ids, completer, respond_within_s=respond_within_s
        )
        self._supervisor = Supervisor(
            "discord", self._connect_once, log=log, base_s=backoff_base_s, cap_s=backoff_cap_s,
            expected=(aiohttp.ClientError, discord.ConnectionClosed, discord.GatewayNotFound, discord.HTTPException),
        )
        self._guild_ready_timeout_s = guild_ready_timeout_s
        self._client: _Client | None = None
        self._healthy = False
        self._synced_hash: str | None = None  # used when no Settings store is given
        self._poster = Poster(limiter)
        # The gateway shard this instance connects (by lease: bot.shards);
        # None: announcements only, over REST (another instance holds it).
        self._shards = shards
        self._shard: int | None = 0 if shards is None else None
        self._shard_changed = asyncio.Event()
        if shards is not None:
            shards.on_change(self._assign_shard)

    def __repr__(self) -> str:
        return f"DiscordAdapter(healthy={self._healthy})"

    # --- lifecycle ---

    @property
    def healthy(self) -> bool:
        return self._healthy

    async def start(self) -> None:
        if self._supervisor.running:
            return
        discord.http.Route.BASE = self._config.api_base_url.rstrip("/")
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self._config.gateway_url)
        if self._shards is not None:
            self._shard = await self._shards.claim_once()
        self._supervisor.start()

    @property
    def shard(self) -> int | None:
        return self._shard

    async def _assign_shard(self, shard: int | None) -> None:
        """The lease moved: reconnect as the new shard (or REST only)."""
        if shard == self._shard:
            return
        self._shard = shard
        self._shard_changed.set()
        client = self._client
        if client is not None:
            await client.close()  # the supervisor connects again with the new shard

    async def stop(self) -> None:
        self._supervisor.stopping.set()
        self._healthy = False
        client = self._client
        if client is not None:
            await client.close()
        await self._supervisor.stop(timeout_s=10)

    async def _connect_once(self) -> bool:
        """One discord.py client, from login until its connection ends for
        good (discord.py resumes ordinary drops by itself; a gateway parser
        exception or a non-resumable close code end it)."""
        shard = self._shard
        self._shard_changed.clear()
        client = _Client(self, shard if self._shards is not None else None)
        self._client = client
        try:
            if shard is None:
                await self._rest_only(client)
                return True
            await client.start(self._token)
        except discord.LoginFailure:
            raise GiveUp("discord rejected the bot token (LoginFailure)") from None
        finally:
            self._healthy = False
            await client.close()
            # close() is memoised: if stop() closed this client before start()
            # logged in, login opened a new HTTP session that close() skipped.
            await client.http.close()
            if self._supervisor.stopping.is_set():
                self._client = None
        return client.was_ready

    async def _rest_only(self, client: _Client) -> None:
        """Logged in without a gateway connection: another instance holds the
        shard (commands reach it), this one still delivers announcements."""
        await client.login(self._token)
        self._healthy = True
        log.info("discord: delivering over REST only; the gateway shard is held by another instance")
        stopping = asyncio.ensure_future(self._supervisor.stopping.wait())
        changed = asyncio.ensure_future(self._shard_changed.wait())
        try:
            await asyncio.wait({stopping, changed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            changed.cancel()

    def _on_connected(self, client: _Client) -> None:
        client.was_ready = True
        if client is self._client and not self._supervisor.stopping.is_set():
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

    async def deliver(self, announcement: Announcement) -> Delivered:
        if not self._healthy:
            raise DeliveryError("discord is not connected")
        client = self._ready_client("deliver")
        message, threaded = await self._poster.deliver(client, announcement)
        if threaded:
            await self._poster.open_thread(client, message, announcement)
        return Delivered(message_id=str(message.id), url=message_link(client, announcement, message.id))

    async def edit(self, announcement: Announcement) -> Delivered:
        if not self._healthy:
            raise DeliveryError("discord is not connected")
        client = self._ready_client("edit")
        message = await self._poster.edit(client, announcement)
        return Delivered(message_id=str(message.id), url=message_link(client, announcement, message.id))

    async def find_delivered(self, announcement: Announcement) -> Delivered | None:
        client = self._ready_client("look for an earlier announcement")
        found = await self._poster.find(client, announcement)
        if found is not None and found.message_id and found.message_id.isdigit():
            found = Delivered(found.message_id, message_link(client, announcement, int(found.message_id)))
        return found


def message_link(client: discord.Client, announcement: Announcement, message_id: int) -> str | None:
    """The message's jump link (for `why` and the status page). A channel's
    link needs its server's id, which the gateway's channel cache knows (the
    guilds intent); a message in a channel not cached gets no link rather
    than a request. A direct message gets none: its DM channel's id is not
    the member's id the row names."""
    destination = announcement.destination
    if not destination.id.isdigit():
        return None
    if destination.is_direct:
        return None
    channel = client.get_channel(int(destination.id))
    guild = getattr(channel, "guild", None)
    if guild is None:
        return None
    return f"https://discord.com/channels/{guild.id}/{destination.id}/{message_id}"
