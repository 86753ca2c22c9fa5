"""Socket Mode: the real slack_sdk SocketModeClient + bolt against the stub's websocket."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from adapters.slack import SlackAdapter
from bot.config import SlackConfig
from bot.models import Caller, Platform, Reply, ReplyItem
from tests.slack_stub import RecordingHandler, SlackStub, stub  # noqa: F401 - fixture


def reply_for(text: str, caller: Caller) -> Reply:
    return Reply(kind="latest", text=f"Answer to {text}", items=(ReplyItem("Ep 1", "https://e.com/1", "episode", "podcast"),))


async def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    async def _loop() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(_loop(), timeout)


def make(stub: SlackStub, handler: RecordingHandler) -> SlackAdapter:  # noqa: F811
    return SlackAdapter(
        SlackConfig(mode="socket", api_base_url=stub.api_base_url, admin_user_ids=("UADMIN",)),
        bot_token="xoxb-test",
        app_token="xapp-test",
        handler=handler,
        backoff_base_s=0.01,
        backoff_max_s=0.05,
        watch_interval_s=0.02,
        ping_interval_s=5,
    )


@pytest_asyncio.fixture
async def socket_adapter(stub: SlackStub) -> AsyncIterator[tuple[SlackAdapter, RecordingHandler]]:  # noqa: F811
    handler = RecordingHandler(reply_for)
    adapter = make(stub, handler)
    await adapter.start()
    try:
        await wait_until(lambda: adapter.healthy)
        yield adapter, handler
    finally:
        await adapter.stop()


def slash_envelope(envelope_id: str, text: str, response_url: str, user: str = "UMEMBER") -> dict[str, Any]:
    return {
        "envelope_id": envelope_id,
        "type": "slash_commands",
        "accepts_response_payload": True,
        "payload": {
            "token": "legacy",
            "team_id": "T1",
            "channel_id": "C1",
            "user_id": user,
            "user_name": "member",
            "command": "/showbot",
            "text": text,
            "response_url": response_url,
            "trigger_id": "1.2.3",
            "api_app_id": "A1",
        },
    }


async def test_slash_command_envelope_is_acked_and_answered(
    socket_adapter: tuple[SlackAdapter, RecordingHandler], stub: SlackStub  # noqa: F811
) -> None:
    adapter, handler = socket_adapter
    [opened] = stub.calls_to("apps.connections.open")
    assert opened.headers["Authorization"] == "Bearer xapp-test"  # the app token, not the bot token
    await stub.push(slash_envelope("env-1", "latest episode", stub.response_url("s1"), user="UADMIN"))
    await stub.wait_for(lambda: stub.acked("env-1") and stub.calls_to("response_url"))
    ack = next(m for m in stub.ws_received if m.get("envelope_id") == "env-1")
    assert ack == {"envelope_id": "env-1"}
    assert [(t, c.user_id, c.is_moderator, c.platform) for t, c in handler.calls] == [
        ("latest episode", "UADMIN", True, Platform.SLACK)
    ]
    post = stub.calls_to("response_url")[0]
    assert post.args["text"].startswith("Answer to latest episode")
    assert post.args["blocks"][1]["text"]["text"] == "*<https://e.com/1|Ep 1>*"


async def test_app_mention_event_over_socket(
    socket_adapter: tuple[SlackAdapter, RecordingHandler], stub: SlackStub  # noqa: F811
) -> None:
    _, handler = socket_adapter
    await stub.push(
        {
            "envelope_id": "env-2",
            "type": "events_api",
            "accepts_response_payload": False,
            "payload": {
                "team_id": "T1",
                "api_app_id": "A1",
                "type": "event_callback",
                "event_id": "Ev2",
                "event_time": 1,
                "event": {"type": "app_mention", "user": "UADMIN", "text": "<@UBOT> stats", "ts": "5.5", "channel": "C5"},
            },
        }
    )
    await stub.wait_for(lambda: stub.acked("env-2") and stub.calls_to("chat.postMessage"))
    assert [t for t, _ in handler.calls] == ["stats"]
    assert stub.calls_to("chat.postMessage")[0].args["channel"] == "C5"


async def test_lost_connection_is_logged_and_reestablished(
    socket_adapter: tuple[SlackAdapter, RecordingHandler], stub: SlackStub, caplog: pytest.LogCaptureFixture  # noqa: F811
) -> None:
    adapter, handler = socket_adapter
    caplog.set_level(logging.INFO, logger="showbot.slack")
    seen_unhealthy = asyncio.Event()

    async def watch() -> None:
        while adapter.healthy:
            await asyncio.sleep(0.005)
        seen_unhealthy.set()

    watcher = asyncio.create_task(watch())
    await stub.close_sockets()  # Slack drops the websocket
    await asyncio.wait_for(seen_unhealthy.wait(), 5)
    await watcher
    await stub.wait_for(lambda: len(stub.calls_to("apps.connections.open")) == 2 and stub.open_sockets == 1)
    await wait_until(lambda: adapter.healthy)
    lost = [r.getMessage() for r in caplog.records if "slack socket connection" in r.getMessage()]
    assert lost and "connecting again in" in lost[0]
    assert "xapp-test" not in caplog.text and "xoxb-test" not in caplog.text
    # and the new connection works
    await stub.push(slash_envelope("env-3", "book", stub.response_url("s3")))
    await stub.wait_for(lambda: stub.acked("env-3") and stub.calls_to("response_url"))
    assert [t for t, _ in handler.calls] == ["book"]


async def test_connection_open_failures_back_off_until_it_works(stub: SlackStub, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    stub.script("apps.connections.open", body={"ok": False, "error": "internal_error"}, times=3)
    adapter = make(stub, RecordingHandler(reply_for))
    await adapter.start()
    try:
        await wait_until(lambda: adapter.healthy)
        assert len(stub.calls_to("apps.connections.open")) == 4 and adapter.restarts == 3
        delays = [r.getMessage().rsplit(" ", 1)[-1] for r in caplog.records if "connecting again in" in r.getMessage()]
        assert delays == ["0.01s", "0.02s", "0.04s"]  # exponential
        assert all("internal_error" in r.getMessage() for r in caplog.records if "connecting again in" in r.getMessage())
    finally:
        await adapter.stop()
    assert not adapter.healthy and stub.open_sockets == 0


async def test_stop_while_connecting_returns_promptly(stub: SlackStub) -> None:  # noqa: F811
    import socket

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # apps.connections.open hands out a URL where nothing listens
    stub.script("apps.connections.open", body={"ok": True, "url": f"ws://127.0.0.1:{port}/ws"}, times=5)
    adapter = make(stub, RecordingHandler(reply_for))
    await adapter.start()
    await stub.wait_for(lambda: stub.calls_to("apps.connections.open"))
    assert not adapter.healthy
    await asyncio.wait_for(adapter.stop(), 3)  # does not wait for the SDK's own retry loop
    assert not adapter.healthy
