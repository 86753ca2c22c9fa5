"""Announcements: deliver() / find_delivered() against the stub Web API, through the real slack_sdk."""

from __future__ import annotations

import json
import socket
from datetime import datetime, timedelta, timezone

import pytest

from adapters.slack import SlackAdapter
from bot.config import SlackConfig
from bot.errors import DeliveryError
from bot.models import (
    Announcement,
    Chapter,
    ContentKind,
    Delivered,
    Event,
    EventKind,
    Item,
    Platform,
    StoredItem,
)
from tests.fake_chat import to_destination
from tests.slack_stub import RecordingHandler, SlackStub, stub  # noqa: F401 - fixture

EVIL = "<!channel> & <b>x</b> <@U123>"
WHEN = datetime(2024, 5, 1, tzinfo=timezone.utc)


def announcement(channel: str = "C1", *, key: str = "ev7:route3", mention: str | None = None) -> Announcement:
    item = Item(
        title=EVIL,
        link="https://www.youtube.com/watch?v=abc",
        summary="<!here> summary",
        published_at=WHEN,
        duration_s=2799,
        chapters=(Chapter(754, "MVCC"),),
    )
    return Announcement(
        outbox_id=1,
        idempotency_key=key,
        event=Event(id=7, kind=EventKind.VIDEO, title=EVIL, url=item.link, created_at=WHEN, item_id=1),
        destination=to_destination(Platform.SLACK, channel),
        mention=mention,
        first_attempt_at=datetime.now(timezone.utc) - timedelta(minutes=1),
        item=StoredItem(1, "youtube", ContentKind.VIDEO, "yt:abc", item, WHEN),
    )


def make(stub: SlackStub, **kwargs: object) -> tuple[SlackAdapter, list[float]]:  # noqa: F811
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    adapter = SlackAdapter(
        SlackConfig(mode="http", api_base_url=stub.api_base_url),
        bot_token="xoxb-test",
        handler=RecordingHandler(),
        signing_secret="s",
        rate_limit_sleep=fake_sleep,
        channel_interval_s=0,
        **kwargs,  # type: ignore[arg-type]
    )
    return adapter, sleeps


def posted_json(stub: SlackStub) -> list[dict]:  # noqa: F811
    return [c.args for c in stub.calls_to("chat.postMessage")]


async def test_deliver_posts_escaped_blocks_with_metadata(stub: SlackStub) -> None:  # noqa: F811
    adapter, _ = make(stub)
    delivered = await adapter.deliver(announcement())
    [sent] = posted_json(stub)
    ts = stub.history["C1"][0]["ts"]
    # The link `why` shows: the workspace URL from auth.test (asked once) + archives/C1/p<ts>.
    assert delivered == Delivered(message_id=ts, url=f"https://stub.slack.com/archives/C1/p{ts.replace('.', '')}")
    assert sent["channel"] == "C1"
    assert sent["metadata"] == {
        "event_type": "showbot_announcement",
        "event_payload": {"key": "ev7:route3", "event_id": 7},
    }
    assert sent["unfurl_links"] is False and sent["unfurl_media"] is False
    assert sent["text"].startswith("New video: &lt;!channel&gt; &amp; &lt;b&gt;x&lt;/b&gt; &lt;@U123&gt;")
    dumped = json.dumps(sent)
    for bad in ("<!channel>", "<!here>", "<@U123>", "<b>", "<!subteam"):
        assert bad not in dumped
    assert "&lt;!channel&gt; &amp; &lt;b&gt;x&lt;/b&gt; &lt;@U123&gt;" in sent["blocks"][1]["text"]["text"]


async def test_mention_only_when_the_route_sets_a_user_group(stub: SlackStub) -> None:  # noqa: F811
    adapter, _ = make(stub)
    await adapter.deliver(announcement(mention="S0DEVS"))
    [sent] = posted_json(stub)
    assert sent["text"].startswith("<!subteam^S0DEVS> New video:")
    assert sent["blocks"][1]["text"]["text"].startswith("<!subteam^S0DEVS> ")
    assert json.dumps(sent).count("<!") == 2  # the group, in the text and in the block; nothing else


async def test_dm_route_opens_the_conversation(stub: SlackStub) -> None:  # noqa: F811
    adapter, _ = make(stub)
    await adapter.deliver(announcement("user:U77"))
    await adapter.deliver(announcement("user:U77", key="ev8:dm"))
    assert [c.args["users"] for c in stub.calls_to("conversations.open")] == ["U77"]  # opened once
    assert [a["channel"] for a in posted_json(stub)] == ["DU77", "DU77"]


async def test_a_429_comes_back_at_once_with_retry_after_and_posts_nothing(stub: SlackStub) -> None:  # noqa: F811
    """No retry inside deliver: the outbox schedules it, honouring Retry-After."""
    adapter, sleeps = make(stub)
    stub.script("chat.postMessage", status=429, headers={"Retry-After": "7"})
    with pytest.raises(DeliveryError) as info:
        await adapter.deliver(announcement())
    assert info.value.retry_after == 7.0 and not info.value.permanent and not info.value.maybe_delivered
    assert sleeps == [] and len(stub.calls_to("chat.postMessage")) == 1 and "C1" not in stub.history
    delivered = await adapter.deliver(announcement())
    assert len(stub.history["C1"]) == 1 and delivered.message_id == stub.history["C1"][0]["ts"]


async def test_an_http_5xx_comes_back_at_once_as_maybe_delivered(stub: SlackStub) -> None:  # noqa: F811
    adapter, _ = make(stub)
    stub.script("chat.postMessage", status=503, body={"ok": False, "error": "service_unavailable"})
    with pytest.raises(DeliveryError) as info:
        await adapter.deliver(announcement())
    assert info.value.maybe_delivered and not info.value.permanent and info.value.retry_after is None
    assert len(stub.calls_to("chat.postMessage")) == 1


async def test_replies_to_members_still_retry_a_429_in_process(stub: SlackStub) -> None:  # noqa: F811
    """A member is waiting for an answer: that client keeps slack_sdk's retry."""
    adapter, sleeps = make(stub)
    stub.script("chat.postMessage", status=429, headers={"Retry-After": "1"})
    await adapter.client.chat_postMessage(channel="C1", text="hi")
    assert sleeps == [1.0] and len(stub.calls_to("chat.postMessage")) == 2


@pytest.mark.parametrize("error", ["channel_not_found", "not_in_channel", "is_archived", "account_inactive", "invalid_auth"])
async def test_permanent_errors(stub: SlackStub, error: str) -> None:  # noqa: F811
    adapter, _ = make(stub)
    stub.script("chat.postMessage", body={"ok": False, "error": error})
    with pytest.raises(DeliveryError) as info:
        await adapter.deliver(announcement())
    assert info.value.permanent and error in str(info.value) and "C1" in str(info.value)


async def test_other_errors_are_transient(stub: SlackStub) -> None:  # noqa: F811
    adapter, _ = make(stub)
    stub.script("chat.postMessage", body={"ok": False, "error": "internal_error"})
    with pytest.raises(DeliveryError) as info:
        await adapter.deliver(announcement())
    assert not info.value.permanent and info.value.retry_after is None

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: connection refused
    offline = SlackAdapter(
        SlackConfig(mode="http", api_base_url=f"http://127.0.0.1:{port}/api/"),
        bot_token="xoxb-test",
        handler=RecordingHandler(),
        signing_secret="s",
    )
    with pytest.raises(DeliveryError) as info:
        await offline.deliver(announcement())
    assert not info.value.permanent and "xoxb" not in str(info.value)


async def test_crash_between_send_and_record_is_found_by_a_new_adapter(stub: SlackStub) -> None:  # noqa: F811
    first, _ = make(stub)
    delivered = await first.deliver(announcement(key="ev7:route3"))
    await first.deliver(announcement(key="ev9:route3"))  # another one after it
    # the process dies before the outbox records `delivered`; a new one starts
    second, _ = make(stub)
    found = await second.find_delivered(announcement(key="ev7:route3"))
    assert found == delivered
    [history] = stub.calls_to("conversations.history")
    assert history.args["channel"] == "C1" and history.args["limit"] == "200"
    assert float(history.args["oldest"]) > 0  # from the row's first attempt on
    assert history.args["include_all_metadata"] in ("1", "true")
    assert await second.find_delivered(announcement(key="ev1:never-sent")) is None
    assert len(stub.calls_to("chat.postMessage")) == 2  # nothing was posted again
    # A busy channel: the post is pages away from the newest messages, still found.
    for n in range(450):
        await first.client.chat_postMessage(channel="C1", text=f"chatter {n}")
    assert await second.find_delivered(announcement(key="ev7:route3")) == delivered


async def test_a_lookup_slack_cannot_answer_now_is_an_error_not_a_no(stub: SlackStub) -> None:  # noqa: F811
    """An HTTP 5xx on the history read must not read as "not there": the
    outbox would post it again blind."""
    adapter, _ = make(stub)
    stub.script("conversations.history", status=503, body={"ok": False, "error": "service_unavailable"})
    with pytest.raises(DeliveryError) as info:
        await adapter.find_delivered(announcement())
    assert not info.value.permanent


async def test_find_delivered_when_history_is_unreadable_returns_none(stub: SlackStub) -> None:  # noqa: F811
    adapter, _ = make(stub)
    stub.script("conversations.history", body={"ok": False, "error": "missing_scope"})
    assert await adapter.find_delivered(announcement()) is None
    stub.script("conversations.history", status=429, headers={"Retry-After": "3"})
    with pytest.raises(DeliveryError) as info:
        await adapter.find_delivered(announcement())
    assert info.value.retry_after == 3.0


async def test_book_follow_up_goes_in_the_announcement_thread_and_is_found_there(
    stub: SlackStub,  # noqa: F811
) -> None:
    from dataclasses import replace

    adapter, _ = make(stub)
    first = announcement(key="ev7:route3", mention="S123")
    anchor = await adapter.deliver(first)
    follow_up = replace(
        first, idempotency_key="ev8:route3", item=None, reply_to=anchor.message_id,
        event=Event(id=8, kind=EventKind.BOOK, title="Bio: Author of Root Cause", url="https://x.com/hnasr",
                    created_at=WHEN, payload={"follow_up_of": 7}),
    )
    delivered = await adapter.deliver(follow_up)
    first_post, reply = posted_json(stub)
    assert "thread_ts" not in first_post
    assert reply["thread_ts"] == anchor.message_id
    assert "S123" not in reply["text"] and "S123" not in json.dumps(reply["blocks"])  # no second ping
    assert "More book news" in reply["text"]
    # After a crash, a new adapter finds the reply in the thread (it is not
    # in the channel's history, like on Slack).
    again, _ = make(stub)
    assert await again.find_delivered(follow_up) == delivered
    [replies] = stub.calls_to("conversations.replies")
    assert replies.args["ts"] == anchor.message_id
    assert len(stub.calls_to("chat.postMessage")) == 2


async def test_a_follow_up_whose_announcement_was_deleted_is_posted_on_its_own(
    stub: SlackStub,  # noqa: F811
) -> None:
    from dataclasses import replace

    adapter, _ = make(stub)
    follow_up = replace(
        announcement(key="ev8:route3"), item=None, reply_to="1700000000.999999",
        event=Event(id=8, kind=EventKind.BOOK, title="Bio: Author of Root Cause", url="https://x.com/hnasr",
                    created_at=WHEN, payload={"follow_up_of": 7}),
    )
    stub.script("chat.postMessage", body={"ok": False, "error": "thread_not_found"})
    delivered = await adapter.deliver(follow_up)
    in_thread, alone = posted_json(stub)
    assert in_thread["thread_ts"] == "1700000000.999999" and "thread_ts" not in alone
    assert delivered.message_id == stub.history["C1"][-1]["ts"]  # posted once, in the channel
    # Any other error is still an error (and retried by the outbox), not a silent repost.
    stub.script("chat.postMessage", body={"ok": False, "error": "internal_error"})
    with pytest.raises(DeliveryError):
        await adapter.deliver(follow_up)
    assert len(stub.calls_to("chat.postMessage")) == 3


async def test_posts_to_one_channel_are_paced_and_other_channels_never_wait() -> None:
    from adapters.slack.outbound import Pacer

    now = [100.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = Pacer(1.0, monotonic=lambda: now[0], sleep=sleep)
    await pacer.wait("C1")
    await pacer.wait("C2")  # another channel: no wait
    now[0] += 0.25
    await pacer.wait("C1")  # 0.25 s after the last post there: waits the rest
    assert slept == [0.75]
