"""HTTP mode: signed requests through bolt's real aiohttp app, Web API calls to the local stub."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
import pytest_asyncio

from adapters.slack import SlackAdapter
from bot.config import SlackConfig
from bot.models import Caller, Chapter, Platform, Reply, ReplyItem
from bot.ports import ChatAdapter
from tests.slack_stub import RecordingHandler, SlackStub, sign, stub  # noqa: F401 - fixture

SECRET = "test-signing-secret"
EVIL = "<!channel> & <b>x</b> <@U123>"
WHEN = datetime(2024, 5, 1, tzinfo=timezone.utc)


def search_reply(text: str, caller: Caller) -> Reply:
    if text == "status":
        return Reply(kind="status", text="3 feeds, all ok", ephemeral=True)
    return Reply(
        kind="search",
        text=f"Results for {text}",
        items=(
            ReplyItem(
                title=EVIL,
                url="https://www.youtube.com/watch?v=abc",
                kind="video",
                source="youtube",
                published_at=WHEN,
                duration_s=2799,
                chapters=(Chapter(754, "MVCC"),),
            ),
        ),
        more=f"{text} page 2",
    )


async def wait_until(predicate: Any, timeout: float = 5.0) -> None:
    async def _loop() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(_loop(), timeout)


class Http:
    """A started HTTP-mode adapter plus a client session to post signed requests."""

    def __init__(self, adapter: SlackAdapter, handler: RecordingHandler, session: aiohttp.ClientSession):
        self.adapter, self.handler, self.session = adapter, handler, session

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.adapter.http_port}/slack/events"

    async def post(self, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
        h = {"Content-Type": content_type, **(sign(SECRET, body) if headers is None else headers)}
        async with self.session.post(self.url, data=body, headers=h) as resp:
            return resp.status, await resp.text()

    async def slash(self, text: str, user: str = "UMEMBER", response_url: str = "") -> tuple[int, str]:
        body = urlencode(
            {
                "token": "legacy",
                "team_id": "T1",
                "channel_id": "C1",
                "channel_name": "general",
                "user_id": user,
                "user_name": "member",
                "command": "/showbot",
                "text": text,
                "response_url": response_url,
                "trigger_id": "1.2.3",
                "api_app_id": "A1",
            }
        ).encode()
        return await self.post(body, "application/x-www-form-urlencoded")

    async def event(self, event: dict[str, Any]) -> tuple[int, str]:
        body = json.dumps(
            {
                "token": "legacy",
                "team_id": "T1",
                "api_app_id": "A1",
                "type": "event_callback",
                "event_id": f"Ev{time.monotonic_ns()}",
                "event_time": int(time.time()),
                "authorizations": [{"team_id": "T1", "user_id": "UBOT", "is_bot": True}],
                "event": event,
            }
        ).encode()
        return await self.post(body, "application/json")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest_asyncio.fixture
async def http(stub: SlackStub) -> AsyncIterator[Http]:  # noqa: F811
    handler = RecordingHandler(search_reply)
    clock = FakeClock()
    config = SlackConfig(mode="http", port=0, api_base_url=stub.api_base_url, admin_user_ids=("UADMIN",))
    adapter = SlackAdapter(
        config, bot_token="xoxb-test", handler=handler, signing_secret=SECRET, host="127.0.0.1", clock=clock
    )
    adapter.test_clock = clock  # type: ignore[attr-defined]
    await adapter.start()
    try:
        await wait_until(lambda: adapter.healthy)
        async with aiohttp.ClientSession() as session:
            yield Http(adapter, handler, session)
    finally:
        await adapter.stop()


def blocks_of(call: Any) -> list[dict[str, Any]]:
    blocks = call.args["blocks"]
    return json.loads(blocks) if isinstance(blocks, str) else blocks


# ---------------------------------------------------------------- construction


def test_http_mode_requires_signing_secret() -> None:
    async def handler(text: str, caller: Caller) -> Reply:  # pragma: no cover
        raise AssertionError

    with pytest.raises(ValueError, match="SLACK_SIGNING_SECRET"):
        SlackAdapter(SlackConfig(mode="http"), bot_token="xoxb", handler=handler)
    with pytest.raises(ValueError, match="SLACK_SIGNING_SECRET"):  # socket wanted, no app token
        SlackAdapter(SlackConfig(mode="socket"), bot_token="xoxb", handler=handler)
    adapter = SlackAdapter(SlackConfig(mode="socket"), bot_token="xoxb", handler=handler, app_token="xapp")
    assert adapter.mode == "socket" and isinstance(adapter, ChatAdapter) and adapter.platform is Platform.SLACK
    assert not adapter.healthy


# ---------------------------------------------------------------- request verification


async def test_url_verification_challenge(http: Http) -> None:
    body = json.dumps({"token": "legacy", "challenge": "c-123", "type": "url_verification"}).encode()
    status, text = await http.post(body, "application/json")
    assert status == 200 and json.loads(text) == {"challenge": "c-123"}


async def test_bad_missing_and_stale_signatures_get_401_and_no_body_in_logs(
    http: Http, stub: SlackStub, caplog: pytest.LogCaptureFixture  # noqa: F811
) -> None:
    caplog.set_level(logging.DEBUG)
    body = json.dumps({"type": "url_verification", "challenge": "SECRET-BODY-MARKER"}).encode()
    bad = {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=" + "0" * 64}
    assert (await http.post(body, "application/json", bad))[0] == 401
    assert (await http.post(body, "application/json", {}))[0] == 401
    stale = sign(SECRET, body, timestamp=int(time.time()) - 6 * 60)
    assert (await http.post(body, "application/json", stale))[0] == 401
    wrong_secret = sign("another-secret", body)
    assert (await http.post(body, "application/json", wrong_secret))[0] == 401

    assert "SECRET-BODY-MARKER" not in caplog.text
    assert SECRET not in caplog.text and "xoxb-test" not in caplog.text
    rejections = [r for r in caplog.records if r.name == "showbot.slack" and "signature" in r.getMessage()]
    assert len(rejections) == 4
    assert any("360s old" in r.getMessage() or "361s old" in r.getMessage() for r in rejections)
    assert http.handler.calls == [] and stub.calls == []  # nothing reached a listener or the Web API


# ---------------------------------------------------------------- commands


async def test_slash_command_acks_then_responds_with_rendered_blocks(http: Http, stub: SlackStub) -> None:  # noqa: F811
    http.handler.gate = asyncio.Event()  # the core is slow: the ack must not wait for it
    status, text = await http.slash("episodes on <https://x.com|x.com> &amp; postgres", response_url=stub.response_url())
    assert status == 200 and text == ""  # acked before the handler finished
    assert len(http.handler.calls) == 1 and not stub.calls_to("response_url")
    http.handler.gate.set()
    await stub.wait_for(lambda: stub.calls_to("response_url"))

    text_seen, caller = http.handler.calls[0]
    assert text_seen == "episodes on https://x.com & postgres"
    assert caller == Caller(Platform.SLACK, "UMEMBER", "C1", is_moderator=False, display_name="member")
    post = stub.calls_to("response_url")[0]
    assert post.args["response_type"] == "in_channel"
    assert post.args["unfurl_links"] is False and post.args["unfurl_media"] is False
    assert post.args["text"].startswith("Results for episodes on https://x.com &amp; postgres")
    blocks = post.args["blocks"]
    assert "&lt;!channel&gt; &amp; &lt;b&gt;x&lt;/b&gt; &lt;@U123&gt;" in blocks[1]["text"]["text"]
    assert "<!channel>" not in json.dumps(post.args) and "<@U123>" not in json.dumps(post.args)
    assert blocks[-1]["elements"][0]["value"] == "episodes on https://x.com & postgres page 2"


async def test_empty_slash_command_asks_for_help_and_ephemeral_reply(http: Http, stub: SlackStub) -> None:  # noqa: F811
    await http.slash("", response_url=stub.response_url("a"))
    await http.slash("status", user="UADMIN", response_url=stub.response_url("b"))
    await stub.wait_for(lambda: len(stub.calls_to("response_url")) == 2)
    assert sorted(t for t, _ in http.handler.calls) == ["help", "status"]
    by_path = {c.path: c for c in stub.calls_to("response_url")}
    assert by_path["/response/b"].args["response_type"] == "ephemeral"


async def test_app_mention_strips_the_mention_and_posts_in_channel(http: Http, stub: SlackStub) -> None:  # noqa: F811
    status, _ = await http.event(
        {"type": "app_mention", "user": "UMEMBER", "text": "<@UBOT> episodes on postgres", "ts": "1.1", "channel": "C9"}
    )
    assert status == 200
    await stub.wait_for(lambda: stub.calls_to("chat.postMessage"))
    assert [t for t, _ in http.handler.calls] == ["episodes on postgres"]
    assert http.handler.calls[0][1].channel == "C9" and http.handler.calls[0][1].user_id == "UMEMBER"
    post = stub.calls_to("chat.postMessage")[0]
    assert post.args["channel"] == "C9" and "thread_ts" not in post.args
    assert post.args["unfurl_links"] is False and post.args["unfurl_media"] is False
    assert post.args["text"].startswith("Results for episodes on postgres")
    assert "&lt;!channel&gt;" in blocks_of(post)[1]["text"]["text"]
    assert post.headers["Authorization"] == "Bearer xoxb-test"


async def test_mention_in_thread_replies_in_thread_and_errors_are_ephemeral(http: Http, stub: SlackStub) -> None:  # noqa: F811
    http.handler.reply = lambda text, caller: Reply(kind="error", text="I don't know that command")
    await http.event(
        {
            "type": "app_mention",
            "user": "UMEMBER",
            "text": "<@UBOT> frobnicate",
            "ts": "2.2",
            "thread_ts": "1.1",
            "channel": "C9",
        }
    )
    await stub.wait_for(lambda: stub.calls_to("chat.postEphemeral"))
    post = stub.calls_to("chat.postEphemeral")[0]
    assert post.args["user"] == "UMEMBER" and post.args["channel"] == "C9" and post.args["thread_ts"] == "1.1"
    assert not stub.calls_to("chat.postMessage")


async def test_direct_message_gets_a_reply_and_bot_messages_are_ignored(http: Http, stub: SlackStub) -> None:  # noqa: F811
    base = {"type": "message", "channel": "D42", "channel_type": "im", "ts": "3.3"}
    assert (await http.event({**base, "text": "latest", "bot_id": "BOTHER", "user": "UOTHERBOT"}))[0] == 200
    assert (await http.event({**base, "text": "latest", "subtype": "message_changed"}))[0] == 200
    assert (await http.event({**base, "text": "in a channel", "channel_type": "channel", "user": "UMEMBER"}))[0] == 200
    assert (await http.event({**base, "text": "latest episode", "user": "UMEMBER"}))[0] == 200
    await stub.wait_for(lambda: stub.calls_to("chat.postMessage"))
    assert [t for t, _ in http.handler.calls] == ["latest episode"]
    assert http.handler.calls[0][1].channel == "D42"
    assert [c.args["channel"] for c in stub.calls_to("chat.postMessage")] == ["D42"]


async def test_more_button_runs_the_next_page(http: Http, stub: SlackStub) -> None:  # noqa: F811
    payload = {
        "type": "block_actions",
        "team": {"id": "T1"},
        "user": {"id": "UMEMBER", "name": "member"},
        "api_app_id": "A1",
        "channel": {"id": "C1"},
        "container": {"type": "message", "channel_id": "C1", "message_ts": "1.1"},
        "trigger_id": "1.2.3",
        "response_url": stub.response_url("more"),
        "actions": [
            {
                "type": "button",
                "action_id": "showbot_more",
                "block_id": "showbot_more",
                "value": "episodes on postgres page 2",
                "action_ts": "1.2",
            }
        ],
    }
    status, _ = await http.post(urlencode({"payload": json.dumps(payload)}).encode(), "application/x-www-form-urlencoded")
    assert status == 200
    await stub.wait_for(lambda: stub.calls_to("response_url"))
    assert [t for t, _ in http.handler.calls] == ["episodes on postgres page 2"]
    assert stub.calls_to("response_url")[0].args["blocks"][0]["text"]["text"] == "Results for episodes on postgres page 2"


# ---------------------------------------------------------------- moderators


async def test_moderator_flag_from_config_and_users_info_cached(http: Http, stub: SlackStub) -> None:  # noqa: F811
    stub.users["UWSADMIN"] = {"id": "UWSADMIN", "is_admin": True, "profile": {"display_name": "boss"}}
    stub.users["UOWNER"] = {"id": "UOWNER", "is_owner": True}
    stub.users["UMEMBER"] = {"id": "UMEMBER", "is_admin": False, "real_name": "Mem Ber"}
    for n, user in enumerate(("UMEMBER", "UADMIN", "UWSADMIN", "UWSADMIN", "UOWNER", "UNOBODY"), start=1):
        await http.event({"type": "app_mention", "user": user, "text": "<@UBOT> feeds", "ts": "1.1", "channel": "C1"})
        await stub.wait_for(lambda n=n: len(stub.calls_to("chat.postMessage")) == n)
    flags = [(c.user_id, c.is_moderator) for _, c in http.handler.calls]
    assert flags == [
        ("UMEMBER", False),
        ("UADMIN", True),  # slack.admin_user_ids
        ("UWSADMIN", True),  # users.info is_admin
        ("UWSADMIN", True),
        ("UOWNER", True),  # users.info is_owner
        ("UNOBODY", False),  # users.info failed (user_not_found): not a moderator
    ]
    assert http.handler.calls[2][1].display_name == "boss"
    looked_up = [c.args["user"] for c in stub.calls_to("users.info")]
    assert looked_up == ["UMEMBER", "UWSADMIN", "UOWNER", "UNOBODY"]  # UWSADMIN once (cached), UADMIN never

    http.adapter.test_clock.now += 301  # type: ignore[attr-defined]  # past the 5 minute TTL
    stub.users["UWSADMIN"]["is_admin"] = False  # demoted in the workspace
    caller = await http.adapter.caller_for("UWSADMIN", "C1")
    assert caller.is_moderator is False
    assert [c.args["user"] for c in stub.calls_to("users.info")][-1] == "UWSADMIN"


# ---------------------------------------------------------------- supervision


async def test_http_server_restarts_with_backoff_when_it_cannot_listen(
    stub: SlackStub, caplog: pytest.LogCaptureFixture  # noqa: F811
) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    config = SlackConfig(mode="http", port=port, api_base_url=stub.api_base_url)
    adapter = SlackAdapter(
        config,
        bot_token="xoxb-test",
        handler=RecordingHandler(search_reply),
        signing_secret=SECRET,
        host="127.0.0.1",
        backoff_base_s=0.01,
        backoff_max_s=0.05,
    )
    await adapter.start()
    try:
        await wait_until(lambda: adapter.restarts >= 2)
        assert not adapter.healthy
        lost = [r.getMessage() for r in caplog.records if r.name == "showbot.slack" and "slack http connection" in r.getMessage()]
        assert lost and "connecting again in" in lost[0] and "xoxb" not in caplog.text
        blocker.close()
        await wait_until(lambda: adapter.healthy)
        assert adapter.http_port == port
    finally:
        blocker.close()
        await adapter.stop()
    assert not adapter.healthy


async def test_reply_image_is_uploaded_with_files_upload_v2(http: Http, stub: SlackStub, tmp_path: Any) -> None:  # noqa: F811
    chart = tmp_path / "stats.png"
    chart.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    http.handler.reply = lambda text, caller: Reply(kind="stats", text="42 episodes", image_path=str(chart))
    await http.event({"type": "app_mention", "user": "UMEMBER", "text": "<@UBOT> stats", "ts": "1.1", "channel": "C3"})
    await stub.wait_for(lambda: stub.calls_to("files.completeUploadExternal"))
    assert stub.calls_to("chat.postMessage")[0].args["text"] == "42 episodes"
    assert stub.calls_to("files.getUploadURLExternal")[0].args["filename"] == "stats.png"
    assert stub.calls_to("upload")[0].raw.count(b"PNG") == 1
    done = stub.calls_to("files.completeUploadExternal")[0].args
    assert done["channel_id"] == "C3"


async def test_a_crashing_handler_gets_a_generic_ephemeral_answer(
    http: Http, stub: SlackStub, caplog: pytest.LogCaptureFixture  # noqa: F811
) -> None:
    def boom(text: str, caller: Caller) -> Reply:
        raise RuntimeError("bug in the core")

    http.handler.reply = boom
    await http.slash("latest", response_url=stub.response_url())
    await stub.wait_for(lambda: stub.calls_to("response_url"))
    post = stub.calls_to("response_url")[0]
    assert post.args["response_type"] == "ephemeral" and "went wrong" in post.args["text"]
    assert any("command handler failed" in r.getMessage() for r in caplog.records)
