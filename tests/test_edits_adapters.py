"""Edits through the real adapters against the local fakes: Discord's
PATCH /channels/{id}/messages/{id} (discord.py's own path), Slack's
chat.update, the console's line. A deleted message is ``gone``, a 5xx is
a retryable error; never a new post."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from adapters.console import ConsoleAdapter
from bot.edits import CHANGE_MERGE, CHANGE_TITLE, AlsoLink, edit_payload, next_edit
from bot.errors import DeliveryError
from bot.models import Announcement, Event, EventKind
from tests.fake_discord import CHANNEL_ID, FakeDiscord
from tests.slack_stub import SlackStub, stub  # noqa: F401 - fixture
from tests.test_discord_adapter import MakeAdapter, fake, make_adapter  # noqa: F401 - fixtures
from tests.test_discord_adapter import announcement as discord_announcement
from tests.test_slack_deliver import announcement as slack_announcement
from tests.test_slack_deliver import make as make_slack

WHEN = datetime(2024, 5, 1, tzinfo=timezone.utc)
VIDEO = "https://www.youtube.com/watch?v=xyz"


def edit_of(announcement: Announcement, message_id: str | None, *, change: str = CHANGE_MERGE,
            title: str | None = None) -> Announcement:
    spec = next_edit(None, announcement.event.id, change, title=title,
                     also=AlsoLink("YouTube", VIDEO) if change == CHANGE_MERGE else None)
    edit = Event(id=99, kind=EventKind.EDIT, title=title or announcement.event.title, url=None, created_at=WHEN,
                 item_id=announcement.event.item_id, payload=edit_payload(spec))
    return replace(announcement, outbox_id=2, edit=edit, edit_of=message_id)


# -- Discord -----------------------------------------------------------------------


async def test_discord_edits_the_posted_message_in_place(fake: FakeDiscord, make_adapter: MakeAdapter) -> None:  # noqa: F811
    adapter = await make_adapter()
    first = discord_announcement("evt-1:route-1", mention="555555555555555555")
    posted = await adapter.deliver(first)
    edited = await adapter.edit(edit_of(first, posted.message_id))
    assert edited.message_id == posted.message_id
    (patch,) = fake.edits()
    assert patch.path == f"/channels/{CHANNEL_ID}/messages/{posted.message_id}"
    assert patch.body["allowed_mentions"] == {"parse": []}  # an edit never pings
    embed = patch.body["embeds"][0]
    assert embed["footer"]["text"] == "id:evt-1:route-1"  # the post's marker stays
    also = [f for f in embed["fields"] if f["name"] == "Also on"]
    assert also and VIDEO in also[0]["value"]
    (message,) = fake.created_messages()  # one message, changed
    assert message["edited_timestamp"] and message["embeds"][0]["fields"][-1]["name"] == "Also on"
    assert len(fake.find("POST", rf"/channels/{CHANNEL_ID}/messages")) == 1
    # The same edit again leaves the same message (idempotent).
    await adapter.edit(edit_of(first, posted.message_id))
    assert fake.edits()[1].body == patch.body


async def test_discord_title_edit_changes_the_title(fake: FakeDiscord, make_adapter: MakeAdapter) -> None:  # noqa: F811
    adapter = await make_adapter()
    first = discord_announcement()
    posted = await adapter.deliver(first)
    await adapter.edit(edit_of(first, posted.message_id, change=CHANGE_TITLE, title="The fixed title"))
    assert fake.created_messages()[0]["embeds"][0]["title"] == "The fixed title"


async def test_discord_edit_of_a_deleted_message_is_gone(fake: FakeDiscord, make_adapter: MakeAdapter) -> None:  # noqa: F811
    adapter = await make_adapter()
    first = discord_announcement()
    posted = await adapter.deliver(first)
    assert posted.message_id is not None and fake.delete_message(CHANNEL_ID, posted.message_id)
    with pytest.raises(DeliveryError) as err:
        await adapter.edit(edit_of(first, posted.message_id))
    assert err.value.gone and not err.value.permanent
    assert len(fake.find("POST", rf"/channels/{CHANNEL_ID}/messages")) == 1  # nothing posted instead


async def test_discord_5xx_during_an_edit_comes_back_at_once_retryable(
        fake: FakeDiscord, make_adapter: MakeAdapter) -> None:  # noqa: F811
    adapter = await make_adapter()
    first = discord_announcement()
    posted = await adapter.deliver(first)
    fake.fail_next("PATCH", rf"/channels/{CHANNEL_ID}/messages/\d+", 503, {"message": "down"})
    with pytest.raises(DeliveryError) as err:
        await adapter.edit(edit_of(first, posted.message_id))
    assert not err.value.gone and not err.value.permanent
    assert len(fake.edits()) == 1  # failed fast: discord.py's own retries are off
    await adapter.edit(edit_of(first, posted.message_id))
    assert len(fake.created_messages()) == 1 and fake.created_messages()[0]["edited_timestamp"]


# -- Slack ---------------------------------------------------------------------------


async def test_slack_updates_the_posted_message_in_place(stub: SlackStub) -> None:  # noqa: F811
    adapter, _ = make_slack(stub)
    first = slack_announcement()
    posted = await adapter.deliver(first)
    await adapter.edit(edit_of(first, posted.message_id))
    (update,) = stub.calls_to("chat.update")
    assert update.args["ts"] == posted.message_id and update.args["channel"] == "C1"
    (message,) = stub.history["C1"]
    assert message["edited"] and VIDEO in str(message["blocks"])
    assert message["metadata"]["event_payload"]["key"] == "ev7:route3"  # still found as our post
    assert len(stub.calls_to("chat.postMessage")) == 1


async def test_slack_edit_of_a_deleted_message_is_gone(stub: SlackStub) -> None:  # noqa: F811
    adapter, _ = make_slack(stub)
    first = slack_announcement()
    posted = await adapter.deliver(first)
    stub.history["C1"].clear()
    with pytest.raises(DeliveryError) as err:
        await adapter.edit(edit_of(first, posted.message_id))
    assert err.value.gone and len(stub.calls_to("chat.postMessage")) == 1


async def test_slack_5xx_during_an_edit_is_retryable(stub: SlackStub) -> None:  # noqa: F811
    adapter, _ = make_slack(stub)
    first = slack_announcement()
    posted = await adapter.deliver(first)
    stub.script("chat.update", status=503, body={"ok": False, "error": "service_unavailable"})
    with pytest.raises(DeliveryError) as err:
        await adapter.edit(edit_of(first, posted.message_id))
    assert not err.value.gone and not err.value.permanent


# -- console --------------------------------------------------------------------------


async def test_the_console_prints_what_changed_on_a_line_of_its_own() -> None:
    out = io.StringIO()

    async def handler(text, caller):  # pragma: no cover - no commands typed
        raise AssertionError

    console = ConsoleAdapter(handler, stdin=io.StringIO(""), stdout=out)
    first = discord_announcement()
    await console.deliver(first)
    await console.edit(edit_of(first, "console-1"))
    await console.edit(edit_of(first, "console-1", change=CHANGE_TITLE, title="Fixed"))
    lines = out.getvalue().splitlines()
    assert lines[-2] == f"+ also on YouTube: {VIDEO}"
    assert lines[-1].startswith("(edited) New episode: Fixed")
