"""Inbound: a slash command, a button click or a mention -> the core -> a reply.

Nothing here interprets the command: the text goes to the ``CommandHandler``
as is, and its ``Reply`` is rendered. The only decisions are Discord ones:
respond directly or defer, ephemeral or not, which mentions may ping (none).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any, Iterable, Iterator

import discord

from adapters.discord.caller import caller_from_interaction, caller_from_message, strip_bot_mention
from adapters.discord.render import RenderedMessage, render_reply
from adapters.boundary import ask_core
from adapters.discord.views import MoreTexts, more_view
from bot.models import Caller
from bot.ports import CommandHandler, TopicCompleter

log = logging.getLogger("showbot.discord")

# Discord gives an interaction 3 s for its first response; answer directly if
# the core is quicker than this, else defer ("thinking...") and follow up.
DEFAULT_RESPOND_WITHIN_S = 2.0



class Inbound:
    def __init__(
        self,
        handler: CommandHandler,
        moderator_role_ids: Iterable[str],
        completer: TopicCompleter | None = None,
        *,
        respond_within_s: float = DEFAULT_RESPOND_WITHIN_S,
    ) -> None:
        self._handler = handler
        self._role_ids = tuple(str(r) for r in moderator_role_ids)
        self._completer = completer
        self._respond_within_s = respond_within_s
        self._more = MoreTexts()

    # --- the core, behind an error boundary ---

    async def ask(self, text: str, caller: Caller) -> RenderedMessage:
        return render_reply(await ask_core(self._handler, text, caller))

    def send_kwargs(self, rendered: RenderedMessage) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "content": rendered.content,
            "embeds": rendered.embeds,
            "allowed_mentions": discord.AllowedMentions.none(),
        }
        if rendered.more:
            kwargs["view"] = more_view(rendered.more, self._more)
        if rendered.image_path:
            if os.path.isfile(rendered.image_path):
                # discord.py closes the file once the request is sent.
                kwargs["file"] = discord.File(rendered.image_path, filename=os.path.basename(rendered.image_path))
            else:
                log.warning("reply image %s does not exist; sending without it", rendered.image_path)
        return kwargs

    @contextlib.contextmanager
    def message_parts(self, rendered: RenderedMessage) -> Iterator[dict[str, Any]]:
        """``send_kwargs`` that closes the attached file afterwards: discord.py
        closes it after a channel send but not after an interaction response."""
        kwargs = self.send_kwargs(rendered)
        try:
            yield kwargs
        finally:
            file = kwargs.get("file")
            if file is not None:
                file.close()

    # --- slash commands and buttons ---

    async def answer_slash(
        self, interaction: discord.Interaction, text: str, *, moderator_command: bool
    ) -> None:
        caller = caller_from_interaction(interaction, self._role_ids)
        task = asyncio.create_task(self.ask(text, caller))
        done, _ = await asyncio.wait({task}, timeout=self._respond_within_s)
        if task in done:
            rendered = task.result()
            # Moderator output is always private, whatever the core marked it
            # (and however fast it answered): "Announcing ... here" is for the
            # moderator, not the channel.
            with self.message_parts(rendered) as parts:
                await interaction.response.send_message(
                    ephemeral=rendered.ephemeral or moderator_command, **parts
                )
            return
        # Slow core: acknowledge now. A deferred response's visibility is fixed
        # here, so moderator output (always private) defers ephemerally.
        await interaction.response.defer(ephemeral=moderator_command, thinking=True)
        rendered = await task
        with self.message_parts(rendered) as parts:
            await interaction.followup.send(ephemeral=rendered.ephemeral or moderator_command, **parts)

    async def answer_button(self, interaction: discord.Interaction, text: str) -> None:
        await self.answer_slash(interaction, text, moderator_command=False)

    def resolve_more(self, key: str) -> str | None:
        return self._more.resolve(key)

    async def complete_topic(self, prefix: str) -> list[str]:
        if self._completer is None:
            return []
        try:
            return list(await self._completer(prefix[:100], 25))
        except Exception:
            log.exception("topic completer failed")
            return []

    # --- mentions ---

    async def on_message(self, client: discord.Client, message: discord.Message) -> None:
        me = client.user
        if me is None or message.author.bot or message.author.id == me.id:
            return
        text = strip_bot_mention(message.content or "", me.id)
        if text is None:
            return
        caller = caller_from_message(message, self._role_ids)
        rendered = await self.ask(text, caller)
        # No ephemeral messages outside interactions: the answer is public,
        # as a reply that does not ping the asker.
        with self.message_parts(rendered) as parts:
            await message.channel.send(reference=message, mention_author=False, **parts)
