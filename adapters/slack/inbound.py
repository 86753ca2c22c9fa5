"""Inbound: a slash command, a mention, a DM or a button -> the core -> a reply.

Thin by design: a member's text goes to the core's ``CommandHandler`` as is
(mention / command name stripped, Slack's link and escape markup undone),
behind the adapters' shared error boundary, and the ``Reply`` comes back to
be rendered by ``render.py``. Permissions and grammar are the core's
business; ``Callers`` only fills ``Caller.is_moderator`` truthfully.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.boundary import ask_core
from adapters.slack.api import describe
from adapters.slack.caller import Callers
from adapters.slack.mrkdwn import inbound_text, strip_bot_mention
from adapters.slack.render import render_reply
from bot.models import Caller, Reply
from bot.ports import CommandHandler

log = logging.getLogger("showbot.slack")

_NETWORK = (SlackApiError, SlackClientError, aiohttp.ClientError, asyncio.TimeoutError, OSError)


class Inbound:
    def __init__(self, handler: CommandHandler, client: AsyncWebClient, callers: Callers) -> None:
        self._handler = handler
        self._client = client
        self._callers = callers

    async def on_command(self, ack: Any, command: dict[str, Any], respond: Any) -> None:
        await ack()
        caller = await self._callers.caller_for(
            command.get("user_id", ""), command.get("channel_id", ""), command.get("user_name"))
        text = inbound_text(command.get("text") or "") or "help"
        reply = await ask_core(self._handler, text, caller)
        await self._respond(respond, reply, caller)

    async def on_mention(self, ack: Any, event: dict[str, Any], context: Any) -> None:
        await ack()
        user, channel = event.get("user"), event.get("channel")
        if not user or not channel or event.get("bot_id"):
            return
        text = inbound_text(strip_bot_mention(event.get("text") or "", context.get("bot_user_id")))
        caller = await self._callers.caller_for(user, channel)
        reply = await ask_core(self._handler, text or "help", caller)
        await self._post_reply(channel, user, reply, thread_ts=event.get("thread_ts"))

    async def on_message(self, ack: Any, event: dict[str, Any], context: Any) -> None:
        await ack()
        if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id"):
            return
        user, channel = event.get("user"), event.get("channel")
        if not user or not channel or user == context.get("bot_user_id"):
            return
        text = inbound_text(strip_bot_mention(event.get("text") or "", context.get("bot_user_id")))
        caller = await self._callers.caller_for(user, channel)
        reply = await ask_core(self._handler, text or "help", caller)
        await self._post_reply(channel, user, reply, thread_ts=event.get("thread_ts"))

    async def on_more(self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
        await ack()
        value = (action or {}).get("value") or ""
        user = (body.get("user") or {}).get("id", "")
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id", "")
        if not value or not user:
            return
        caller = await self._callers.caller_for(user, channel)
        reply = await ask_core(self._handler, value, caller)
        if body.get("response_url"):
            await self._respond(respond, reply, caller)
        else:
            await self._post_reply(channel, user, reply)

    @staticmethod
    def _private(reply: Reply) -> bool:
        return reply.ephemeral or reply.kind == "error"

    async def _respond(self, respond: Any, reply: Reply, caller: Caller) -> None:
        """Answer a slash command / button click through its response_url."""
        message = render_reply(reply)
        private = self._private(reply)
        try:
            resp = await respond(
                text=message["text"], blocks=message["blocks"],
                response_type="ephemeral" if private else "in_channel",
                replace_original=False, unfurl_links=False, unfurl_media=False,
            )
            if getattr(resp, "status_code", 200) >= 300:
                log.warning("slack response_url answered HTTP %s", resp.status_code)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
            log.warning("could not answer through response_url (%s)", describe(exc))
        if reply.image_path and not private:
            await self._upload_image(caller.channel, reply.image_path, None)

    async def _post_reply(self, channel: str, user: str, reply: Reply, thread_ts: str | None = None) -> None:
        """Answer a mention or a DM with chat.postMessage (chat.postEphemeral if private)."""
        message = render_reply(reply)
        private = self._private(reply) and not channel.startswith("D")
        try:
            if private:
                await self._client.chat_postEphemeral(
                    channel=channel, user=user, text=message["text"], blocks=message["blocks"], thread_ts=thread_ts)
            else:
                await self._client.chat_postMessage(
                    channel=channel, text=message["text"], blocks=message["blocks"], thread_ts=thread_ts,
                    unfurl_links=False, unfurl_media=False)
        except _NETWORK as exc:
            log.warning("could not answer in %s (%s)", channel, describe(exc))
            return
        if reply.image_path and not private:
            await self._upload_image(channel, reply.image_path, thread_ts)

    async def _upload_image(self, channel: str, path: str, thread_ts: str | None) -> None:
        if not channel or not Path(path).is_file():
            log.warning("reply image %s is missing; not uploaded", Path(path).name)
            return
        try:
            await self._client.files_upload_v2(
                channel=channel, file=path, filename=Path(path).name, title=Path(path).stem, thread_ts=thread_ts)
        except _NETWORK as exc:
            log.warning("could not upload %s to %s (%s)", Path(path).name, channel, describe(exc))
