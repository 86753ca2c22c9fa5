"""Delivery benchmarks: one new episode to 100 Discord and 100 Slack channels,
and the outbox's own cost per delivery.

    .venv/bin/python -m bench.bench_delivery [--rounds N] [--json]

1. **Fan-out.** The fake platforms of tests/chaos run as their own process,
   adding 100 ms to every request and enforcing Discord's global limit of
   50 requests a second with real 429s. The real adapters (discord.py over
   REST, slack_sdk) deliver one event to 200 channels through the real
   outbox on a real SQLite file. The floor is what latency and the limit
   allow: Discord's 100 posts need two 1-second windows (50 + 50) plus one
   latency, 1.1 s; Slack's 100 posts to 100 channels, one latency. The
   target: the last delivery within 1.2x the floor.
2. **Overhead.** 2,000 rows (10 events x 200 channels) to adapters that
   answer at once: what the outbox itself costs per delivery (claims,
   loading, recording). Target <= 0.3 ms.

Medians of ``--rounds`` runs, from one run of this command: quote ratios,
not absolute times (these machines are shared and noisy).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapters.discord import DiscordAdapter  # noqa: E402
from adapters.slack import SlackAdapter  # noqa: E402
from bot.clock import FrozenClock, utc_now  # noqa: E402
from bot.config import DiscordConfig, SlackConfig  # noqa: E402
from bot.models import Platform  # noqa: E402
from bot.outbox import Outbox  # noqa: E402
from bot.shards import ShardLeases, lease_name  # noqa: E402
from bot.storage import SqliteStorage  # noqa: E402
from tests.chaos.platforms_client import Platforms  # noqa: E402
from tests.fake_chat import RecordingAdapter  # noqa: E402
from tests.slack_stub import RecordingHandler  # noqa: E402
from tests.spine import NOW, store_with_events  # noqa: E402

CHANNELS = 100
LATENCY_S = 0.1
GLOBAL_PER_S = 50
FLOOR_S = (CHANNELS // GLOBAL_PER_S - 1) * 1.0 + LATENCY_S  # Discord's; Slack's is one latency


def discord_channel(n: int) -> str:
    return str(1_300_000_000_000_000_000 + n)


async def fan_out_once(work: Path, platforms: Platforms) -> dict[str, float]:
    routes = [(Platform.DISCORD, discord_channel(n)) for n in range(CHANNELS)]
    routes += [(Platform.SLACK, f"C0BENCH{n:04d}") for n in range(CHANNELS)]
    store = await store_with_events(work / "s.db", 1, routes)
    # Another instance holds the gateway shard: this one delivers over REST only.
    now = utc_now()
    await store.claim_lease(lease_name(0), "the-other-instance", now, now + timedelta(hours=1))
    shards = ShardLeases(store, "bench", 1, clock=utc_now, lease_s=3600)
    discord = DiscordAdapter(DiscordConfig(api_base_url=platforms.discord_api_base_url,
                                           gateway_url=platforms.discord_gateway_url),
                             "bench-token", RecordingHandler(), shards=shards)
    slack = SlackAdapter(SlackConfig(mode="socket", api_base_url=platforms.slack_api_base_url),
                         bot_token="xoxb-bench", app_token="xapp-bench", handler=RecordingHandler())
    try:
        await discord.start()
        await slack.start()
        while not (discord.healthy and slack.healthy):
            await asyncio.sleep(0.01)
        # Start-up's own requests (login, command sync) count in Discord's
        # window: let it clear, so what is measured is the fan-out alone.
        await asyncio.sleep(1.2)
        outbox = Outbox(store, {Platform.DISCORD: discord, Platform.SLACK: slack}, clock=utc_now)
        before = await platforms.state()
        stop = asyncio.Event()
        t0 = time.perf_counter()
        running = asyncio.create_task(outbox.run(stop))
        # Until the platforms have every post (their durable ledger), retries included.
        await platforms.wait(posts=before["posts"]["total"] + 2 * CHANNELS, timeout=120)
        elapsed = time.perf_counter() - t0
        stop.set()
        await running
        after = await platforms.state()
        assert await store.count_unsent() == {}, await store.count_unsent()
        return {"elapsed_s": elapsed, "limited": _rate_limited(after) - _rate_limited(before)}
    finally:
        await discord.stop()
        await slack.stop()
        await store.close()


def _rate_limited(state: dict) -> float:
    return float(sum(f.get("hits", 0) for f in state.get("faults", []) if f.get("kind") == "global_limit"))


async def fan_out(rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="showbot-bench-delivery-") as tmp:
        platforms = Platforms(Path(tmp) / "platforms")
        await platforms.start()
        try:
            for platform in ("discord", "slack"):
                await platforms.add_fault(platform=platform, kind="latency", latency_s=LATENCY_S)
            await platforms.add_fault(platform="discord", kind="global_limit", per_s=GLOBAL_PER_S)
            runs = []
            for r in range(rounds):
                work = Path(tmp) / f"run{r}"
                work.mkdir()
                runs.append(await fan_out_once(work, platforms))
        finally:
            await platforms.stop()
    median = statistics.median(r["elapsed_s"] for r in runs)
    return {"fan_out_median_s": median, "fan_out_floor_s": FLOOR_S, "fan_out_ratio": median / FLOOR_S,
            "fan_out_runs_s": [round(r["elapsed_s"], 3) for r in runs],
            "global_429s": sum(r["limited"] for r in runs)}


async def overhead(rounds: int) -> dict[str, float]:
    per_delivery = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="showbot-bench-outbox-") as tmp:
            chans = [(Platform.DISCORD, f"c{i}") for i in range(100)] + [(Platform.SLACK, f"s{i}") for i in range(100)]
            store = await store_with_events(Path(tmp) / "s.db", 10, chans)
            try:
                adapters = {Platform.DISCORD: RecordingAdapter(Platform.DISCORD),
                            Platform.SLACK: RecordingAdapter(Platform.SLACK)}
                outbox = Outbox(store, adapters, clock=FrozenClock(NOW))
                t0 = time.perf_counter()
                report = await outbox.dispatch_once()
                elapsed = time.perf_counter() - t0
                assert report.sent == 2000, report
                per_delivery.append(elapsed / 2000 * 1000)
            finally:
                await store.close()
    return {"overhead_ms_per_delivery": statistics.median(per_delivery),
            "overhead_runs_ms": [round(x, 3) for x in per_delivery]}


async def main(rounds: int, as_json: bool) -> None:
    figures = {**await fan_out(rounds), **await overhead(rounds)}
    if as_json:
        for key, value in figures.items():
            print(json.dumps({"figure": key, "value": value}))
        return
    print(f"one episode to {CHANNELS} Discord + {CHANNELS} Slack channels, {LATENCY_S * 1000:.0f} ms a request, "
          f"Discord limited to {GLOBAL_PER_S}/s (median of {rounds}):")
    print(f"  last delivery after {figures['fan_out_median_s']:.2f} s; floor {FLOOR_S:.2f} s; "
          f"{figures['fan_out_ratio']:.2f}x the floor (target <= 1.2x); "
          f"{figures['global_429s']:.0f} global 429s; runs {figures['fan_out_runs_s']}")
    print(f"outbox overhead: {figures['overhead_ms_per_delivery']:.3f} ms per delivery "
          f"(target <= 0.3 ms); runs {figures['overhead_runs_ms']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="one JSON object per figure")
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.json))
