"""Personal subscriptions: commands and the pure matcher."""

from __future__ import annotations

from datetime import datetime, timezone

from bot.models import Caller, Chapter, Item, Platform
from bot.intents import Subscription
from bot.subscriptions import match_subscriptions
from tests.catalog_helpers import MEMBER
from tests.chat import Chat

OTHER = Caller(platform=Platform.SLACK, user_id="U777", channel="C1")


async def test_subscribe_list_unsubscribe(chat: Chat) -> None:
    bot = chat.commands
    reply = await bot("subscribe Kafka", MEMBER)
    assert reply.text == "Subscribed to “kafka”: I'll send you a direct message when something new matches."
    assert reply.ephemeral
    assert (await bot("subscribe kafka", MEMBER)).text == "You are already subscribed to “kafka”."
    await bot("subscribe to page faults", MEMBER)
    await bot("subscribe postgres", OTHER)
    assert (await bot("subscriptions", MEMBER)).text == "Your topics: “kafka”, “page faults”"
    assert await chat.store.load_subscriptions() == [
        Subscription(Platform.DISCORD, "1001", "kafka"), Subscription(Platform.DISCORD, "1001", "page faults"),
        Subscription(Platform.SLACK, "U777", "postgres"),
    ]
    assert (await bot("unsubscribe kafka", MEMBER)).text == "Unsubscribed from “kafka”."
    reply = await bot("unsubscribe kafka", MEMBER)
    assert reply.kind == "error" and reply.text == "You aren't subscribed to “kafka”. `subscriptions` lists your topics."
    assert (await bot("subscriptions", OTHER)).text == "Your topics: “postgres”"


async def test_subscribe_needs_a_real_topic_and_has_a_limit(chat: Chat) -> None:
    bot = chat.commands
    assert (await bot("subscribe ???***", MEMBER)).kind == "error"
    assert (await bot("subscribe " + "x" * 200, MEMBER)).kind == "error"
    for n in range(25):
        assert (await bot(f"subscribe topic{n}", MEMBER)).kind == "subscriptions"
    reply = await bot("subscribe one-too-many", MEMBER)
    assert reply.text == "You can follow at most 25 topics; `unsubscribe <topic>` from one first."
    assert len(await chat.store.member_subscriptions(Platform.DISCORD, "1001")) == 25


def item(title: str, summary: str = "", chapters: tuple[Chapter, ...] = ()) -> Item:
    return Item(title=title, summary=summary, chapters=chapters,
                published_at=datetime(2026, 7, 1, tzinfo=timezone.utc))


def test_new_items_match_topics_like_search() -> None:
    items = [
        item("Graceful shutdown in HTTP", chapters=(Chapter(1060, "HTTP/2 GoAWAY frame"),)),
        item("CPU and Kernel Page Faults"),
        item("PostgreSQL 19 is out", "New features in the database."),
        item("Discipline and consistency"),
    ]
    subs = [
        Subscription(Platform.DISCORD, "a", "http2"),        # synonym + phrase, in a chapter
        Subscription(Platform.DISCORD, "a", "graceful"),     # same member, same item: one delivery
        Subscription(Platform.SLACK, "b", "page fault"),     # stem: faults
        Subscription(Platform.SLACK, "c", "postgres"),       # synonym: PostgreSQL
        Subscription(Platform.SLACK, "c", "db"),             # also matches item 2: still one for c
        Subscription(Platform.SLACK, "d", "kafka"),          # nothing
        Subscription(Platform.DISCORD, "b", "page faults"),  # same user id on another platform is another member
    ]
    assert match_subscriptions(items, subs) == [
        (0, Platform.DISCORD, "a"),
        (1, Platform.SLACK, "b"),
        (1, Platform.DISCORD, "b"),
        (2, Platform.SLACK, "c"),
    ]


def test_every_topic_word_must_match() -> None:
    items = [item("Kafka consumer groups"), item("Postgres consumer lag")]
    assert match_subscriptions(items, [Subscription(Platform.SLACK, "x", "kafka consumers")]) == [(0, Platform.SLACK, "x")]


def test_custom_synonyms() -> None:
    items = [item("Rustlang async runtimes")]
    subs = [Subscription(Platform.SLACK, "x", "rust")]
    assert match_subscriptions(items, subs) == []
    assert match_subscriptions(items, subs, {"rust": ["rustlang"]}) == [(0, Platform.SLACK, "x")]
