"""The harness's own tests: the fake-platforms process answers like the real
platforms where the bot's recovery depends on it (ids, history paging), its
faults do what they say, and what it recorded survives a restart.

Paging is checked through the real clients (discord.py's ``history``,
slack_sdk's ``conversations_history``), not only by hand.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from tests.chaos.ids import Snowflakes, ts_to_us
from tests.chaos.platforms_client import DISCORD_POSTS, SLACK_POSTS, Platforms

pytestmark = pytest.mark.chaos

CHANNEL = "1250000000000000001"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def discord_post(http: aiohttp.ClientSession, fakes: Platforms, body: dict[str, Any],
                       channel: str = CHANNEL) -> tuple[int, Any]:
    url = f"{fakes.discord_api_base_url}/channels/{channel}/messages"
    async with http.post(url, json=body) as resp:
        return resp.status, await resp.json()


async def discord_history(http: aiohttp.ClientSession, fakes: Platforms, **query: Any) -> list[int]:
    url = f"{fakes.discord_api_base_url}/channels/{CHANNEL}/messages"
    async with http.get(url, params={k: str(v) for k, v in query.items()}) as resp:
        assert resp.status == 200, await resp.text()
        return [int(m["id"]) for m in await resp.json()]


def slack(fakes: Platforms) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=fakes.slack_api_base_url)


async def test_discord_ids_are_time_snowflakes_and_history_pages_like_discord(
    platforms: Platforms, http: aiohttp.ClientSession
) -> None:
    ids = []
    for i in range(120):
        status, message = await discord_post(http, platforms, {"content": f"m{i}"})
        assert status == 200
        ids.append(int(message["id"]))
    assert ids == sorted(ids) and len(set(ids)) == 120
    assert abs(discord.utils.snowflake_time(ids[-1]).timestamp() - time.time()) < 5
    assert Snowflakes.time_of(ids[0]) == pytest.approx(discord.utils.snowflake_time(ids[0]).timestamp())

    assert await discord_history(http, platforms) == ids[::-1][:50]  # newest first, 50 by default
    assert await discord_history(http, platforms, limit=5, after=ids[9]) == ids[10:15][::-1]
    assert await discord_history(http, platforms, limit=5, before=ids[20]) == ids[15:20][::-1]
    around = await discord_history(http, platforms, limit=10, around=ids[60])
    assert ids[60] in around and len(around) == 10 and around == sorted(around, reverse=True)

    # discord.py's own paging: after= goes oldest first, 100 at a time, and stops.
    base, discord.http.Route.BASE = discord.http.Route.BASE, platforms.discord_api_base_url
    client = discord.Client(intents=discord.Intents.none())
    try:
        await client.login("chaos-token")
        channel = client.get_partial_messageable(int(CHANNEL))
        after = [m.id async for m in channel.history(limit=None, after=discord.Object(ids[9]))]
        newest = [m.id async for m in channel.history(limit=3)]
    finally:
        await client.close()
        discord.http.Route.BASE = base
    assert after == ids[10:]
    assert newest == ids[::-1][:3]


async def test_slack_ts_increase_and_history_and_replies_page_by_cursor(platforms: Platforms) -> None:
    client = slack(platforms)
    ts = [(await client.chat_postMessage(channel="C1", text=f"m{i}"))["ts"] for i in range(25)]
    assert [ts_to_us(t) for t in ts] == sorted({ts_to_us(t) for t in ts})
    assert abs(float(ts[-1]) - time.time()) < 5

    seen, cursor, pages = [], None, 0
    while True:
        page = await client.conversations_history(channel="C1", limit=10, cursor=cursor)
        seen += [m["ts"] for m in page["messages"]]
        pages += 1
        cursor = page["response_metadata"]["next_cursor"]
        assert page["has_more"] == bool(cursor)
        if not cursor:
            break
    assert seen == ts[::-1] and pages == 3

    window = await client.conversations_history(channel="C1", oldest=ts[5], latest=ts[9])
    assert [m["ts"] for m in window["messages"]] == ts[6:9][::-1]  # both ends exclusive
    window = await client.conversations_history(channel="C1", oldest=ts[5], latest=ts[9], inclusive=True)
    assert [m["ts"] for m in window["messages"]] == ts[5:10][::-1]

    replies = [(await client.chat_postMessage(channel="C1", text=f"r{i}", thread_ts=ts[0]))["ts"]
               for i in range(3)]
    history = await client.conversations_history(channel="C1", limit=100)
    assert not set(replies) & {m["ts"] for m in history["messages"]}  # replies live in the thread
    first = await client.conversations_replies(channel="C1", ts=ts[0], limit=2)
    assert [m["ts"] for m in first["messages"]] == [ts[0], replies[0]] and first["has_more"]
    rest = await client.conversations_replies(channel="C1", ts=ts[0], limit=2,
                                              cursor=first["response_metadata"]["next_cursor"])
    assert [m["ts"] for m in rest["messages"]] == replies[1:] and not rest["has_more"]


async def test_a_restarted_fake_still_has_what_it_accepted(
    platforms: Platforms, http: aiohttp.ClientSession
) -> None:
    _, before = await discord_post(http, platforms, {"content": "before", "nonce": "n1", "enforce_nonce": True})
    slack_ts = (await slack(platforms).chat_postMessage(channel="C1", text="before",
                                                        metadata={"event_type": "t", "event_payload": {"k": 1}}))["ts"]
    await platforms.restart()  # SIGKILL: only the fsynced ledger remains
    assert await discord_history(http, platforms) == [int(before["id"])]
    _, after = await discord_post(http, platforms, {"content": "after"})
    assert int(after["id"]) > int(before["id"])
    history = await slack(platforms).conversations_history(channel="C1", include_all_metadata=True)
    (message,) = history["messages"]
    assert message["ts"] == slack_ts and message["metadata"]["event_payload"] == {"k": 1}
    newer = (await slack(platforms).chat_postMessage(channel="C1", text="after"))["ts"]
    assert ts_to_us(newer) > ts_to_us(slack_ts)
    assert [p.platform for p in platforms.posts()] == ["discord", "slack", "discord", "slack"]


async def test_status_faults_end_after_a_count_or_a_duration(
    platforms: Platforms, http: aiohttp.ClientSession
) -> None:
    fault = await platforms.add_fault(platform="discord", kind="status", status=503, match=DISCORD_POSTS, count=2)
    statuses = [(await discord_post(http, platforms, {"content": "x"}))[0] for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert (await platforms.fault(fault["id"]))["ended"]

    timed = await platforms.add_fault(platform="discord", kind="status", status=500, match=DISCORD_POSTS,
                                      for_s=0.5)
    assert (await discord_post(http, platforms, {"content": "x"}))[0] == 500
    ended = await platforms.wait(fault=timed["id"], ended=True, timeout=5)
    assert ended["reached"] and ended["fault"]["ends_at"] == pytest.approx(timed["created_at"] + 0.5)
    assert (await discord_post(http, platforms, {"content": "x"}))[0] == 200
    assert len(platforms.posts()) == 2  # refused posts were never recorded
    with pytest.raises(AssertionError, match="kind"):
        await platforms.add_fault(platform="discord", kind="explode")


async def test_accepted_then_503_is_recorded_before_the_failure_is_answered(
    platforms: Platforms, http: aiohttp.ClientSession
) -> None:
    await platforms.add_fault(platform="discord", kind="accept_then_fail", status=503,
                              match=DISCORD_POSTS, count=1)
    await platforms.add_fault(platform="slack", kind="accept_then_fail", status=503, match=SLACK_POSTS, count=1)
    status, _ = await discord_post(http, platforms, {"content": "ambiguous"})
    assert status == 503
    with pytest.raises(Exception, match="503"):
        await slack(platforms).chat_postMessage(channel="C1", text="ambiguous")
    assert [(p.platform, p.answered) for p in platforms.posts()] == [("discord", 503), ("slack", 503)]
    assert len(await discord_history(http, platforms)) == 1  # the platform has it


async def test_rate_limits_answer_like_discord_and_slack(
    platforms: Platforms, http: aiohttp.ClientSession
) -> None:
    await platforms.add_fault(platform="discord", kind="rate_limit", retry_after=1.5, match=DISCORD_POSTS, count=1)
    url = f"{platforms.discord_api_base_url}/channels/{CHANNEL}/messages"
    async with http.post(url, json={"content": "x"}) as resp:
        assert resp.status == 429
        assert resp.headers["Content-Type"] == "application/json"
        assert resp.headers["Via"] and resp.headers["Retry-After"] == "2"
        assert await resp.json() == {"message": "You are being rate limited.", "retry_after": 1.5,
                                     "global": False, "code": 0}
    await platforms.add_fault(platform="slack", kind="rate_limit", retry_after=3, match=SLACK_POSTS, count=1)
    async with http.post(f"{platforms.slack_api_base_url}chat.postMessage", json={"channel": "C1"}) as resp:
        assert resp.status == 429 and resp.headers["Retry-After"] == "3"
        assert (await resp.json())["error"] == "ratelimited"

    await platforms.add_fault(platform="discord", kind="global_limit", per_s=5)
    statuses = [(await discord_post(http, platforms, {"content": "x"}))[0] for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    async with http.get(url) as resp:
        assert resp.status == 429 and resp.headers["X-RateLimit-Global"] == "true"
        body = await resp.json()
        assert body["global"] is True and 0 < body["retry_after"] <= 1


async def test_latency_after_holds_the_answer_of_a_recorded_post(
    platforms: Platforms, http: aiohttp.ClientSession
) -> None:
    held = await platforms.add_fault(platform="discord", kind="latency", phase="after", latency_s=30,
                                     match=DISCORD_POSTS, count=1)
    posting = asyncio.ensure_future(discord_post(http, platforms, {"content": "in flight"}))
    answer = await platforms.wait(fault=held["id"], hits=1, posts=1, timeout=10)
    assert answer["reached"] and not posting.done()  # recorded, answer still held: in flight
    posting.cancel()
    await asyncio.gather(posting, return_exceptions=True)
    assert len(platforms.posts()) == 1


async def test_enforce_nonce_is_off_unless_a_window_is_set(
    platforms: Platforms, http: aiohttp.ClientSession
) -> None:
    body = {"content": "x", "nonce": "abc", "enforce_nonce": True}
    first = (await discord_post(http, platforms, body))[1]
    second = (await discord_post(http, platforms, body))[1]
    assert first["id"] != second["id"]  # off: like a nonce older than Discord's few minutes
    await platforms.settings(discord_nonce_window_s=60)
    third = (await discord_post(http, platforms, body))[1]
    assert third["id"] == second["id"]
    assert len(platforms.posts()) == 2 and (await platforms.state())["nonce_dedupes"] == 1


async def test_waits_end_on_the_event_or_say_not_reached(
    platforms: Platforms, http: aiohttp.ClientSession
) -> None:
    waiting = asyncio.ensure_future(platforms.wait(posts=1, platform="discord", timeout=10))
    await discord_post(http, platforms, {"content": "x"})
    assert (await waiting)["reached"]
    started = time.monotonic()
    assert not (await platforms.wait(posts=2, timeout=0.3))["reached"]
    assert time.monotonic() - started < 5
    fault = await platforms.add_fault(platform="slack", kind="status", match="^$", for_s=30)
    assert (await platforms.wait(fault=fault["id"], elapsed=0.2, timeout=5))["reached"]
