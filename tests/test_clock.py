"""bot.clock: the injected clocks and the one API-time parser the sources share."""

from __future__ import annotations

from datetime import datetime, timezone

from bot.clock import parse_utc

UTC = timezone.utc


def test_api_times_become_aware_utc_and_junk_becomes_none() -> None:
    assert parse_utc("2026-12-01T18:30:00Z") == datetime(2026, 12, 1, 18, 30, tzinfo=UTC)
    assert parse_utc("2026-12-01T20:30:00+02:00") == datetime(2026, 12, 1, 18, 30, tzinfo=UTC)
    assert parse_utc("2026-12-01T18:30:00") == datetime(2026, 12, 1, 18, 30, tzinfo=UTC)  # no zone: UTC
    for junk in (None, "", "soon", 1764613800, ["2026-12-01"]):
        assert parse_utc(junk) is None
