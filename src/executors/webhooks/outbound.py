"""Outbound HTTP for webhooks, guarded: a timeout (one deadline for the whole POST, its
redirects included, however slowly the receiver drips its answer), redirects followed by
hand (at most 3, only to hosts whose addresses are all public, and on the allow-list when
there is one; the connection goes to the address checked, so a second DNS answer cannot
rebind it), and the answer read up to 64 KiB (its first 512 bytes kept for the delivery
log).

The subscription's own URL may point anywhere an administrator chose (an internal
service included), except off the allow-list; redirects are what a receiver controls,
so they are held to public addresses.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from ledger.settings import Settings

MAX_REDIRECTS = 3
MAX_RESPONSE_BYTES = 64 * 1024
HEAD_BYTES = 512
REDIRECTS = frozenset({301, 302, 303, 307, 308})


class GuardRefused(Exception):
    """The request was not sent (or a redirect not followed): the guards refused it."""


@dataclass(frozen=True)
class Answer:
    """What came of one POST: the status (0: no answer), how long it took, the first
    bytes of the body, the error if any, and a Retry-After in seconds."""

    status: int
    latency_ms: float
    head: str
    error: str = ""
    retry_after: str | None = None
    refused: bool = False  # by a guard: not worth retrying


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
        or not ip.is_global
    )


class _DeadlineReads:
    """A socket whose every read waits at most until ``deadline`` (monotonic seconds)."""

    deadline: float | None = None

    def _remaining(self) -> None:
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the receiver did not answer in time")
            self.settimeout(left)  # type: ignore[attr-defined]

    def recv_into(self, *args: Any, **kwargs: Any) -> int:
        self._remaining()
        return super().recv_into(*args, **kwargs)  # type: ignore[misc,no-any-return]

    def recv(self, *args: Any, **kwargs: Any) -> bytes:
        self._remaining()
        return super().recv(*args, **kwargs)  # type: ignore[misc,no-any-return]


class _DeadlineSocket(_DeadlineReads, socket.socket):
    pass


class _DeadlineSSLSocket(_DeadlineReads, ssl.SSLSocket):
    pass


def _connector(address: str | None) -> Callable[..., socket.socket]:
    """``socket.create_connection`` to ``address`` (the host's own when None), returning
    a socket whose reads keep to a deadline."""

    def create(
        host_port: tuple[str, int], timeout: float, source: tuple[str, int] | None = None
    ) -> socket.socket:
        raw = socket.create_connection((address or host_port[0], host_port[1]), timeout, source)
        sock = _DeadlineSocket(fileno=raw.detach())
        sock.settimeout(timeout)
        return sock

    return create


class _GuardedHTTP(http.client.HTTPConnection):
    """Connects to ``address`` when given (checked already), with ``host`` in Host."""

    def __init__(self, host: str, port: int | None, address: str | None, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._create_connection = _connector(address)


class _GuardedHTTPS(http.client.HTTPSConnection):
    """As ``_GuardedHTTP``; TLS names ``host`` (SNI, the certificate's check)."""

    def __init__(
        self,
        host: str,
        port: int | None,
        address: str | None,
        timeout: float,
        context: ssl.SSLContext,
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._create_connection = _connector(address)


def resolve(host: str) -> list[str]:
    """The addresses ``host`` resolves to (itself when it is an address)."""
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as error:
        raise GuardRefused(f"cannot resolve {host!r}: {error}") from None
    return sorted({str(info[4][0]) for info in infos})


class GuardedClient:
    """POSTs with the guards; one per process, thread-safe: each thread keeps its own
    connections alive, by (scheme, host, port). The standard library's http.client: it
    sends twice as many requests per second as httpx from one Python process."""

    def __init__(self, settings: Settings) -> None:
        self.allowed_hosts = {h.lower() for h in settings.webhook_allowed_hosts}
        self.timeout = settings.webhook_timeout_s
        self._local = threading.local()
        self._ssl = ssl.create_default_context()
        self._ssl.sslsocket_class = _DeadlineSSLSocket
        self._opened: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            for connection in self._opened:
                connection.close()
            self._opened.clear()

    def check_host(self, url: str) -> None:
        host = (urlsplit(url).hostname or "").lower()
        if self.allowed_hosts and host not in self.allowed_hosts:
            raise GuardRefused(f"host {host!r} is not in LEDGER_WEBHOOK_ALLOWED_HOSTS")

    def check_redirect(self, url: str) -> str:
        """The address to connect to for redirect ``url``; GuardRefused unless public."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise GuardRefused(f"redirect to {url!r} refused: not an http(s) URL")
        self.check_host(url)
        addresses = resolve(parts.hostname)
        private = [a for a in addresses if not is_public(a)]
        if private:
            raise GuardRefused(
                f"redirect to {url!r} refused: {parts.hostname} resolves to a non-public "
                f"address ({', '.join(private)})"
            )
        return addresses[0]

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        """POST ``body`` to ``url``, following redirects within the guards."""
        started = time.perf_counter()

        def took() -> float:
            return (time.perf_counter() - started) * 1000

        deadline = time.monotonic() + self.timeout
        address: str | None = None  # the subscription's own URL: any address it names
        try:
            self.check_host(url)
            for _ in range(MAX_REDIRECTS + 1):
                status, head, location, retry_after = self._post_once(
                    url, body, headers, address, deadline
                )
                if status not in REDIRECTS or not location:
                    return Answer(status, took(), head, retry_after=retry_after)
                url = urljoin(url, location)
                address = self.check_redirect(url)
            raise GuardRefused(f"more than {MAX_REDIRECTS} redirects")
        except GuardRefused as refused:
            return Answer(0, took(), "", str(refused), refused=True)
        except (OSError, http.client.HTTPException, ValueError) as error:
            return Answer(0, took(), "", f"{type(error).__name__}: {error}"[:500])

    def _post_once(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        address: str | None,
        deadline: float,
    ) -> tuple[int, str, str, str | None]:
        """(status, the body's first bytes, Location, Retry-After) of one POST to
        ``address`` (the host's own when None), done by ``deadline``; a kept-alive
        connection the server closed meanwhile is opened again, once."""
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        for fresh in (False, True):
            connection, reused = self._connection(
                parts.scheme, parts.hostname or "", parts.port, address
            )
            try:
                connection.timeout = max(deadline - time.monotonic(), 0.001)
                connection.request("POST", target, body, headers)
                if isinstance(connection.sock, _DeadlineReads):
                    connection.sock.deadline = deadline
                response = connection.getresponse()
                received = response.read(MAX_RESPONSE_BYTES)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._drop(connection)
                if reused and not fresh:
                    continue
                raise
            except BaseException:
                self._drop(connection)
                raise
            if isinstance(connection.sock, _DeadlineReads):
                connection.sock.deadline = None
            if not response.isclosed():  # more than the cap: the rest is not read
                self._drop(connection)
            head = received[:HEAD_BYTES].decode("utf-8", "replace")
            return (response.status, head, response.getheader("location", "") or "",
                    response.getheader("retry-after"))  # fmt: skip
        raise AssertionError("unreachable")

    def _connection(
        self, scheme: str, host: str, port: int | None, address: str | None
    ) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection to the origin, and whether it was used before."""
        pool: dict[tuple[str, str, int | None, str | None], http.client.HTTPConnection] = (
            getattr(self._local, "pool", None) or {}
        )
        self._local.pool = pool
        key = (scheme, host, port, address)
        if key in pool:
            return pool[key], True
        connection: http.client.HTTPConnection
        if scheme == "https":
            connection = _GuardedHTTPS(host, port, address, self.timeout, self._ssl)
        else:
            connection = _GuardedHTTP(host, port, address, self.timeout)
        pool[key] = connection
        with self._lock:
            self._opened.append(connection)
        return connection, False

    def _drop(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        pool = getattr(self._local, "pool", {})
        for key in [k for k, c in pool.items() if c is connection]:
            del pool[key]
        with self._lock:
            if connection in self._opened:
                self._opened.remove(connection)
