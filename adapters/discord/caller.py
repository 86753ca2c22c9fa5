"""Who is talking: a Discord member turned into a core ``Caller``.

``is_moderator`` is decided here, on the server side, from data Discord
itself computed (the interaction's resolved permissions, the member's role
ids). ``default_member_permissions`` on the /showbot group only hides the
commands in the client, and server admins can override it, so the core must
never rely on it.
"""

from __future__ import annotations

import re
from typing import Iterable

import discord

from bot.models import Caller, Platform


def member_role_ids(user: discord.abc.User) -> set[str]:
    """Role ids of a member, even when the guild's roles are not cached.

    ``Member.roles`` drops ids whose Role object isn't cached (e.g. an
    interaction from a guild the gateway never sent), so read the raw id list
    discord.py keeps; fall back to the public API.
    """
    ids: set[str] = set()
    raw = getattr(user, "_roles", None)
    if raw is not None:
        ids.update(str(r) for r in raw)
    for role in getattr(user, "roles", ()) or ():
        ids.add(str(role.id))
    return ids


def has_manage_server(perms: discord.Permissions | None) -> bool:
    return bool(perms and (perms.manage_guild or perms.administrator))


def is_moderator(
    user: discord.abc.User,
    moderator_role_ids: Iterable[str],
    resolved: discord.Permissions | None = None,
) -> bool:
    """Manage Server (or Administrator) or one of the configured roles.

    ``resolved`` is what Discord computed for an interaction; for a plain
    message the guild-level permissions come from the cached guild roles.
    """
    if not isinstance(user, discord.Member):
        return False  # DMs: nobody moderates from a DM
    if has_manage_server(resolved):
        return True
    try:
        if has_manage_server(user.guild_permissions):
            return True
    except AttributeError:  # guild not cached well enough to compute
        pass
    wanted = {str(r) for r in moderator_role_ids}
    return bool(wanted & member_role_ids(user))


def caller_from_interaction(
    interaction: discord.Interaction, moderator_role_ids: Iterable[str]
) -> Caller:
    user = interaction.user
    resolved = interaction.permissions if isinstance(user, discord.Member) else None
    return Caller(
        platform=Platform.DISCORD,
        user_id=str(user.id),
        channel=str(interaction.channel_id or ""),
        is_moderator=is_moderator(user, moderator_role_ids, resolved),
        display_name=user.display_name,
    )


def caller_from_message(message: discord.Message, moderator_role_ids: Iterable[str]) -> Caller:
    user = message.author
    return Caller(
        platform=Platform.DISCORD,
        user_id=str(user.id),
        channel=str(message.channel.id),
        is_moderator=is_moderator(user, moderator_role_ids),
        display_name=user.display_name,
    )


def strip_bot_mention(content: str, bot_id: int) -> str | None:
    """'<@BOT> episodes on postgres' -> 'episodes on postgres'.

    None when the message does not mention the bot by user id (``<@id>`` or
    the legacy nickname form ``<@!id>``): then it isn't for us.
    """
    pattern = re.compile(rf"<@!?{bot_id}>")
    if not pattern.search(content):
        return None
    return " ".join(pattern.sub(" ", content).split())
