"""The "More" button that runs ``Reply.more`` for whoever clicks it.

The command text travels in the button's custom_id, so the button keeps
working after a restart (a ``DynamicItem`` matched by pattern, no stored
view). Discord caps custom_id at 100 chars; a longer command text is kept in
a small in-memory table under a hash and only works until the process ends.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from typing import Any, Protocol

import discord

CUSTOM_ID_MAX = 100
INLINE_PREFIX = "showbot:more:"
HASHED_PREFIX = "showbot:more#"
_TEMPLATE = re.compile(r"^showbot:more(?P<sep>[:#])(?P<payload>.+)$", re.DOTALL)


class ButtonSink(Protocol):
    async def answer_button(self, interaction: discord.Interaction, text: str) -> None: ...

    def resolve_more(self, key: str) -> str | None: ...


class MoreTexts:
    """Bounded table for command texts too long to inline in a custom_id."""

    def __init__(self, capacity: int = 1000) -> None:
        self._capacity = capacity
        self._texts: OrderedDict[str, str] = OrderedDict()

    def custom_id(self, text: str) -> str:
        inline = INLINE_PREFIX + text
        if len(inline) <= CUSTOM_ID_MAX:
            return inline
        key = hashlib.sha256(text.encode()).hexdigest()[:24]
        self._texts[key] = text
        self._texts.move_to_end(key)
        while len(self._texts) > self._capacity:
            self._texts.popitem(last=False)
        return HASHED_PREFIX + key

    def resolve(self, key: str) -> str | None:
        return self._texts.get(key)


class MoreButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=_TEMPLATE):
    def __init__(self, custom_id: str) -> None:
        super().__init__(
            discord.ui.Button(label="More", style=discord.ButtonStyle.secondary, custom_id=custom_id)
        )
        m = _TEMPLATE.match(custom_id)
        self.inline = m is not None and m.group("sep") == ":"
        self.payload = m.group("payload") if m else ""

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> "MoreButton":
        return cls(item.custom_id)  # type: ignore[attr-defined]

    async def callback(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        sink: ButtonSink | None = getattr(interaction.client, "showbot_sink", None)
        if sink is None:
            return
        text = self.payload if self.inline else sink.resolve_more(self.payload)
        if text is None:
            await interaction.response.send_message(
                "This button has expired; please run the command again.",
                ephemeral=True,
                allowed_mentions=discord.AllowedMentions.none(),
            )
            return
        await sink.answer_button(interaction, text)


def more_view(text: str, table: MoreTexts) -> discord.ui.View:
    # timeout=None: the DynamicItem is persistent; nothing to expire in memory.
    view = discord.ui.View(timeout=None)
    view.add_item(MoreButton(table.custom_id(text)))
    return view
