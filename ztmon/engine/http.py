"""HTTP endpoints: /metrics, /findings (JSON report), /healthz, /readyz.

TLS (and mTLS with a client CA) and a bearer token protect /metrics and /findings when configured;
/healthz and /readyz stay open for kubelet probes.
"""

from __future__ import annotations

import hmac
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from ztmon.engine.running import Engine
from ztmon.settings import ServerConfig
from ztmon.sinks import jsonreport
from ztmon.sinks.prometheus import CONTENT_TYPE, PrometheusSink

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_OPEN_PATHS = frozenset({"/healthz", "/readyz"})


class Token:
    """The expected bearer token. A token file is re-read when its mtime or size changes (rotation, e.g. a
    mounted Secret updated by the kubelet) — a stat per request, no restart; an unreadable new file keeps the
    last good token. Read at start so that a missing file fails loudly there."""

    def __init__(self, cfg: ServerConfig) -> None:
        self._file = Path(cfg.auth.bearer_token_file) if cfg.auth.bearer_token_file is not None else None
        inline = cfg.auth.bearer_token
        self._value: bytes | None = inline.get_secret_value().encode() if inline is not None else None
        self._stamp: tuple[int, int] | None = None
        if self._file is not None:
            self._reload(strict=True)

    def _reload(self, *, strict: bool = False) -> None:
        assert self._file is not None  # noqa: S101
        try:
            st = self._file.stat()
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp != self._stamp:
                self._value = self._file.read_text(encoding="utf-8").strip().encode()
                self._stamp = stamp
        except OSError:
            if strict:
                raise

    def get(self) -> bytes | None:
        if self._file is not None:
            self._reload()
        return self._value


def ssl_context(cfg: ServerConfig) -> ssl.SSLContext | None:
    if cfg.tls.cert_file is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cfg.tls.cert_file), str(cfg.tls.key_file) if cfg.tls.key_file else None)
    if cfg.tls.client_ca_file is not None:
        ctx.load_verify_locations(cafile=str(cfg.tls.client_ca_file))
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def make_app(engine: Engine, prom: PrometheusSink, cfg: ServerConfig) -> web.Application:
    token = Token(cfg)

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        expected = token.get()
        if expected is not None and request.path not in _OPEN_PATHS:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), b"Bearer " + expected):
                return web.Response(status=401, text="unauthorized\n", headers={"WWW-Authenticate": "Bearer"})
        return await handler(request)

    async def metrics(request: web.Request) -> web.Response:
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            body = prom.exposition_gzip()
            return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE, "Content-Encoding": "gzip"})
        return web.Response(body=prom.exposition(), headers={"Content-Type": CONTENT_TYPE})

    async def findings(request: web.Request) -> web.Response:
        if engine.report is None:
            return web.json_response({"error": "no scan has completed yet"}, status=503)
        show = request.query.get("suppressed", "1") not in {"0", "false"}
        return web.Response(body=jsonreport.dumps(engine.report, show_suppressed=show), content_type="application/json")

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        if engine.ready:
            return web.Response(text="ready\n")
        return web.Response(status=503, text="not ready: first scan running\n")

    app = web.Application(middlewares=[auth])
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/findings", findings)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def serve(app: web.Application, cfg: ServerConfig) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, cfg.address, cfg.port, ssl_context=ssl_context(cfg), shutdown_timeout=1.0)
    await site.start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The actual port (for port 0 in tests)."""
    for site in runner.sites:
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            return int(server.sockets[0].getsockname()[1])
    raise RuntimeError("server not started")
