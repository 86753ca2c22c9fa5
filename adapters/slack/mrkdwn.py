"""Slack mrkdwn in and out: escaping, safe links, trimming, inbound text clean-up.

Pure functions, no I/O. Everything that came from a feed (or from the core,
which repeats feed text) goes through ``escape`` before it reaches Slack, so a
title like ``<!channel>`` shows as text and pings nobody. The only ``<...>``
sequences in what we send are links and mentions this module built itself.
"""

from __future__ import annotations

import re

ELLIPSIS = "…"

# An escaped mrkdwn string is made of these atoms; trimming only cuts between them.
_ATOM = re.compile(r"<[^<>]*>|&(?:amp|lt|gt);|.", re.S)
_SAFE_URL = re.compile(r"^https?://[^\s<>|]+$", re.I)
_SUBTEAM_ID = re.compile(r"^(?:<!subteam\^|subteam\^)?(S[A-Z0-9]{2,})(?:\|[^>]*)?>?$")


def escape(text: str) -> str:
    """Escape the three characters Slack gives a meaning to (&, <, >)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def safe_url(url: str | None) -> str | None:
    """An http(s) URL that can sit inside ``<url|label>``, else None."""
    if not url:
        return None
    url = url.strip()
    if not _SAFE_URL.match(url):
        return None
    return url.replace("&", "&amp;")


def link(url: str | None, label: str, *, label_limit: int = 250) -> str:
    """``<url|label>`` with an escaped label, or just the escaped label."""
    text = trim_plain(one_line(label), label_limit) or (url or "")
    u = safe_url(url)
    if u is None:
        return escape(text)
    # '|' and '>' cannot appear in an escaped label except as entities; '|' is fine
    # after the first one, so the label needs no more than escape().
    return f"<{u}|{escape(text)}>"


def one_line(text: str) -> str:
    return " ".join(text.split())


def trim_plain(text: str, limit: int) -> str:
    """Trim plain (unescaped) text to ``limit`` characters, with an ellipsis."""
    text = text.strip()
    if len(text) <= limit:
        return text
    if limit <= 1:
        return ELLIPSIS[:limit]
    return text[: limit - 1].rstrip() + ELLIPSIS


def trim_mrkdwn(text: str, limit: int) -> str:
    """Trim already-escaped mrkdwn to ``limit`` characters.

    Never cuts inside an entity (``&amp;``) or a ``<link|label>`` / mention:
    whole atoms are kept or dropped, and an ellipsis marks the cut.
    """
    if len(text) <= limit:
        return text
    out: list[str] = []
    used = 0
    budget = limit - len(ELLIPSIS)
    for m in _ATOM.finditer(text):
        atom = m.group(0)
        if used + len(atom) > budget:
            break
        out.append(atom)
        used += len(atom)
    return "".join(out).rstrip() + ELLIPSIS


def subteam_id(mention: str | None) -> str | None:
    """A Slack user-group id from ``S0123``, ``subteam^S0123`` or ``<!subteam^S0123|@x>``."""
    if not mention:
        return None
    m = _SUBTEAM_ID.match(mention.strip())
    return m.group(1) if m else None


# ---------------------------------------------------------------- inbound

_LINK_IN = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")
_SUBTEAM_IN = re.compile(r"<!subteam\^([A-Z0-9]+)(?:\|[^>]*)?>")
_CHANNEL_IN = re.compile(r"<#([A-Z0-9]+)(?:\|[^>]*)?>")


def strip_bot_mention(text: str, bot_user_id: str | None) -> str:
    """Remove mentions of the bot (``<@UBOT>`` / ``<@UBOT|showbot>``) from a message."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
    else:  # unknown bot id: drop one leading user mention (an app_mention starts with it)
        text = re.sub(r"^\s*<@[A-Z0-9]+(?:\|[^>]*)?>", " ", text)
    return " ".join(text.split())


def inbound_text(text: str) -> str:
    """What a member typed, as plain text for the core's grammar.

    Slack wraps URLs (``<https://x|x>``), user groups and channels in angle
    brackets and escapes ``& < >``; the core wants ``feed add https://x``.
    """
    text = _LINK_IN.sub(lambda m: m.group(1) if m.group(1).startswith("http") else (m.group(2) or m.group(1)[7:]), text)
    text = _SUBTEAM_IN.sub(lambda m: m.group(1), text)
    text = _CHANNEL_IN.sub(lambda m: m.group(1), text)
    return " ".join(unescape(text).split())
