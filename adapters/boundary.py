"""The error boundary every adapter puts around the core for inbound commands.

The core answers a member's mistake with a Reply already (UserError becomes
a kind answer there); anything that still escapes is a bug: it is logged
with its traceback and the member gets a short generic apology, the same on
every platform (discord.py's UserInputError vs CommandInvokeError split).
"""

from __future__ import annotations

import logging

from bot.errors import UserError
from bot.models import Caller, Reply
from bot.ports import CommandHandler

log = logging.getLogger("showbot.commands")

GENERIC_FAILURE = Reply(
    kind="error", text="Sorry, something went wrong answering that. Please try again.", ephemeral=True
)


async def ask_core(handler: CommandHandler, text: str, caller: Caller) -> Reply:
    try:
        return await handler(text, caller)
    except UserError as exc:  # the core should have answered it; still the member's mistake
        return Reply(kind="error", text=str(exc), ephemeral=True)
    except Exception:
        log.exception("command handler failed on %s for %r", caller.platform.value, text[:200])
        return GENERIC_FAILURE
