"""ASGI middleware: request metrics, the cap on request body size, and loopback only
while auth is off."""

from __future__ import annotations

import ipaddress
import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.datastructures import MutableHeaders
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.api.problems import BodyTooLarge, problem

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.01,
    0.015,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


def _route_label(scope: Scope, as_received: Scope) -> str:
    """The route template that answered (`/models/{name}`); for routes FastAPI does not
    record in the scope (`/openapi.json`, mounted files) the first one matching the request
    as received; `unmatched` when none does (a 404), so that labels stay few."""
    route = scope.get("route")
    if route is None:
        routes = getattr(scope.get("app"), "routes", ())
        route = next((r for r in routes if r.matches(as_received)[0] == Match.FULL), None)
    return str(getattr(route, "path", "unmatched"))


class RequestMetrics:
    """Counts requests and times them, by method, route template and status; tells the
    client the server's time to its response's headers (``Server-Timing: app;dur=<ms>``,
    which browsers' developer tools and the benchmarks read)."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "ledger_http_requests",
            "HTTP requests",
            ("method", "route", "status"),
            registry=registry,
        )
        self.latency = Histogram(
            "ledger_http_request_duration_seconds",
            "Time to the end of the response",
            ("method", "route"),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        as_received = dict(scope)  # a mount rewrites the scope's paths on the way in

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                elapsed_ms = (time.perf_counter() - started) * 1000
                message.setdefault("headers", [])
                MutableHeaders(scope=message).append("Server-Timing", f"app;dur={elapsed_ms:.3f}")
            await send(message)

        try:
            await self.app(scope, receive, send_recording_status)
        finally:
            route = _route_label(scope, as_received)
            method = scope["method"]
            self.requests.labels(method, route, str(status)).inc()
            self.latency.labels(method, route).observe(time.perf_counter() - started)


class BodyLimit:
    """Refuses request bodies over ``max_bytes`` with 413, by header or while reading."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        message = (
            f"the request body is over the limit of {limit:,} bytes (LEDGER_API_MAX_UPLOAD_MB)"
        )
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await problem(413, message)(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            incoming = await receive()
            if incoming["type"] == "http.request":
                received += len(incoming.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(message)
            return incoming

        await self.app(scope, counting_receive, send)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


class LoopbackOnly:
    """With LEDGER_API_AUTH off, answers 403 to any client not on this machine.

    The client address is the one the server reports (behind a proxy on this machine,
    what its X-Forwarded-For says when the server trusts it); unknown counts as remote.
    """

    MESSAGE = (
        "this server runs with LEDGER_API_AUTH off, so it answers only clients on its own "
        "machine (loopback); turn auth on to serve others"
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            if not client or not is_loopback(str(client[0])):
                await problem(403, self.MESSAGE)(scope, receive, send)
                return
        await self.app(scope, receive, send)
