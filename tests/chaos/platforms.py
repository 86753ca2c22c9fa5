"""The fake chat platforms as their own process, so they outlive SIGKILLs of the bot:

    python -m tests.chaos.platforms --dir DIR [--seed N]

Serves a fake Discord (REST + gateway), a fake Slack (Web API + Socket Mode)
and the admin API (tests/chaos/admin.py), each on its own 127.0.0.1 port.
Once all three listen it writes DIR/ports.json and prints one line
``READY {"discord": ..., "slack": ..., "admin": ..., "pid": ...}`` on stdout.
Every accepted post goes to DIR/posts.jsonl (fsynced before the answer); at
start the file is read back, so a restarted fake still has earlier messages.
SIGTERM / SIGINT stop it cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
from pathlib import Path

from tests.chaos.admin import Admin
from tests.chaos.discord_fake import ChaosDiscord
from tests.chaos.faults import FaultBook
from tests.chaos.ledger import LEDGER_FILE, Ledger
from tests.chaos.pulse import Pulse
from tests.chaos.recorder import Recorder
from tests.chaos.slack_fake import ChaosSlack

PORTS_FILE = "ports.json"


async def serve(directory: Path, seed: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    pulse = Pulse()
    faults = FaultBook(pulse, seed)
    ledger = Ledger(directory / LEDGER_FILE)
    recorder = Recorder(ledger, faults, pulse)
    discord = ChaosDiscord(recorder, faults)
    slack = ChaosSlack(recorder, faults)
    admin = Admin(recorder, faults, pulse, discord, slack)
    try:
        await discord.start()
        await slack.start()
        await admin.start()
        slack_port = int(slack.url.rsplit(":", 1)[1])
        ports = {"discord": discord.port, "slack": slack_port, "admin": admin.port, "pid": os.getpid()}
        tmp = directory / (PORTS_FILE + ".tmp")
        tmp.write_text(json.dumps(ports))
        tmp.replace(directory / PORTS_FILE)  # a reader never sees half a file
        print("READY " + json.dumps(ports), flush=True)
        await stop.wait()
    finally:
        faults.clear()  # frees a disk fill left behind
        faults.close()
        await admin.close()
        await slack.close()
        await discord.close()
        ledger.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.platforms")
    parser.add_argument("--dir", type=Path, required=True, help="where posts.jsonl and ports.json live")
    parser.add_argument("--seed", type=int, default=0, help="seeds the faults' probability rolls")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(serve(args.dir, args.seed))


if __name__ == "__main__":
    main()
