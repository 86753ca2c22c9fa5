"""The fake platforms' control panel: an HTTP API on its own 127.0.0.1 port.

    GET    /_admin/state                 posts per platform, requests, answers by status, faults
    GET    /_admin/faults                every fault with its hits and ends_at
    POST   /_admin/faults                add one (JSON, see tests/chaos/faults.py) -> {"fault": {...}}
    DELETE /_admin/faults[?platform=P]   end them now (a disk fill is freed)
    DELETE /_admin/faults/{id}           end one
    POST   /_admin/settings              {"discord_nonce_window_s": 300} (0 = enforce_nonce ignored)
    POST   /_admin/wait                  long-poll until ALL given conditions hold, or timeout:
                                         {"posts": N, "platform": P, "channel": C,
                                          "fault": ID, "hits": N, "ended": true,
                                          "elapsed": S, "identifies": N,
                                          "gateway_connected": true, "timeout": S}
                                         -> {"reached": bool, "posts": n, "fault": {...}|null}
    GET    /_admin/posts?after_seq=N     the recorded posts (the JSONL ledger holds the same)
    GET    /_admin/messages              every message as it reads NOW (edits applied, in memory):
                                         {"discord": {channel: [{"id", "title", "edited"}]},
                                          "slack": {channel: [{"ts", "text", "edited"}]}}
    (wait also takes {"edited": N}: at least N messages were edited)

Waiting happens here, on the events themselves, so tests never sleep.
``elapsed`` is the one clock condition: "the fault has been on for S
seconds", a point on the fault's own timeline (paced here, like its
``for_s``) at which a scenario schedules more input, e.g. news arriving
late in an outage.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from tests.chaos.discord_fake import ChaosDiscord
from tests.chaos.faults import FaultBook
from tests.chaos.pulse import Pulse
from tests.chaos.recorder import Recorder
from tests.chaos.slack_fake import ChaosSlack

MAX_WAIT_S = 300.0


class Admin:
    def __init__(self, recorder: Recorder, faults: FaultBook, pulse: Pulse,
                 discord: ChaosDiscord, slack: ChaosSlack) -> None:
        self._recorder = recorder
        self._faults = faults
        self._pulse = pulse
        self._discord = discord
        self._slack = slack
        self._runner: web.AppRunner | None = None
        self.port = 0
        app = web.Application()
        app.router.add_get("/_admin/state", self._state)
        app.router.add_get("/_admin/faults", self._list_faults)
        app.router.add_post("/_admin/faults", self._add_fault)
        app.router.add_delete("/_admin/faults", self._clear_faults)
        app.router.add_delete("/_admin/faults/{id}", self._clear_fault)
        app.router.add_post("/_admin/settings", self._settings)
        app.router.add_post("/_admin/wait", self._wait)
        app.router.add_get("/_admin/posts", self._posts)
        app.router.add_get("/_admin/messages", self._messages)
        self._app = app

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def summary(self) -> dict[str, Any]:
        return {
            "posts": {**self._recorder.counts, "total": self._recorder.total},
            "requests": dict(self._faults.requests),
            "answered": {p: {str(k): v for k, v in c.items()} for p, c in self._faults.answered.items()},
            "nonce_window_s": self._discord.nonce_window_s,
            "nonce_dedupes": self._discord.nonce_dedupes,
            "gateway_connections": self._discord.gateway_connections,
            "identifies": self._discord.identifies,
            "socket_connections": self._slack.ws_connections,
        }

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response({**self.summary(), "faults": [f.to_json() for f in self._faults.faults]})

    async def _list_faults(self, request: web.Request) -> web.Response:
        return web.json_response([f.to_json() for f in self._faults.faults])

    async def _add_fault(self, request: web.Request) -> web.Response:
        try:
            fault = self._faults.add(await request.json())
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"fault": fault.to_json()})

    async def _clear_faults(self, request: web.Request) -> web.Response:
        cleared = self._faults.clear(platform=request.query.get("platform"))
        return web.json_response({"cleared": [f.to_json() for f in cleared]})

    async def _clear_fault(self, request: web.Request) -> web.Response:
        fault_id = int(request.match_info["id"])
        if self._faults.get(fault_id) is None:
            return web.json_response({"error": f"no fault {fault_id}"}, status=404)
        cleared = self._faults.clear(fault_id=fault_id)
        return web.json_response({"cleared": [f.to_json() for f in cleared]})

    async def _settings(self, request: web.Request) -> web.Response:
        data = await request.json()
        if "discord_nonce_window_s" in data:
            self._discord.nonce_window_s = float(data["discord_nonce_window_s"])
        return web.json_response(self.summary())

    async def _wait(self, request: web.Request) -> web.Response:
        want = await request.json()
        timeout = min(float(want.get("timeout", 10.0)), MAX_WAIT_S)
        fault = self._faults.get(int(want["fault"])) if want.get("fault") is not None else None
        if want.get("fault") is not None and fault is None:
            return web.json_response({"error": f"no fault {want['fault']}"}, status=404)

        def posts() -> int:
            return self._recorder.posts(want.get("platform"), want.get("channel"))

        def reached() -> bool:
            if want.get("posts") is not None and posts() < int(want["posts"]):
                return False
            if want.get("identifies") is not None and self._discord.identifies < int(want["identifies"]):
                return False
            if want.get("gateway_connected") and not self._discord.connected:
                return False
            if want.get("edited") is not None and self._edited() < int(want["edited"]):
                return False
            if fault is not None:
                if want.get("hits") is not None and fault.hits < int(want["hits"]):
                    return False
                if want.get("ended") and not (fault.ended or (fault.ends_at and fault.ends_at <= time.time())):
                    return False
                if want.get("elapsed") is not None and time.time() - fault.created_at < float(want["elapsed"]):
                    return False
            return True

        if fault is not None and want.get("elapsed") is not None:
            # Nothing else may happen meanwhile: wake the waiter when that point comes.
            due = fault.created_at + float(want["elapsed"]) - time.time()
            timer = asyncio.get_running_loop().call_later(max(0.0, due), self._pulse.fire)
        else:
            timer = None
        started = time.monotonic()
        try:
            await self._pulse.wait_for(reached, timeout)
            ok = True
        except asyncio.TimeoutError:
            ok = False
        finally:
            if timer is not None:
                timer.cancel()
        return web.json_response({
            "reached": ok, "posts": posts(), "waited_s": round(time.monotonic() - started, 3),
            "fault": fault.to_json() if fault is not None else None, "state": self.summary(),
        })

    def _edited(self) -> int:
        return (sum(1 for ms in self._discord.messages.values() for m in ms if m.get("edited_timestamp"))
                + sum(1 for ms in self._slack.history.values() for m in ms if m.get("edited")))

    async def _messages(self, request: web.Request) -> web.Response:
        return web.json_response({
            "discord": {c: [{"id": m["id"], "title": (m.get("embeds") or [{}])[0].get("title"),
                             "edited": bool(m.get("edited_timestamp"))} for m in ms]
                        for c, ms in self._discord.messages.items()},
            "slack": {c: [{"ts": m["ts"], "text": m.get("text"), "edited": bool(m.get("edited"))} for m in ms]
                      for c, ms in self._slack.history.items()},
        })

    async def _posts(self, request: web.Request) -> web.Response:
        after = int(request.query.get("after_seq", 0))
        return web.json_response([
            {"seq": p.seq, "platform": p.platform, "channel": p.channel, "message_id": p.message_id,
             "time": p.time, "answered": p.answered, "body": p.body}
            for p in self._recorder.ledger.posts if p.seq > after
        ])
