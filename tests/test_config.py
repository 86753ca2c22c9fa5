"""The config contract and `showbot check`: errors name the key and the value, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.config import Secrets, parse_config, parse_duration
from bot.errors import ConfigError
from bot.models import ContentKind, EventKind, Platform

ROOT = Path(__file__).resolve().parents[1]


def test_check_accepts_the_example_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--config", str(ROOT / "config.example.toml")]) == 0
    out = capsys.readouterr().out
    assert "podcast (rss, episode, every 900s): https://anchor.fm/s/1eb6d14/podcast/rss" in out
    assert "youtube" in out and "medium" in out and out.strip().endswith("ok")


@pytest.mark.parametrize(
    ("toml", "key", "value"),
    [
        ('[[sources]]\nname = "p"\nurl = "https://x.com/rss"\nevery = "soon"\n', "sources[0].every", "'soon'"),
        ('[[sources]]\nname = "p"\nurl = "ftp://x.com/rss"\n', "sources[0].url", "'ftp://x.com/rss'"),
        ('[[sources]]\nname = "p"\nurl = "https://x.com"\ncontent = "podcast"\n', "sources[0].content", "'podcast'"),
        ('[[sources]]\nname = "p"\nurl = "https://x.com"\ncolour = 1\n', "sources[0].colour", "unknown key"),
        ('[[routes]]\nplatform = "irc"\nchannel = "x"\nkinds = ["episode"]\n', "routes[0].platform", "'irc'"),
        ('[[routes]]\nplatform = "slack"\nchannel = "C1"\nkinds = ["gossip"]\n', "routes[0].kinds", "'gossip'"),
        ('[network]\nallow_private_addresses = "yes"\n', "network.allow_private_addresses", "'yes'"),
        ('[slack]\nmode = "carrier-pigeon"\n', "slack.mode", "'carrier-pigeon'"),
        ('[[sources]]\nname = "x"\nkind = "x"\nhandle = "not a handle!"\n', "sources[0].handle", "'not a handle!'"),
        ("[storage\npath = 1\n", "broken.toml", "not valid TOML"),
    ],
)
def test_check_names_the_bad_key_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: str, key: str, value: str
) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(toml)
    assert main(["check", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert key in err and value in err


def test_a_missing_config_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_bad_usage_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_duplicate_source_names_are_refused() -> None:
    raw = {"sources": [{"name": "a", "url": "https://x.com/1"}, {"name": "a", "url": "https://x.com/2"}]}
    with pytest.raises(ConfigError, match=r"sources\[1\].name.*duplicate"):
        parse_config(raw)


def test_defaults_and_types() -> None:
    config = parse_config({
        "sources": [{"name": "yt", "url": "https://x.com/feed", "content": "video", "every": "1h"}],
        "routes": [{"platform": "discord", "channel": 123456789012345678, "kinds": ["video", "book"]}],
    })
    (source,) = config.sources
    assert (source.content, source.every_s, source.max_age_s) == (ContentKind.VIDEO, 3600, 7 * 86400)
    (route,) = config.routes
    assert route.platform is Platform.DISCORD and route.channel == "123456789012345678"
    assert route.kinds == {EventKind.VIDEO, EventKind.BOOK}
    assert config.allow_private_addresses is False


def test_durations() -> None:
    assert [parse_duration(v, "k") for v in ("30s", "15m", "6h", "1d", "2w", 90)] == [30, 900, 21600, 86400, 1209600, 90]
    for bad in ("0m", "-5m", "fast", True, 1.5):
        with pytest.raises(ConfigError):
            parse_duration(bad, "k")


def test_secrets_come_from_the_environment_and_never_show_in_repr() -> None:
    secrets = Secrets.from_env({"DISCORD_TOKEN": "abc.def", "SLACK_BOT_TOKEN": "  "})
    assert secrets.discord_token == "abc.def" and secrets.slack_bot_token is None
    assert "abc.def" not in repr(secrets)


def test_http_section_and_its_environment_overrides(tmp_path: Path) -> None:
    from bot.config import HttpConfig, load_config, parse_config

    assert parse_config({}).http == HttpConfig(port=None, bind="127.0.0.1")
    assert parse_config({"http": {"port": 8080}}).http.enabled
    with pytest.raises(ConfigError, match="http.port"):
        parse_config({"http": {"port": 70000}})
    path = tmp_path / "c.toml"
    path.write_text("[http]\nbind = \"127.0.0.1\"\n")
    assert load_config(path, env={}).http == HttpConfig(None, "127.0.0.1")
    docker = {"SHOWBOT_HTTP_PORT": "8080", "SHOWBOT_HTTP_BIND": "0.0.0.0"}
    assert load_config(path, env=docker).http == HttpConfig(8080, "0.0.0.0")
    with pytest.raises(ConfigError, match="SHOWBOT_HTTP_PORT"):
        load_config(path, env={"SHOWBOT_HTTP_PORT": "eighty"})


def test_merge_section_defaults_and_bad_values() -> None:
    from bot.config import MergeConfig, parse_config
    from bot.errors import ConfigError

    assert parse_config({}).merge == MergeConfig(enabled=True, window_s=48 * 3600, show_names=())
    merge = parse_config({"merge": {"enabled": False, "window": "12h", "show_names": ["The Show"]}}).merge
    assert (merge.enabled, merge.window_s, merge.show_names, merge.edit_window_s) == (False, 43200, ("The Show",), 0)
    for bad, key in (({"window": "0s"}, "merge.window"), ({"enabled": "yes"}, "merge.enabled"),
                     ({"windw": "1h"}, "merge.windw"), ({"show_names": "x"}, "merge.show_names")):
        with pytest.raises(ConfigError) as err:
            parse_config({"merge": bad})
        assert err.value.key == key
