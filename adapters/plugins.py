"""Adapter factories, registered as ``showbot.adapters`` entry points.

Each returns None when its token is not set, and imports its chat SDK only
when it is, so a console-only bot never loads discord.py or slack-bolt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.app import AdapterContext
    from bot.ports import ChatAdapter


def discord(context: "AdapterContext") -> "ChatAdapter | None":
    token = context.secrets.discord_token
    if not token:
        return None
    from adapters.discord import DiscordAdapter

    return DiscordAdapter(context.config.discord, token, context.handler,
                          completer=context.completer, settings=context.settings,
                          shards=context.discord_shards)


def slack(context: "AdapterContext") -> "ChatAdapter | None":
    secrets = context.secrets
    if not secrets.slack_bot_token:
        return None
    from adapters.slack import SlackAdapter

    return SlackAdapter(context.config.slack, bot_token=secrets.slack_bot_token,
                        handler=context.handler, app_token=secrets.slack_app_token,
                        signing_secret=secrets.slack_signing_secret, http=context.http)
