"""YouTube's pieces one by one: the [youtube] config and per-source settle/shorts,
the addresses built from base_url, chapter links by yt:videoId, and the pure
readers of the /shorts/ answer, the watch page and videos.list."""

from __future__ import annotations

import json
from pathlib import Path
from datetime import datetime, timezone

import pytest

from bot.config import Secrets, SourceOptions, YouTubeConfig, parse_config
from bot.errors import ConfigError
from bot.models import LiveState
from bot.replies import link_at, timed_link
from bot.sources.http import HttpFetcher, ProbeResult
from bot.sources.youtube.addresses import YouTubeAddresses
from bot.sources.youtube.api import classify_error, parse_videos_response
from bot.sources.youtube.playability import parse_watch_page
from bot.sources.youtube.shorts import fetch_is_short, parse_shorts_answer
from tests.feedserver import FeedServer, feed_server  # noqa: F401  (fixture)


def source(**kw: object) -> dict[str, object]:
    return {"name": "yt", "kind": "rss", "url": "https://www.youtube.com/feeds/videos.xml?channel_id=UC1",
            "content": "video", **kw}


# ----------------------------------------------------------------------- config

def test_youtube_defaults_and_overrides() -> None:
    assert parse_config({}).youtube == YouTubeConfig("https://www.youtube.com", "https://www.googleapis.com/youtube/v3",
                                                     48 * 3600)
    config = parse_config({"youtube": {"base_url": "http://127.0.0.1:9/", "api_base_url": "http://127.0.0.1:9/v3",
                                       "hold_unplayable": "12h"}})
    assert config.youtube == YouTubeConfig("http://127.0.0.1:9", "http://127.0.0.1:9/v3", 12 * 3600)


@pytest.mark.parametrize(("raw", "key"), [
    ({"youtube": {"base_url": "ftp://x"}}, "youtube.base_url"),
    ({"youtube": {"colour": 1}}, "youtube.colour"),
    ({"youtube": {"hold_unplayable": "soon"}}, "youtube.hold_unplayable"),
    ({"sources": [source(settle="a while")]}, "sources[0].settle"),
    ({"sources": [source(shorts="no")]}, "sources[0].shorts"),
])
def test_bad_youtube_keys_are_named(raw: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    assert key in str(err.value)


def test_per_source_settle_and_shorts() -> None:
    config = parse_config({"sources": [source(settle="10m", shorts=True), source(name="plain")]})
    assert config.source_options == {"yt": SourceOptions(settle_s=600, shorts=True)}


def test_the_api_key_comes_from_the_environment_only_and_is_redacted() -> None:
    secrets = Secrets.from_env({"YOUTUBE_API_KEY": " k3y "})
    assert secrets.youtube_api_key == "k3y" and "k3y" in secrets.values() and "k3y" not in repr(secrets)
    assert Secrets.from_env({}).youtube_api_key is None


# -------------------------------------------------------------------- addresses

def test_every_address_comes_from_base_url() -> None:
    local = YouTubeAddresses("http://127.0.0.1:8123")
    assert local.watch("abc") == "http://127.0.0.1:8123/watch?v=abc"
    assert local.shorts("abc") == "http://127.0.0.1:8123/shorts/abc"
    assert local.channel_feed("UC123") == "http://127.0.0.1:8123/feeds/videos.xml?channel_id=UC123"
    assert local.uploads_feed("UC123") == "http://127.0.0.1:8123/feeds/videos.xml?playlist_id=UU123"
    assert local.uploads_feed("UC123", shorts=False) == "http://127.0.0.1:8123/feeds/videos.xml?playlist_id=UULF123"
    assert YouTubeAddresses().watch("abc") == "https://www.youtube.com/watch?v=abc"


def test_chapter_links_seek_on_any_host_when_the_item_has_a_video_id() -> None:
    local = "http://127.0.0.1:8123/watch?v=abc"
    assert timed_link(local, 90) is None  # by host alone: not YouTube
    assert timed_link(local, 90, "abc") == "http://127.0.0.1:8123/watch?v=abc&t=90"
    assert link_at(local + "&t=5", 60, "abc") == "http://127.0.0.1:8123/watch?v=abc&t=60"


# ------------------------------------------------------------------ pure readers

@pytest.mark.parametrize(("status", "verdict"), [(200, True), (303, False), (302, False), (404, None), (500, None)])
def test_the_shorts_answer(status: int, verdict: bool | None) -> None:
    assert parse_shorts_answer(ProbeResult(status, None)) is verdict


async def test_the_shorts_head_is_guarded_and_not_followed(feed_server: FeedServer) -> None:  # noqa: F811
    feed_server.add_redirect("/shorts/v1", feed_server.url("/watch?v=v1"), status=303)
    feed_server.add_status("/shorts/s1", 200)
    addresses = YouTubeAddresses(feed_server.base_url)
    async with HttpFetcher(allow_private_addresses=True) as fetcher:
        assert await fetch_is_short(fetcher, addresses, "v1") == (False, None)
        assert await fetch_is_short(fetcher, addresses, "s1") == (True, None)
    assert feed_server.hits["/watch"] == 0  # the redirect is the answer
    async with HttpFetcher(allow_private_addresses=False) as guarded:
        short, error = await fetch_is_short(guarded, addresses, "s1")
    assert short is None and error is not None and "127.0.0.1" in error


def _page(status: dict[str, object]) -> str:
    return f"<script>var ytInitialPlayerResponse = {json.dumps({'playabilityStatus': status})};</script>"


def test_the_watch_page_says_whether_a_video_plays_yet() -> None:
    assert parse_watch_page(_page({"status": "OK"})).playable is True
    upcoming = parse_watch_page(_page({"status": "LIVE_STREAM_OFFLINE", "liveStreamability": {}}))
    assert (upcoming.playable, upcoming.status) == (False, "LIVE_STREAM_OFFLINE")
    assert parse_watch_page(_page({"status": "UNPLAYABLE", "liveStreamability": {}})).playable is False
    assert parse_watch_page(_page({"status": "LOGIN_REQUIRED"})).playable is True  # waiting won't change it
    broken = parse_watch_page("<html>consent wall</html>")
    assert (broken.playable, broken.status, broken.error) == (None, "UNREADABLE", None)
    assert parse_watch_page("ytInitialPlayerResponse = {not json").playable is None


def test_videos_list_answers_in_the_documented_shape() -> None:
    body = json.dumps({"kind": "youtube#videoListResponse", "items": [
        {"id": "a", "snippet": {"liveBroadcastContent": "upcoming"},
         "liveStreamingDetails": {"scheduledStartTime": "2026-12-01T18:00:00Z"}},
        {"id": "b", "snippet": {"liveBroadcastContent": "live"},
         "liveStreamingDetails": {"actualStartTime": "2026-12-01T15:00:00Z"}},
        {"id": "c", "snippet": {"liveBroadcastContent": "none"}},
        {"id": "d", "snippet": {"liveBroadcastContent": "something new"}},
        "junk",
    ]}).encode()
    found = parse_videos_response(body)
    assert found["a"].live is LiveState.UPCOMING
    assert found["a"].scheduled_start_at == datetime(2026, 12, 1, 18, tzinfo=timezone.utc)
    assert found["b"].live is LiveState.LIVE and found["b"].actual_start_at is not None
    assert found["c"].live is LiveState.NONE and found["d"].live is LiveState.NONE
    with pytest.raises(Exception, match="not JSON"):
        parse_videos_response(b"<html>")


@pytest.mark.parametrize(("status", "reason", "kind"), [
    (403, "quotaExceeded", "quota"), (403, "dailyLimitExceeded", "quota"), (400, "keyInvalid", "key"),
    (403, "forbidden", "key"), (500, "backendError", "http"),
])
def test_api_errors_are_classified(status: int, reason: str, kind: str) -> None:
    body = json.dumps({"error": {"code": status, "message": "m", "errors": [{"reason": reason}]}}).encode()
    assert classify_error(status, body).reason == kind
    assert classify_error(status, b"not json").reason == "http"


def test_check_shows_settle_shorts_and_whether_the_key_is_set_never_the_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.cli import main

    monkeypatch.delenv("SHOWBOT_DATABASE_URL", raising=False)
    path = tmp_path / "config.toml"
    path.write_text(f'[storage]\npath = "{tmp_path / "s.db"}"\n[youtube]\nbase_url = "http://127.0.0.1:9"\n'
                    '[[sources]]\nname = "yt"\nurl = "https://www.youtube.com/feeds/videos.xml?channel_id=UC1"\n'
                    'content = "video"\nsettle = "10m"\nshorts = true\n')
    monkeypatch.setenv("YOUTUBE_API_KEY", "s3cret-key-value")
    assert main(["check", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "yt (rss, video, every 900s, settle 600s, shorts announced)" in out
    assert "via the Data API (YOUTUBE_API_KEY set)" in out and "s3cret-key-value" not in out
    monkeypatch.delenv("YOUTUBE_API_KEY")
    assert main(["check", "--config", str(path)]) == 0
    assert "held until their watch page plays (no YOUTUBE_API_KEY)" in capsys.readouterr().out
