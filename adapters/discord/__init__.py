"""The Discord adapter. Public API: ``DiscordAdapter`` (a ``bot.ports.ChatAdapter``).

Only this package imports discord.py; ``bot/`` never imports it.
"""

from adapters.discord.adapter import DiscordAdapter

__all__ = ["DiscordAdapter"]
