"""bot.sources.x.snapshot: the JSON snapshot format of docs/x-snapshot-format.md,
content sniffing, and the snapshot provider's file and URL reads."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bot.clock import FrozenClock
from bot.errors import FeedParseError, FetchError
from bot.sources.http import HttpFetcher
from bot.sources.x import fetch_snapshot, parse_profile_text, parse_snapshot, parse_snapshot_json, snapshot_to_json
from tests.xstub import XStub, fixture_bytes, seed_text, x_stub  # noqa: F401  (fixture)

NOW = datetime(2026, 5, 20, 12, 0, tzinfo=timezone.utc)
DOCS = Path(__file__).parent.parent / "docs" / "x-snapshot-format.md"


# ------------------------------------------------------------------ snapshots


def test_json_snapshot_round_trips() -> None:
    snap = parse_profile_text(seed_text("001"), "hnasr", NOW)
    assert parse_snapshot_json(snapshot_to_json(snap)) == snap


def test_the_documented_example_is_the_fixture_and_parses() -> None:
    block = re.search(r"```json\n(.*?)\n```", DOCS.read_text(encoding="utf-8"), re.S)
    assert block is not None
    assert json.loads(block.group(1)) == json.loads(fixture_bytes("snapshot_001.json"))
    snap = parse_snapshot_json(block.group(1).encode())
    assert (snap.handle, snap.followers, snap.following, snap.posts) == ("hnasr", 88800, 640, 21800)
    assert snap.taken_at == datetime(2026, 5, 1, 12, tzinfo=timezone.utc)
    assert snap.pinned is not None and "Root Cause" in snap.pinned.text
    assert len(snap.recent_posts) == 2


def test_json_counts_may_be_displayed_strings() -> None:
    doc = {"handle": "@hnasr", "taken_at": "2026-05-01T12:00:00", "followers": "88.8K",
           "following": 640, "posts": "21,800",
           "recent_posts": [{"id": "7", "text": "hi", "created_at": "2026-04-30T10:00:00+02:00"}]}
    snap = parse_snapshot_json(json.dumps(doc).encode())
    assert (snap.handle, snap.followers, snap.following, snap.posts) == ("hnasr", 88800, 640, 21800)
    assert snap.taken_at == datetime(2026, 5, 1, 12, tzinfo=timezone.utc)  # zone-less = UTC
    [post] = snap.recent_posts
    assert (post.guid, post.link) == ("7", "https://x.com/hnasr/status/7")
    assert post.published_at == datetime(2026, 4, 30, 8, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("doc", "key"),
    [
        (b"not json", "not valid JSON"),
        (b"[]", "expected a JSON object"),
        (b'{"taken_at": "2026-05-01T00:00:00Z", "followers": 1}', "snapshot.handle"),
        (b'{"handle": "hnasr", "taken_at": "2026-05-01T00:00:00Z"}', "snapshot.followers"),
        (b'{"handle": "hnasr", "taken_at": "yesterday", "followers": 1}', "snapshot.taken_at"),
        (b'{"handle": "hnasr", "taken_at": "2026-05-01", "followers": "lots"}', "snapshot.followers"),
        (b'{"handle": "hnasr", "taken_at": "2026-05-01", "followers": -3}', "snapshot.followers"),
        (b'{"handle": "hnasr", "taken_at": "2026-05-01", "followers": true}', "snapshot.followers"),
        (b'{"handle": "hnasr", "taken_at": "2026-05-01", "followers": 1, "pinned": {"id": "1"}}',
         "snapshot.pinned.text"),
        (b'{"handle": "hnasr", "taken_at": "2026-05-01", "followers": 1, "recent_posts": [3]}',
         "snapshot.recent_posts[0]"),
        (b'{"handle": "hnasr", "taken_at": "2026-05-01", "followers": 1, "bio": 5}', "snapshot.bio"),
    ],
)
def test_bad_json_snapshots_name_the_key(doc: bytes, key: str) -> None:
    with pytest.raises(FeedParseError) as info:
        parse_snapshot_json(doc)
    assert key in str(info.value)


def test_parse_snapshot_dispatches_on_the_content() -> None:
    json_snap = parse_snapshot(fixture_bytes("snapshot_001.json"), handle="hnasr", taken_at=NOW)
    text_snap = parse_snapshot(seed_text("001").encode(), handle="hnasr", taken_at=NOW)
    html_page = "<html><body>" + "".join(
        f"<div>{line}</div>" for line in seed_text("001").splitlines()) + "</body></html>"
    html_snap = parse_snapshot(html_page.encode(), handle="HNASR", taken_at=NOW)
    assert json_snap.followers == text_snap.followers == html_snap.followers == 88800
    assert html_snap.bio == text_snap.bio and html_snap.pinned == text_snap.pinned
    with pytest.raises(FeedParseError, match="snapshot is for @hnasr, expected @other"):
        parse_snapshot(fixture_bytes("snapshot_001.json"), handle="other", taken_at=NOW)
    with pytest.raises(FeedParseError):
        parse_snapshot(b"\x89PNG\r\n\x1a\n\x00\x00", handle="hnasr", taken_at=NOW)


async def test_fetch_snapshot_from_a_file_and_a_url(tmp_path: Path, x_stub: XStub) -> None:
    path = tmp_path / "hnasr.txt"
    path.write_text(seed_text("000"), encoding="utf-8")
    x_stub.answer("/snapshots/hnasr.json", fixture="snapshot_001.json")
    async with HttpFetcher(allow_private_addresses=True, timeout_s=5) as fetcher:
        from_file = await fetch_snapshot(str(path), handle="hnasr", fetcher=fetcher,
                                         clock=FrozenClock(NOW))
        from_url = await fetch_snapshot(f"http://127.0.0.1:{x_stub.port}/snapshots/hnasr.json",
                                        handle="hnasr", fetcher=fetcher)
        with pytest.raises(FetchError, match="cannot read snapshot file"):
            await fetch_snapshot(str(tmp_path / "missing.txt"), handle="hnasr", fetcher=fetcher)
        with pytest.raises(FetchError, match="exceeds"):
            await fetch_snapshot(str(path), handle="hnasr", fetcher=fetcher, max_bytes=100)
    assert (from_file.followers, from_file.taken_at) == (86000, NOW)
    assert from_url.followers == 88800
    assert x_stub.requests[0].authorization is None  # the snapshot URL never gets the X token
