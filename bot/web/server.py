"""The operators' HTTP server: one aiohttp app in the bot's own process.

    GET  /healthz   200 while the process (its event loop) answers
    GET  /readyz    200, or 503 with JSON naming what is not ready: the
                    store (a real write), the scheduler, each chat adapter
    GET  /metrics   Prometheus text format (bot.metrics)
    GET  /          the moderators' status page (?why=..., ?search=...)
    GET  /login, POST /login, POST /logout

Off unless ``[http] port`` is set; bound to ``[http] bind``. The probes and
/metrics answer without a login (what scrapes them runs beside the bot);
the page follows ``bot.web.auth``. Adapters may mount their own routes
before it starts (``mount``): Slack's HTTP mode answers Slack here then.

Everything the handlers need comes in through ``WebDeps``, built by the
composition root; the page is read-only, and its why and search boxes go
through the same ``Commands`` the chat platforms use.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.clock import Clock
from bot.errors import StorageError
from bot.metrics import Metrics
from bot.models import Caller, Platform, Reply
from bot.storage import Storage
from bot.web import page, status
from bot.web.auth import SESSION_COOKIE, SESSION_S, Access, Mode

log = logging.getLogger("showbot.web")

READY_WRITE_TIMEOUT_S = 5.0
WEB_CALLER = Caller(Platform.CONSOLE, "web", "web", is_moderator=True, display_name="status page")
MAX_QUERY = 500

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Ask = Callable[..., Awaitable[Reply]]  # Commands.__call__(text, caller, via=...)


@dataclass(slots=True)
class WebDeps:
    store: Storage
    clock: Clock
    commands: Ask
    metrics: Metrics
    adapters: Callable[[], Mapping[str, bool]]  # platform -> connected
    scheduler_running: Callable[[], bool]
    store_writable: Callable[[], bool]  # what the long-running loops last saw (StorageFaults)
    web_token: str | None = None


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    if response.content_type == "text/html":
        # No script, no framing, nothing loaded from elsewhere; inline CSS and SVG only.
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
    return response


class WebServer:
    def __init__(self, deps: WebDeps, *, port: int, bind: str = "127.0.0.1") -> None:
        self._deps = deps
        self._port = port
        self.bind = bind
        self.access = Access(deps.web_token, bind, clock=deps.clock)
        self._mounts: list[tuple[str, str, Handler]] = []
        self._runner: web.AppRunner | None = None
        self.serving = asyncio.Event()  # set while listening (adapters sharing the server wait on it)
        self.port: int | None = None  # the bound port once started (``port = 0``: any free one)

    # -- lifecycle ---------------------------------------------------------------

    def mount(self, method: str, path: str, handler: Handler) -> None:
        """Serve an adapter's route too (before ``start``)."""
        if self._runner is not None:
            raise RuntimeError("mount routes before the server starts")
        self._mounts.append((method, path, handler))

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_headers], client_max_size=64 * 1024)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/", self._page)
        app.router.add_get("/login", self._login_form)
        app.router.add_post("/login", self._login)
        app.router.add_post("/logout", self._logout)
        for method, path, handler in self._mounts:
            app.router.add_route(method, path, handler)
        return app

    async def start(self) -> None:
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.bind, self._port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1] if runner.addresses else self._port
        self.serving.set()
        if self.access.mode is Mode.REFUSED:
            log.warning("the status page is refused: [http] bind %s is not a loopback address and "
                        "SHOWBOT_WEB_TOKEN is not set (/healthz, /readyz and /metrics still answer)", self.bind)
        log.info("http server listening on %s:%s", self.bind, self.port)

    async def stop(self) -> None:
        self.serving.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- probes --------------------------------------------------------------------

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readiness(self) -> dict[str, Any]:
        """Every check, each with ``ok`` (and why not): what /readyz answers."""
        deps = self._deps
        checks: dict[str, dict[str, Any]] = {}
        try:
            await asyncio.wait_for(deps.store.check_writable(deps.clock()), READY_WRITE_TIMEOUT_S)
            checks["store"] = {"ok": True}
        except (StorageError, asyncio.TimeoutError) as exc:
            checks["store"] = {"ok": False, "error": str(exc) or "the test write timed out"}
        checks["scheduler"] = {"ok": deps.scheduler_running()}
        for platform, up in sorted(deps.adapters().items()):
            checks[f"adapter:{platform}"] = {"ok": bool(up)} | ({} if up else {"error": "not connected"})
        not_ready = [name for name, check in checks.items() if not check["ok"]]
        return {"ready": not not_ready, "not_ready": not_ready, "checks": checks}

    async def _readyz(self, request: web.Request) -> web.Response:
        body = await self.readiness()
        return web.json_response(body, status=200 if body["ready"] else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        deps = self._deps
        if deps.metrics.enabled:
            adapters = deps.adapters()
            depth = dict.fromkeys(adapters, 0)  # an empty queue reads 0, not "no such series"
            try:
                depth |= {p.value: n for p, n in (await deps.store.count_unsent()).items()}
            except StorageError:
                pass
            deps.metrics.set_state(outbox_depth=depth, adapters=adapters,
                                   store_writable=deps.store_writable())
        body, content_type = deps.metrics.render()
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    # -- the page --------------------------------------------------------------------

    def _refused(self) -> web.Response:
        text = (f"The status page is off: this server listens on {self.bind}, which other machines can "
                "reach, and SHOWBOT_WEB_TOKEN is not set. Set the token (or bind to 127.0.0.1).")
        return web.Response(text=page.login_page(refused=text), content_type="text/html", status=403)

    def _signed_in(self, request: web.Request) -> bool:
        return self.access.session_ok(request.cookies.get(SESSION_COOKIE))

    async def _page(self, request: web.Request) -> web.StreamResponse:
        if self.access.mode is Mode.REFUSED:
            return self._refused()
        if not self._signed_in(request):
            return _redirect("/login")
        deps = self._deps
        why_q = request.query.get("why", "").strip()[:MAX_QUERY]
        search_q = request.query.get("search", "").strip()[:MAX_QUERY]
        why = await deps.commands(f"why {why_q}", WEB_CALLER, via="web") if why_q else None
        search = await deps.commands(f"search {search_q}", WEB_CALLER, via="web") if search_q else None
        data = await status.gather(deps.store, deps.clock(), deps.adapters())
        html = page.status_page(data, why_q=why_q, why=why, search_q=search_q, search=search,
                                logout=self.access.mode is Mode.TOKEN)
        return web.Response(text=html, content_type="text/html")

    async def _login_form(self, request: web.Request) -> web.StreamResponse:
        if self.access.mode is Mode.REFUSED:
            return self._refused()
        if self.access.mode is Mode.OPEN or self._signed_in(request):
            return _redirect("/")
        return web.Response(text=page.login_page(), content_type="text/html")

    async def _login(self, request: web.Request) -> web.StreamResponse:
        if self.access.mode is not Mode.TOKEN:
            return self._refused() if self.access.mode is Mode.REFUSED else _redirect("/")
        if not self.access.login_allowed():
            return web.Response(text=page.login_page("Too many wrong tokens; wait a minute."),
                                content_type="text/html", status=429)
        form = await request.post()
        token = form.get("token")
        if not isinstance(token, str) or not self.access.check_token(token):
            log.warning("status page: a wrong token was given")  # never the token itself
            return web.Response(text=page.login_page("That token is not right."), content_type="text/html",
                                status=401)
        response = _redirect("/")
        response.set_cookie(SESSION_COOKIE, self.access.new_session(), max_age=SESSION_S, httponly=True,
                            samesite="Strict", secure=request.secure, path="/")
        return response

    async def _logout(self, request: web.Request) -> web.StreamResponse:
        response = _redirect("/login")
        response.del_cookie(SESSION_COOKIE, path="/")
        return response


def _redirect(location: str) -> web.Response:
    """303 See Other: after a form, the browser GETs ``location``."""
    return web.Response(status=303, headers={"Location": location})

