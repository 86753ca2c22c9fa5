"""The Discord adapter against tests/fake_discord.py, driving the real discord.py client.

Every assertion is on what discord.py actually sent to the fake (REST bodies)
or on what the stub CommandHandler received.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator, Awaitable, Callable

import discord
import pytest

from adapters.discord import DiscordAdapter
from adapters.discord.adapter import COMMANDS_HASH_KEY, nonce_for
from tests.fake_chat import to_destination
from bot.config import DiscordConfig
from bot.errors import DeliveryError
from bot.models import (
    Announcement,
    Caller,
    Chapter,
    ContentKind,
    Event,
    EventKind,
    Item,
    Platform,
    Reply,
    ReplyItem,
    StoredItem,
)
from tests.fake_discord import (
    APP_ID,
    BOT_ID,
    CHANNEL_ID,
    CONFIG_MOD_ROLE_ID,
    MANAGE_GUILD,
    MANAGE_ROLE_ID,
    PLAIN_ROLE_ID,
    FakeDiscord,
    member_payload,
)

TOKEN = "fake-token-SECRET-abc123"
NOISY_TITLE = "@everyone Postgres <@&123> *locks* deep dive"


class StubHandler:
    """Stands in for the core: records what it got and answers a canned Reply."""

    def __init__(self, reply: Reply | None = None, *, gate: asyncio.Event | None = None) -> None:
        self.calls: list[tuple[str, Caller]] = []
        self.reply = reply or Reply(
            kind="search",
            text="Episodes on postgres @here",
            items=(
                ReplyItem(
                    title=NOISY_TITLE,
                    url="https://www.youtube.com/watch?v=abc",
                    kind="episode",
                    source="podcast",
                    published_at=datetime(2024, 5, 1, tzinfo=timezone.utc),
                    duration_s=2799,
                    chapters=(Chapter(720, "VMA areas"),),
                    summary="How postgres takes locks <@&123> and @everyone",
                ),
            ),
            more="search postgres page 2",
        )
        self.gate = gate
        self.called = asyncio.Event()

    async def __call__(self, text: str, caller: Caller) -> Reply:
        self.calls.append((text, caller))
        self.called.set()
        if self.gate is not None:
            await self.gate.wait()
        return self.reply


class MemorySettings:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def find_setting(self, key: str) -> str | None:
        return self.values.get(key)

    async def set_setting(self, key: str, value: str) -> None:
        self.values[key] = value


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for adapter-side state that no fake request signals (e.g. healthy)."""

    async def loop() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(loop(), timeout)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    base, gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    f = FakeDiscord()
    await f.start()
    yield f
    await f.close()
    # The adapter sets process-wide class attributes; put them back.
    discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = base, gateway


MakeAdapter = Callable[..., Awaitable[DiscordAdapter]]


@pytest.fixture
async def make_adapter(fake: FakeDiscord) -> AsyncIterator[MakeAdapter]:
    adapters: list[DiscordAdapter] = []

    async def make(
        handler: Any = None,
        *,
        settings: Any = None,
        start: bool = True,
        dev_guild_ids: tuple[str, ...] = (),
        **kwargs: Any,
    ) -> DiscordAdapter:
        config = DiscordConfig(
            api_base_url=fake.api_base_url,
            gateway_url=fake.gateway_url,
            moderator_role_ids=(str(CONFIG_MOD_ROLE_ID),),
            dev_guild_ids=dev_guild_ids,
        )
        kwargs.setdefault("backoff_base_s", 0.01)
        kwargs.setdefault("guild_ready_timeout_s", 0.05)
        adapter = DiscordAdapter(
            config, TOKEN, handler or StubHandler(), settings=settings or MemorySettings(), **kwargs
        )
        adapters.append(adapter)
        if start:
            await adapter.start()
            await wait_until(lambda: adapter.healthy)
        return adapter

    yield make
    for adapter in adapters:
        await adapter.stop()


def announcement(key: str = "event-1:route-1", *, channel: str = str(CHANNEL_ID), mention: str | None = None) -> Announcement:
    now = datetime(2024, 5, 1, tzinfo=timezone.utc)
    item = Item(
        title=NOISY_TITLE,
        link="https://www.youtube.com/watch?v=abc",
        summary="We talk about @everyone and <@&123>",
        published_at=now,
        duration_s=2799,
        chapters=(Chapter(720, "VMA areas"),),
    )
    return Announcement(
        outbox_id=1,
        idempotency_key=key,
        event=Event(id=1, kind=EventKind.EPISODE, title=item.title, url=item.link, created_at=now, item_id=1),
        destination=to_destination(Platform.DISCORD, channel),
        first_attempt_at=datetime.now(timezone.utc) - timedelta(minutes=1),
        mention=mention,
        item=StoredItem(id=1, source_name="podcast", kind=ContentKind.EPISODE, identity="x", item=item, first_seen_at=now),
    )


def callbacks(fake: FakeDiscord) -> list[Any]:
    return fake.find("POST", r"/interactions/\d+/[^/]+/callback")


# --- inbound ---------------------------------------------------------------


async def test_slash_command_answered_via_interaction_callback(fake: FakeDiscord, make_adapter: MakeAdapter) -> None:
    handler = StubHandler()
    await make_adapter(handler)
    await fake.dispatch("INTERACTION_CREATE", fake.slash("search", [{"type": 3, "name": "topic", "value": "postgres"}]))
    (cb,) = await fake.wait_for(lambda: callbacks(fake))

    text, caller = handler.calls[0]
    assert text == "search postgres"
    assert caller == Caller(Platform.DISCORD, "123456789012345678", str(CHANNEL_ID), False, "alice")
    assert cb.body["type"] == 4  # answered directly, no defer
    data = cb.body["data"]
    assert data["allowed_mentions"]["parse"] == []
    embed = data["embeds"][0]
    assert "@everyone" not in embed["title"]  # escaped: '@\u200beveryone'
    assert "\\*locks\\*" in embed["title"]
    assert embed["url"] == "https://www.youtube.com/watch?v=abc"
    assert "[12:00 VMA areas](https://www.youtube.com/watch?v=abc&t=720)" in embed["description"]  # the core's link
    assert {"name": "Duration", "value": "46m 39s", "inline": True} in embed["fields"]
    button = data["components"][0]["components"][0]
    assert button["custom_id"] == "showbot:more:search postgres page 2"
    assert "@here" not in data["content"]
    assert not (data.get("flags") or 0) & 64  # not ephemeral


async def test_more_button_runs_next_page_for_the_clicker(fake: FakeDiscord, make_adapter: MakeAdapter) -> None:
    handler = StubHandler(Reply(kind="search", text="page 2", ephemeral=True))
    await make_adapter(handler)
    clicker = member_payload(222222222222222222, "bob", [])
    await fake.dispatch(
        "INTERACTION_CREATE", fake.slash("", kind=3, custom_id="showbot:more:search postgres page 2", member=clicker)
    )
    (cb,) = await fake.wait_for(lambda: callbacks(fake))
    assert handler.calls[0][0] == "search postgres page 2"
    assert handler.calls[0][1].user_id == "222222222222222222"
    assert cb.body["data"]["flags"] & 64  # Reply.ephemeral -> only the clicker sees it


async def test_moderator_command_answer_is_always_private(fake: FakeDiscord, make_adapter: MakeAdapter) -> None:
    # The core marks "Announcing episode here." public; on Discord a /showbot
    # answer is for the moderator only, however fast the core was.
    handler = StubHandler(Reply(kind="announce", text="Announcing episode here."))
    await make_adapter(handler)
    options = [{"type": 1, "name": "announce", "options": [{"type": 3, "name": "kinds", "value": "episode"}]}]
    await fake.dispatch("INTERACTION_CREATE", fake.slash("showbot", options))
    (cb,) = await fake.wait_for(lambda: callbacks(fake))
    assert handler.calls[0][0] == "announce episode here"
    assert cb.body["type"] == 4 and cb.body["data"]["flags"] & 64


async def test_slow_handler_defers_then_follows_up(fake: FakeDiscord, make_adapter: MakeAdapter) -> None:
    gate = asyncio.Event()
    handler = StubHandler(gate=gate)
    await make_adapter(handler, respond_within_s=0.0)
    await fake.dispatch("INTERACTION_CREATE", fake.slash("showbot", [{"type": 1, "name": "status", "options": []}]))
    (cb,) = await fake.wait_for(lambda: callbacks(fake))
    assert cb.body["type"] == 5  # deferred ("thinking")
    assert cb.body["data"]["flags"] & 64  # moderator output defers privately
    gate.set()
    (followup,) = await fake.wait_for(lambda: fake.find("POST", rf"/webhooks/{APP_ID}/[^/]+"))
    assert handler.calls[0][0] == "status"
    assert followup.body["embeds"][0]["title"].startswith("@\u200beveryone")
    assert followup.body["allowed_mentions"]["parse"] == []


async def test_mention_answered_like_the_slash_command(fake: FakeDiscord, make_adapter: MakeAdapter) -> None:
    handler = StubHandler()
    await make_adapter(handler)
    await fake.dispatch("MESSAGE_CREATE", fake.mention_message(f"<@{BOT_ID}> episodes on postgres"))
    (post,) = await fake.wait_for(lambda: fake.find("POST", rf"/channels/{CHANNEL_ID}/messages"))
    assert handler.calls[0][0] == "episodes on postgres"
    assert handler.calls[0][1].channel == str(CHANNEL_ID)
    assert post.body["allowed_mentions"] == {"parse": [], "replied_user": False}
    assert post.body["message_reference"]["message_id"]
    assert post.body["embeds"][0]["title"].startswith("@\u200beveryone")


async def test_message_without_bot_mention_is_ignored(fake: FakeDiscord, make_adapter: MakeAdapter) -> None:
    handler = StubHandler()
    await make_adapter(handler)
    await fake.dispatch("MESSAGE_CREATE", fake.mention_message("just chatting about postgres"))
    await fake.dispatch("MESSAGE_CREATE", fake.mention_message(f"<@{BOT_ID}> stats"))
    await fake.wait_for(lambda: fake.find("POST", rf"/channels/{CHANNEL_ID}/messages"))
    assert [t for t, _ in handler.calls] == ["stats"]


@pytest.mark.parametrize(
    "roles, permissions, expected",
    [
        ([PLAIN_ROLE_ID], 0, False),  # plain member
        ([PLAIN_ROLE_ID], MANAGE_GUILD, True),  # Discord resolved Manage Server
        ([CONFIG_MOD_ROLE_ID], 0, True),  # a configured moderator role
    ],
)
async def test_moderator_flag_from_slash_command(
    fake: FakeDiscord, make_adapter: MakeAdapter, roles: list[int], permissions: int, expected: bool
) -> None:
    handler = StubHandler()
    await make_adapter(handler)
    member = member_payload(333333333333333333, "carol", roles, permissions)
    options = [{"type": 2, "name": "feed", "options": [{"type": 1, "name": "pause", "options": [{"type": 3, "name": "name", "value": "podcast"}]}]}]
    await fake.dispatch("INTERACTION_CREATE", fake.slash("showbot", options, member=member))
    await fake.wait_for(lambda: callbacks(fake))
    text, caller = handler.calls[0]
    assert text == "feed pause podcast"
    assert caller.is_moderator is expected


@pytest.mark.parametrize(
    "roles, expected",
    [([PLAIN_ROLE_ID], False), ([MANAGE_ROLE_ID], True), ([CONFIG_MOD_ROLE_ID], True)],
)
async def test_moderator_flag_from_mention(
    fake: FakeDiscord, make_adapter: MakeAdapter, roles: list[int], expected: bool
) -> None:
    handler = StubHandler()
    await make_adapter(handler)
    member = member_payload(444444444444444444, "dave", roles)
    await fake.dispatch("MESSAGE_CREATE", fake.mention_message(f"<@!{BOT_ID}> feeds", member=member))
    await fake.wait_for(lambda: fake.find("POST", rf"/channels/{CHANNEL_ID}/messages"))
    assert handler.calls[0][0] == "feeds"
    assert handler.calls[0][1].is_moderator is expected


async def test_feed_add_options_become_command_text(fake: FakeDiscord, make_adapter: MakeAdapter) -> None:
    handler = StubHandler()
    await make_adapter(handler)
    opts = [
        {"type": 3, "name": "url", "value": "https://example.com/feed.xml"},
        {"type": 3, "name": "kind", "value": "article"},
        {"type": 3, "name": "every", "value": "30m"},
    ]
    options = [{"type": 2, "name": "feed", "options": [{"type": 1, "name": "add", "options": opts}]}]
    await fake.dispatch("INTERACTION_CREATE", fake.slash("showbot", options))
    await fake.wait_for(lambda: callbacks(fake))
    assert handler.calls[0][0] == "feed add https://example.com/feed.xml as article every 30m"


# --- outbound ----------------------------------------------------------------


async def test_announcement_embed_pings_nobody(fake: FakeDiscord, make_adapter: MakeAdapter) -> None:
    adapter = await make_adapter()
    delivered = await adapter.deliver(announcement("evt-1:route-1"))
    (post,) = fake.find("POST", rf"/channels/{CHANNEL_ID}/messages")
    body = post.body
    assert body["allowed_mentions"] == {"parse": []}
    assert "content" not in body or not body["content"]
    embed = body["embeds"][0]
    assert embed["title"].startswith("@\u200beveryone")
    assert "<@&123>" in embed["title"]  # shown, but neither parsed nor allowed to ping
    assert embed["footer"]["text"] == "id:evt-1:route-1"
    assert embed["author"]["name"] == "New episode"
    assert body["nonce"] == nonce_for("evt-1:route-1") and body["enforce_nonce"] is True
    assert delivered.message_id == fake.created_messages()[0]["id"]


async def test_route_mention_only_in_allowed_roles(fake: FakeDiscord, make_adapter: MakeAdapter) -> None:
    adapter = await make_adapter()
    await adapter.deliver(announcement(mention="555555555555555555"))
    (post,) = fake.find("POST", rf"/channels/{CHANNEL_ID}/messages")
    assert post.body["content"] == "<@&555555555555555555>"
    mentions = post.body["allowed_mentions"]
    assert mentions["parse"] == []  # no @everyone, no users, no other role
    assert [str(r) for r in mentions["roles"]] == ["555555555555555555"]
    assert set(mentions) <= {"parse", "roles", "replied_user"} and not mentions.get("replied_user")


async def test_direct_message_route(fake: FakeDiscord, make_adapter: MakeAdapter) -> None:
    adapter = await make_adapter()
    await adapter.deliver(announcement(channel="user:777777777777777777"))
    (dm,) = fake.find("POST", r"/users/@me/channels")
    assert str(dm.body["recipient_id"]) == "777777777777777777"
    assert fake.find("POST", r"/channels/777777777777777778/messages")


async def test_a_429_comes_back_at_once_with_retry_after_and_posts_nothing(
    fake: FakeDiscord, make_adapter: MakeAdapter
) -> None:
    """discord.py would sleep through it inside send(); the outbox owns retries."""
    adapter = await make_adapter()
    fake.fail_next(
        "POST",
        rf"/channels/{CHANNEL_ID}/messages",
        429,
        {"message": "You are being rate limited.", "retry_after": 0.75, "global": False},
        headers={"Via": "1.1 google", "Retry-After": "1"},
    )
    with pytest.raises(DeliveryError) as err:
        await asyncio.wait_for(adapter.deliver(announcement()), 5)
    assert err.value.retry_after == 0.75 and not err.value.permanent and not err.value.maybe_delivered
    assert not err.value.whole_platform
    assert len(fake.find("POST", rf"/channels/{CHANNEL_ID}/messages")) == 1  # no retry inside
    assert fake.created_messages() == []
    await adapter.deliver(announcement())
    assert len(fake.created_messages()) == 1


async def test_a_global_429_pauses_the_whole_platform(fake: FakeDiscord, make_adapter: MakeAdapter) -> None:
    adapter = await make_adapter()
    fake.fail_next(
        "POST", rf"/channels/{CHANNEL_ID}/messages", 429,
        {"message": "slow down", "retry_after": 120.0, "global": True},
        headers={"Via": "1.1 google", "X-RateLimit-Global": "true"},
    )
    with pytest.raises(DeliveryError) as err:
        await adapter.deliver(announcement())
    assert err.value.retry_after == 120.0 and err.value.whole_platform and not err.value.permanent
    assert fake.created_messages() == []


async def test_5xx_comes_back_at_once_as_maybe_delivered(fake: FakeDiscord, make_adapter: MakeAdapter) -> None:
    """discord.py retries 500s itself for 25 s; here one answer is enough to
    hand the row back, flagged: the post may have gone through."""
    adapter = await make_adapter()
    fake.fail_next("POST", rf"/channels/{CHANNEL_ID}/messages", 500, {"message": "oops", "code": 0}, times=5)
    with pytest.raises(DeliveryError) as err:
        await asyncio.wait_for(adapter.deliver(announcement()), 5)
    assert err.value.maybe_delivered and err.value.retry_after is None and not err.value.permanent
    assert len(fake.find("POST", rf"/channels/{CHANNEL_ID}/messages")) == 1


async def test_a_refused_connection_is_not_maybe_delivered(make_adapter: MakeAdapter) -> None:
    import aiohttp

    from adapters.discord.outbound import Poster
    from bot.models import Destination, DestinationKind

    error = Poster()._error(aiohttp.ClientConnectorError(None, OSError(111, "refused")),  # type: ignore[arg-type]
                            Destination(Platform.DISCORD, DestinationKind.CHANNEL, "1"), posting=True)
    assert not error.maybe_delivered and not error.permanent


@pytest.mark.parametrize(
    "status, permanent, words",
    [(403, True, "missing permission in channel"), (404, True, "not found"), (400, False, "400")],
)
async def test_http_errors_map_to_delivery_errors(
    fake: FakeDiscord, make_adapter: MakeAdapter, status: int, permanent: bool, words: str
) -> None:
    adapter = await make_adapter()
    fake.fail_next("POST", rf"/channels/{CHANNEL_ID}/messages", status, {"message": "no", "code": 50013})
    with pytest.raises(DeliveryError) as err:
        await adapter.deliver(announcement())
    assert err.value.permanent is permanent
    assert words in str(err.value)


async def test_deliver_while_disconnected_fails_fast(make_adapter: MakeAdapter) -> None:
    adapter = await make_adapter(start=False)
    with pytest.raises(DeliveryError) as err:
        await asyncio.wait_for(adapter.deliver(announcement()), 1.0)
    assert not err.value.permanent


async def test_crash_between_send_and_record_is_found_by_a_new_instance(
    fake: FakeDiscord, make_adapter: MakeAdapter
) -> None:
    first = await make_adapter()
    delivered = await first.deliver(announcement("evt-9:route-1"))
    await first.stop()  # the process "dies" before the outbox records it

    second = await make_adapter()
    found = await second.find_delivered(announcement("evt-9:route-1"))
    assert found == delivered
    assert await second.find_delivered(announcement("evt-10:route-1")) is None
    assert len(fake.find("POST", rf"/channels/{CHANNEL_ID}/messages")) == 1
    # Searched from the row's first attempt on, oldest first, a page at a time.
    (history, _) = fake.find("GET", rf"/channels/{CHANNEL_ID}/messages")
    assert history.query["limit"] == "100" and int(history.query["after"]) > 0

    # In a busy channel the post is far from the newest messages: still found.
    for n in range(250):
        fake._create_message(str(CHANNEL_ID), {"content": f"chatter {n}"})
    assert await second.find_delivered(announcement("evt-9:route-1")) == delivered

    # And if it is sent anyway, the nonce makes Discord hand back the same message.
    again = await second.deliver(announcement("evt-9:route-1"))
    assert again == delivered and len([m for m in fake.created_messages() if m.get("nonce")]) == 1


# --- lifecycle -----------------------------------------------------------------


async def test_command_sync_only_when_the_command_set_changed(fake: FakeDiscord, make_adapter: MakeAdapter) -> None:
    settings = MemorySettings()
    first = await make_adapter(settings=settings)
    (put,) = fake.find("PUT", rf"/applications/{APP_ID}/commands")
    names = {c["name"] for c in put.body}
    assert {"latest", "search", "episode", "random", "book", "stats", "subscribe", "unsubscribe",
            "subscriptions", "help", "showbot"} <= names
    showbot = next(c for c in put.body if c["name"] == "showbot")
    assert str(showbot["default_member_permissions"]) == str(MANAGE_GUILD)
    assert settings.values[COMMANDS_HASH_KEY]
    await first.stop()

    second = await make_adapter(settings=settings)
    assert second.healthy
    assert len(fake.find("PUT", r"/applications/.*")) == 1  # unchanged: no second PUT


async def test_dev_guild_sync_goes_to_the_guild(fake: FakeDiscord, make_adapter: MakeAdapter) -> None:
    await make_adapter(dev_guild_ids=("424242424242424242",))
    assert fake.find("PUT", rf"/applications/{APP_ID}/guilds/424242424242424242/commands")
    assert not fake.find("PUT", rf"/applications/{APP_ID}/commands")


async def test_malformed_gateway_event_restarts_the_client(
    fake: FakeDiscord, make_adapter: MakeAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="showbot.discord")
    handler = StubHandler()
    adapter = await make_adapter(handler)
    assert fake.identifies == 1
    # No channel_id: discord.py's parser raises KeyError, which ends its connection task.
    await fake.dispatch("MESSAGE_CREATE", {"id": "1", "content": "boom"})
    await wait_until(lambda: not adapter.healthy)
    await fake.wait_for(lambda: fake.identifies == 2)
    await wait_until(lambda: adapter.healthy)
    assert any("discord connection failed: KeyError" in r.getMessage() for r in caplog.records)

    await fake.dispatch("INTERACTION_CREATE", fake.slash("book"))
    await fake.wait_for(lambda: callbacks(fake))
    assert handler.calls[-1][0] == "book"
    assert TOKEN not in caplog.text


async def test_non_resumable_close_code_restarts_the_client(
    fake: FakeDiscord, make_adapter: MakeAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="showbot.discord")
    handler = StubHandler()
    adapter = await make_adapter(handler)
    await fake.close_gateway(4012)  # invalid API version: discord.py gives up
    await fake.wait_for(lambda: fake.identifies == 2)
    await wait_until(lambda: adapter.healthy)
    assert any("ConnectionClosed" in r.getMessage() for r in caplog.records)
    await fake.dispatch("MESSAGE_CREATE", fake.mention_message(f"<@{BOT_ID}> latest"))
    await fake.wait_for(lambda: fake.find("POST", rf"/channels/{CHANNEL_ID}/messages"))
    assert handler.calls[-1][0] == "latest"
    assert TOKEN not in caplog.text


async def test_stop_closes_and_reports_unhealthy(fake: FakeDiscord, make_adapter: MakeAdapter) -> None:
    adapter = await make_adapter()
    await adapter.stop()
    assert not adapter.healthy
    await fake.wait_for(lambda: not fake.connected)
    with pytest.raises(DeliveryError):
        await adapter.deliver(announcement())


async def test_search_autocomplete_uses_the_completer(fake: FakeDiscord, make_adapter: MakeAdapter) -> None:
    asked: list[tuple[str, int]] = []

    async def completer(prefix: str, limit: int = 25) -> list[str]:
        asked.append((prefix, limit))
        return ["postgres", "postgresql", "x" * 300]

    await make_adapter(completer=completer)
    payload = fake.slash("search", [{"type": 3, "name": "topic", "value": "post", "focused": True}])
    payload["type"] = 4  # APPLICATION_COMMAND_AUTOCOMPLETE
    await fake.dispatch("INTERACTION_CREATE", payload)
    (cb,) = await fake.wait_for(lambda: callbacks(fake))
    assert asked == [("post", 25)]
    assert cb.body["type"] == 8
    choices = cb.body["data"]["choices"]
    assert [c["value"] for c in choices][:2] == ["postgres", "postgresql"]
    assert all(len(c["name"]) <= 100 and len(c["value"]) <= 100 for c in choices)


async def test_reply_image_is_attached(fake: FakeDiscord, make_adapter: MakeAdapter, tmp_path: Any) -> None:
    png = tmp_path / "stats.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16)
    await make_adapter(StubHandler(Reply(kind="stats", text="Stats", image_path=str(png))))
    await fake.dispatch("INTERACTION_CREATE", fake.slash("stats"))
    (cb,) = await fake.wait_for(lambda: callbacks(fake))
    assert cb.files == ["stats.png"]
    assert cb.body["data"]["attachments"][0]["filename"] == "stats.png"


async def test_handler_crash_becomes_a_private_apology(fake: FakeDiscord, make_adapter: MakeAdapter) -> None:
    async def broken(text: str, caller: Caller) -> Reply:
        raise RuntimeError("core bug")

    await make_adapter(broken)
    await fake.dispatch("INTERACTION_CREATE", fake.slash("stats"))
    (cb,) = await fake.wait_for(lambda: callbacks(fake))
    assert cb.body["data"]["flags"] & 64
    assert "went wrong" in cb.body["data"]["content"]


async def test_a_thread_route_opens_a_discussion_thread_under_each_announcement(
    fake: FakeDiscord, make_adapter: MakeAdapter
) -> None:
    from dataclasses import replace

    adapter = await make_adapter()
    plain = announcement("evt-1:route-1")
    await adapter.deliver(plain)
    assert fake.find("POST", rf"/channels/{CHANNEL_ID}/messages/\d+/threads") == []
    threaded = replace(plain, idempotency_key="evt-2:route-1", thread=True)
    delivered = await adapter.deliver(threaded)
    (opened,) = fake.find("POST", rf"/channels/{CHANNEL_ID}/messages/{delivered.message_id}/threads")
    assert opened.body["name"] == plain.event.title[:100]


async def test_a_thread_that_cannot_be_opened_does_not_fail_the_delivery(
    fake: FakeDiscord, make_adapter: MakeAdapter
) -> None:
    from dataclasses import replace

    adapter = await make_adapter()
    fake.fail_next("POST", rf"/channels/{CHANNEL_ID}/messages/\d+/threads", 403,
                   {"message": "Missing Permissions", "code": 50013})
    plain = announcement("evt-3:route-1")
    delivered = await adapter.deliver(replace(plain, thread=True))
    assert delivered.message_id == fake.created_messages()[0]["id"]  # posted once, not retried


async def test_book_follow_up_replies_to_the_announcement_without_pinging_again(
    fake: FakeDiscord, make_adapter: MakeAdapter
) -> None:
    from dataclasses import replace

    adapter = await make_adapter()
    role = "555555555555555555"
    first = announcement("evt-1:route-1", mention=role)
    first = replace(first, thread=True)
    anchor = await adapter.deliver(first)
    follow_up = replace(
        first, idempotency_key="evt-2:route-1", item=None, reply_to=anchor.message_id,
        event=Event(id=2, kind=EventKind.BOOK, title="Bio: Author of Root Cause", url="https://x.com/hnasr",
                    created_at=first.event.created_at, payload={"follow_up_of": 1}),
    )
    await adapter.deliver(follow_up)
    posts = fake.find("POST", rf"/channels/{CHANNEL_ID}/messages")
    assert len(posts) == 2
    reply = posts[1].body
    assert str(reply["message_reference"]["message_id"]) == anchor.message_id
    assert reply["message_reference"]["fail_if_not_exists"] is False
    assert not reply.get("content")  # the role heard about it once already
    assert reply["allowed_mentions"]["parse"] == [] and not reply["allowed_mentions"].get("replied_user")
    assert reply["embeds"][0]["author"]["name"] == "More book news"
    # Only the announcement opened a discussion thread, not its follow-up.
    assert len(fake.find("POST", rf"/channels/{CHANNEL_ID}/messages/\d+/threads")) == 1


async def test_a_template_post_is_text_and_a_crash_still_finds_it(fake: FakeDiscord, make_adapter: MakeAdapter) -> None:
    """A template makes the whole message (no embed to carry the marker):
    the lookup after a crash recognises the post by its exact text."""
    from dataclasses import replace as with_

    templated = with_(announcement("evt-11:route-1", mention="555555555555555555"), template="{mention} {title} {url}")
    first = await make_adapter()
    delivered = await first.deliver(templated)
    (post,) = fake.find("POST", rf"/channels/{CHANNEL_ID}/messages")
    assert "embeds" not in post.body or not post.body["embeds"]
    assert post.body["content"].startswith("<@&555555555555555555> @\u200beveryone")
    assert post.body["content"].endswith(" https://www.youtube.com/watch?v=abc")
    assert [str(r) for r in post.body["allowed_mentions"]["roles"]] == ["555555555555555555"]
    await first.stop()

    second = await make_adapter()
    assert await second.find_delivered(templated) == delivered
    other = with_(templated, idempotency_key="evt-12:route-1",
                  item=with_(templated.item, item=with_(templated.item.item, title="Another episode")))  # type: ignore[arg-type]
    assert await second.find_delivered(other) is None
