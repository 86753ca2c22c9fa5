"""The slash-command tree: every command only turns its options into the
core's command text (the same grammar a mention uses) and forwards it.

Member commands: /latest /search /episode /random /book /stats /subscribe
/unsubscribe /subscriptions /help. Moderator commands (feeds, status, announce, template, preview, filter,
feed add|remove|pause|resume|test|backfill) live in one /showbot group registered with default_member_permissions = Manage Server; that only
hides them in the client; the core checks ``Caller.is_moderator``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Iterable, Protocol

import discord
from discord import app_commands

from bot.templates import GALLERY

CONTENT_KINDS = ("episode", "video", "article", "post")
AUTOCOMPLETE_MAX = 25
CHOICE_MAX = 100  # Discord's limit for a choice's name and value
TEMPLATE_NAMES = tuple(g.name for g in GALLERY)


class SlashSink(Protocol):
    """What the tree forwards to (the adapter's inbound side)."""

    async def answer_slash(
        self, interaction: discord.Interaction, text: str, *, moderator_command: bool
    ) -> None: ...

    async def complete_topic(self, prefix: str) -> list[str]: ...


def command_text(*parts: object) -> str:
    """Join the non-empty parts: ('latest', None) -> 'latest'."""
    return " ".join(str(p).strip() for p in parts if p is not None and str(p).strip())


def feed_add_text(url: str, kind: str | None, name: str | None, every: str | None) -> str:
    return command_text(
        "feed add",
        url,
        f"as {kind}" if kind else None,
        f"name {name}" if name else None,
        f"every {every}" if every else None,
    )


def announce_text(kinds: str, mention: discord.Role | None, thread: bool = False) -> str:
    kinds = " ".join(kinds.replace(",", " ").split())
    if kinds.lower() == "off":
        return "announce off here"
    return command_text("announce", kinds, "here", f"mention {mention.id}" if mention else None,
                        "thread" if thread else None)


def template_text(name: str | None, text: str | None) -> str:
    if text and text.strip():
        return f"template set here {text.strip()}"
    if name in (None, "list"):
        return "template list"
    if name == "reset":
        return "template reset here"
    return f"template {name} here"


def build_tree(client: discord.Client, sink: SlashSink) -> app_commands.CommandTree:
    tree: app_commands.CommandTree = app_commands.CommandTree(client)
    kind_choices = [app_commands.Choice(name=k, value=k) for k in CONTENT_KINDS]

    async def topics(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        words = await sink.complete_topic(current)
        return [
            app_commands.Choice(name=w[:CHOICE_MAX], value=w[:CHOICE_MAX])
            for w in words[:AUTOCOMPLETE_MAX]
            if w
        ]

    # --- member commands ---
    @tree.command(name="latest", description="The newest episode, video, article or post")
    @app_commands.describe(kind="Only this kind of content")
    @app_commands.choices(kind=kind_choices)
    async def latest(interaction: discord.Interaction, kind: app_commands.Choice[str] | None = None) -> None:
        await sink.answer_slash(
            interaction, command_text("latest", kind.value if kind else None), moderator_command=False
        )

    @tree.command(name="search", description="Find episodes, videos and articles on a topic")
    @app_commands.describe(topic="What to look for, e.g. postgres")
    async def search(interaction: discord.Interaction, topic: str) -> None:
        await sink.answer_slash(interaction, command_text("search", topic), moderator_command=False)

    @tree.command(name="episode", description="One episode by its number")
    async def episode(interaction: discord.Interaction, number: app_commands.Range[int, 0, 1_000_000]) -> None:
        await sink.answer_slash(interaction, command_text("episode", number), moderator_command=False)

    @tree.command(name="random", description="A random episode, optionally on a topic")
    async def random_(interaction: discord.Interaction, topic: str | None = None) -> None:
        text = command_text("random", f"on {topic}" if topic and topic.strip() else None)
        await sink.answer_slash(interaction, text, moderator_command=False)

    @tree.command(name="book", description="About the book")
    async def book(interaction: discord.Interaction) -> None:
        await sink.answer_slash(interaction, "book", moderator_command=False)

    @tree.command(name="stats", description="Numbers about the catalogue")
    async def stats(interaction: discord.Interaction) -> None:
        await sink.answer_slash(interaction, "stats", moderator_command=False)

    @tree.command(name="subscribe", description="Get a direct message when something on a topic appears")
    async def subscribe(interaction: discord.Interaction, topic: str) -> None:
        await sink.answer_slash(interaction, command_text("subscribe", topic), moderator_command=False)

    @tree.command(name="unsubscribe", description="Stop the direct messages on a topic")
    async def unsubscribe(interaction: discord.Interaction, topic: str) -> None:
        await sink.answer_slash(interaction, command_text("unsubscribe", topic), moderator_command=False)

    @tree.command(name="subscriptions", description="Your topic subscriptions")
    async def subscriptions(interaction: discord.Interaction) -> None:
        await sink.answer_slash(interaction, "subscriptions", moderator_command=False)

    @tree.command(name="help", description="What the bot can do")
    async def help_(interaction: discord.Interaction, command: str | None = None) -> None:
        await sink.answer_slash(interaction, command_text("help", command), moderator_command=False)

    for cmd in (search, random_, subscribe, unsubscribe):
        cmd.autocomplete("topic")(topics)

    # --- moderator commands ---
    showbot = app_commands.Group(
        name="showbot",
        description="Moderator commands",
        default_permissions=discord.Permissions(manage_guild=True),
        guild_only=True,
    )
    feed = app_commands.Group(name="feed", description="Manage watched feeds", parent=showbot)

    async def mod(interaction: discord.Interaction, text: str) -> None:
        await sink.answer_slash(interaction, text, moderator_command=True)

    @showbot.command(name="feeds", description="List watched feeds")
    async def feeds(interaction: discord.Interaction) -> None:
        await mod(interaction, "feeds")

    @showbot.command(name="status", description="Feed health and delivery status")
    async def status(interaction: discord.Interaction) -> None:
        await mod(interaction, "status")

    @showbot.command(name="announce", description="Announce kinds of content in this channel")
    @app_commands.describe(
        kinds="'episode video' adds, 'only episode' replaces, 'off [kinds]', 'episode from podcast', "
              "'digest daily', 'pace 30s', 'cap 10', 'test'",
        mention="A role to mention with each announcement",
        thread="Open a discussion thread under each announcement",
    )
    async def announce(
        interaction: discord.Interaction, kinds: str, mention: discord.Role | None = None, thread: bool = False
    ) -> None:
        await mod(interaction, announce_text(kinds, mention, thread))

    @showbot.command(name="filter", description="Only announce (or skip) a feed's items matching a pattern")
    @app_commands.choices(
        mode=[app_commands.Choice(name="include", value="include"), app_commands.Choice(name="exclude", value="exclude")]
    )
    async def filter_(
        interaction: discord.Interaction, feed_name: str, mode: app_commands.Choice[str], pattern: str
    ) -> None:
        await mod(interaction, command_text("filter", feed_name, mode.value, pattern))

    @feed.command(name="add", description="Watch a new feed")
    @app_commands.choices(kind=kind_choices)
    @app_commands.describe(every="Poll interval, e.g. 15m")
    async def feed_add(
        interaction: discord.Interaction,
        url: str,
        kind: app_commands.Choice[str] | None = None,
        name: str | None = None,
        every: str | None = None,
    ) -> None:
        await mod(interaction, feed_add_text(url, kind.value if kind else None, name, every))

    def feed_verb(verb: str, description: str) -> None:
        @feed.command(name=verb, description=description)
        async def run(interaction: discord.Interaction, name: str) -> None:
            await mod(interaction, command_text("feed", verb, name))

    @showbot.command(name="template", description="How announcements look in this channel")
    @app_commands.describe(name="A template from the gallery, 'list' to see them, 'reset' for the default card",
                           text="Your own template, e.g. {title} {url}")
    @app_commands.choices(name=[app_commands.Choice(name=n, value=n) for n in (*TEMPLATE_NAMES, "list", "reset")])
    async def template(interaction: discord.Interaction, name: app_commands.Choice[str] | None = None,
                       text: str | None = None) -> None:
        await mod(interaction, template_text(name.value if name else None, text))

    @showbot.command(name="preview", description="A feed's newest item as this channel would get it")
    @app_commands.describe(here="With this channel's template and mention (default: yes)")
    async def preview(interaction: discord.Interaction, feed_name: str, here: bool = True) -> None:
        await mod(interaction, command_text("preview", feed_name, "here" if here else None))

    @feed.command(name="backfill", description="Announce a feed's newest stored items, once")
    async def backfill(interaction: discord.Interaction, name: str, count: app_commands.Range[int, 1, 50]) -> None:
        await mod(interaction, command_text("feed backfill", name, count))

    feed_verb("remove", "Stop watching a feed")
    feed_verb("pause", "Pause a feed")
    feed_verb("resume", "Resume a paused feed")
    feed_verb("test", "Poll a feed now and show what it would announce")

    # -- why (operators, issue #13): kept in its own block
    @showbot.command(name="why", description="Why an item was or wasn't announced, step by step")
    @app_commands.describe(item="The item's URL or title")
    async def why(interaction: discord.Interaction, item: str) -> None:
        await mod(interaction, command_text("why", item))

    tree.add_command(showbot)
    return tree


def commands_hash(tree: app_commands.CommandTree, guild_ids: Iterable[str]) -> str:
    """A stable hash of exactly what a sync would PUT, plus where it goes.

    Changing a command, an option or the dev guild list changes the hash, so
    the next start re-syncs; an unchanged set never does (Discord rate-limits
    command upserts hard).
    """
    payload = sorted((c.to_dict(tree) for c in tree.get_commands()), key=lambda c: c["name"])
    blob = json.dumps({"commands": payload, "guilds": sorted(guild_ids)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()
