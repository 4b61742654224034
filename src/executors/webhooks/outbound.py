"""Outbound HTTP for webhooks, guarded: a timeout (on connecting and on each read),
redirects followed by hand (at most 3, only to hosts whose addresses are all public, and on
the allow-list when there is one), and the answer read up to 64 KiB (its first 512 bytes
kept for the delivery log).

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
from dataclasses import dataclass
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

    def check_redirect(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise GuardRefused(f"redirect to {url!r} refused: not an http(s) URL")
        self.check_host(url)
        private = [a for a in resolve(parts.hostname) if not is_public(a)]
        if private:
            raise GuardRefused(
                f"redirect to {url!r} refused: {parts.hostname} resolves to a non-public "
                f"address ({', '.join(private)})"
            )

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        """POST ``body`` to ``url``, following redirects within the guards."""
        started = time.perf_counter()

        def took() -> float:
            return (time.perf_counter() - started) * 1000

        try:
            self.check_host(url)
            for _ in range(MAX_REDIRECTS + 1):
                status, head, location, retry_after = self._post_once(url, body, headers)
                if status not in REDIRECTS or not location:
                    return Answer(status, took(), head, retry_after=retry_after)
                url = urljoin(url, location)
                self.check_redirect(url)
            raise GuardRefused(f"more than {MAX_REDIRECTS} redirects")
        except GuardRefused as refused:
            return Answer(0, took(), "", str(refused), refused=True)
        except (OSError, http.client.HTTPException, ValueError) as error:
            return Answer(0, took(), "", f"{type(error).__name__}: {error}"[:500])

    def _post_once(
        self, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, str, str, str | None]:
        """(status, the body's first bytes, Location, Retry-After) of one POST; a kept-alive
        connection the server closed meanwhile is opened again, once."""
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        for fresh in (False, True):
            connection, reused = self._connection(parts.scheme, parts.hostname or "", parts.port)
            try:
                connection.request("POST", target, body, headers)
                response = connection.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._drop(connection)
                if reused and not fresh:
                    continue
                raise
            except BaseException:
                self._drop(connection)
                raise
            received = response.read(MAX_RESPONSE_BYTES)
            if not response.isclosed():  # more than the cap: the rest is not read
                self._drop(connection)
            head = received[:HEAD_BYTES].decode("utf-8", "replace")
            return (response.status, head, response.getheader("location", "") or "",
                    response.getheader("retry-after"))  # fmt: skip
        raise AssertionError("unreachable")

    def _connection(
        self, scheme: str, host: str, port: int | None
    ) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection to the origin, and whether it was used before."""
        pool: dict[tuple[str, str, int | None], http.client.HTTPConnection] = (
            getattr(self._local, "pool", None) or {}
        )
        self._local.pool = pool
        key = (scheme, host, port)
        if key in pool:
            return pool[key], True
        connection: http.client.HTTPConnection
        if scheme == "https":
            connection = http.client.HTTPSConnection(
                host, port, timeout=self.timeout, context=self._ssl
            )
        else:
            connection = http.client.HTTPConnection(host, port, timeout=self.timeout)
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
