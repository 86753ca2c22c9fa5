"""The test side of the fake platforms: starts, stops and restarts the
``python -m tests.chaos.platforms`` process and talks to its admin API.

    platforms = Platforms(tmp_path / "platforms")
    await platforms.start()
    fault = await platforms.add_fault(platform="discord", kind="status", status=503,
                                      match=DISCORD_MESSAGES, for_s=12)
    await platforms.wait(posts=400, timeout=60)          # long-poll, no sleep
    await platforms.wait(fault=fault["id"], ended=True)
    posts = platforms.posts()                              # the durable ledger
    await platforms.stop()
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp

from tests.chaos.ledger import LEDGER_FILE, Post, read_posts
from tests.chaos.orphans import die_with_parent

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0

# Route-key patterns for faults (see tests/chaos/faults.py).
DISCORD_POSTS = r"^POST /channels/\d+/messages$"
DISCORD_MESSAGES = r"^(GET|POST) /channels/\d+/messages$"  # posts and history lookups
SLACK_POSTS = r"^POST chat\.postMessage$"
SLACK_MESSAGES = r"^\w+ (chat\.postMessage|conversations\.(history|replies))$"
DISCORD_EDITS = r"^PATCH /channels/\d+/messages/\d+$"
SLACK_EDITS = r"^POST chat\.update$"
POSTS = {"discord": DISCORD_POSTS, "slack": SLACK_POSTS}
EDITS = {"discord": DISCORD_EDITS, "slack": SLACK_EDITS}
MESSAGES = {"discord": DISCORD_MESSAGES, "slack": SLACK_MESSAGES}


class PlatformsError(AssertionError):
    """The fake platforms process misbehaved or a wait timed out."""


class Platforms:
    def __init__(self, directory: Path, seed: int = 0) -> None:
        self.directory = directory
        self.seed = seed
        self.ports: dict[str, int] = {}
        self._proc: asyncio.subprocess.Process | None = None
        self._session: aiohttp.ClientSession | None = None
        self._runs = 0

    # --- lifecycle ---

    async def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._runs += 1
        log = (self.directory / f"platforms-{self._runs}.log").open("wb")
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.chaos.platforms", "--dir", str(self.directory),
                "--seed", str(self.seed), cwd=ROOT, env=env,
                stdout=asyncio.subprocess.PIPE, stderr=log, stdin=asyncio.subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        finally:
            log.close()  # the child has its own copy
        assert self._proc.stdout is not None
        try:
            line = await asyncio.wait_for(self._proc.stdout.readline(), START_TIMEOUT_S)
        except asyncio.TimeoutError:
            await self.stop()
            raise PlatformsError(f"fake platforms did not start in {START_TIMEOUT_S}s; see {log.name}")
        if not line.startswith(b"READY "):
            await self.stop()
            raise PlatformsError(f"fake platforms failed to start: {line!r}; see {log.name}")
        self.ports = json.loads(line[len(b"READY "):])
        if self._session is None:
            # Long-polls last as long as they are told to: no client-side total timeout.
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
                except asyncio.TimeoutError:
                    proc.kill()
                    await proc.wait()
            if proc.stdout is not None:
                proc.stdout.feed_eof()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def kill(self) -> None:
        """SIGKILL the fake itself (what it recorded is on disk already)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()

    async def restart(self) -> None:
        """A new process on new ports, restored from the ledger."""
        await self.kill()
        await self.start()

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    # --- where the bot should connect ---

    @property
    def discord_api_base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['discord']}/api/v10"

    @property
    def discord_gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.ports['discord']}/gateway"

    @property
    def slack_api_base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['slack']}/api/"

    # --- admin API ---

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        assert self._session is not None, "platforms not started"
        url = f"http://127.0.0.1:{self.ports['admin']}{path}"
        async with self._session.request(method, url, json=body) as resp:
            data = await resp.json()
            if resp.status != 200:
                raise PlatformsError(f"admin {method} {path} -> {resp.status}: {data}")
            return data

    async def add_fault(self, **fault: Any) -> dict[str, Any]:
        return (await self._call("POST", "/_admin/faults", fault))["fault"]

    async def end_fault(self, fault_id: int) -> dict[str, Any]:
        (fault,) = (await self._call("DELETE", f"/_admin/faults/{fault_id}"))["cleared"] or [None]
        return fault or await self.fault(fault_id)

    async def clear_faults(self, platform: str | None = None) -> list[dict[str, Any]]:
        query = f"?platform={platform}" if platform else ""
        return (await self._call("DELETE", "/_admin/faults" + query))["cleared"]

    async def faults(self) -> list[dict[str, Any]]:
        return await self._call("GET", "/_admin/faults")

    async def fault(self, fault_id: int) -> dict[str, Any]:
        return next(f for f in await self.faults() if f["id"] == fault_id)

    async def settings(self, *, discord_nonce_window_s: float) -> dict[str, Any]:
        return await self._call("POST", "/_admin/settings",
                                {"discord_nonce_window_s": discord_nonce_window_s})

    async def state(self) -> dict[str, Any]:
        return await self._call("GET", "/_admin/state")

    async def wait(self, *, timeout: float = 10.0, **conditions: Any) -> dict[str, Any]:
        """Long-poll until every condition holds (see tests/chaos/admin.py);
        the answer says ``reached`` false on timeout (callers decide)."""
        return await self._call("POST", "/_admin/wait", {**conditions, "timeout": timeout})

    async def messages(self) -> dict[str, Any]:
        """Every message as it reads now, edits applied (see tests/chaos/admin.py)."""
        return await self._call("GET", "/_admin/messages")

    # --- what was posted ---

    def posts(self) -> list[Post]:
        """From the fsynced ledger: readable even if the fake was killed."""
        return read_posts(self.directory / LEDGER_FILE)
