"""The outbound guards, against a real receiver: redirects only to public addresses, the
allow-list of hosts, the response size cap; and the retry schedule's arithmetic."""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from executors.webhooks import outbound
from executors.webhooks.outbound import HEAD_BYTES, MAX_RESPONSE_BYTES, GuardedClient, is_public
from executors.webhooks.schedule import (
    MAX_ATTEMPTS,
    outcome_of,
    parse_retry_after,
    retry_delay,
)
from ledger.settings import Settings
from tests.webhooks.receiver import receiving

# The receivers run on loopback: the subscription's own URL may point anywhere the
# administrator chose (no seam needed); only redirects, which the receiver controls, are
# held to public addresses. So these tests see refusals, never a followed redirect.


@pytest.mark.parametrize("target", ["http://127.0.0.1:{port}/", "http://10.1.2.3/",
                                    "http://169.254.169.254/latest", "http://[::1]:{port}/",
                                    "http://localhost:{port}/", "file:///etc/passwd"])  # fmt: skip
def test_a_redirect_to_a_non_public_address_is_refused(target: str) -> None:
    with receiving() as receiver, receiving() as inside:
        receiver.answer(302, location=target.format(port=inside.port))
        client = GuardedClient(Settings())
        answer = client.post(receiver.url, b"{}", {})
        client.close()
    assert answer.refused and answer.status == 0
    assert "redirect to" in answer.error and "refused" in answer.error
    assert len(receiver.requests) == 1 and inside.requests == []


def test_the_allow_list_refuses_other_hosts_and_their_redirects() -> None:
    with receiving() as receiver:
        receiver.answer(200)
        only_example = GuardedClient(Settings(webhook_allowed_hosts=["hooks.example.com"]))
        refused = only_example.post(receiver.url, b"{}", {})
        allowed = GuardedClient(Settings(webhook_allowed_hosts=["127.0.0.1"]))
        sent = allowed.post(receiver.url, b"{}", {})
        receiver.answer(307, location="http://hooks.example.com/")
        redirected = allowed.post(receiver.url, b"{}", {})
        for client in (only_example, allowed):
            client.close()
    assert refused.refused and "not in LEDGER_WEBHOOK_ALLOWED_HOSTS" in refused.error
    assert sent.status == 200 and not sent.refused
    assert redirected.refused and "hooks.example.com" in redirected.error
    assert len(receiver.requests) == 2  # the refused host was never contacted


def test_the_answer_is_read_up_to_the_cap_and_its_head_kept() -> None:
    with receiving() as receiver:
        receiver.answer(200)
        receiver.script.body_size = 10 * MAX_RESPONSE_BYTES
        client = GuardedClient(Settings())
        answer = client.post(receiver.url, b"{}", {})
        client.close()
    assert answer.status == 200 and answer.head == "x" * HEAD_BYTES


def test_public_addresses() -> None:
    assert is_public("93.184.216.34") and is_public("2606:2800:220:1::1")
    for address in ("127.0.0.1", "10.0.0.1", "192.168.1.1", "172.16.0.1", "169.254.1.1",
                    "::1", "fe80::1", "fc00::1", "0.0.0.0", "240.0.0.1", "::ffff:127.0.0.1",
                    "100.64.0.1"):  # fmt: skip
        assert not is_public(address), address


def test_the_schedule_is_event_grids_with_jitter_and_retry_after() -> None:
    rng = random.Random(7)
    expected = [10, 30, 60, 300, 600, 1800, 3600, 10800, 21600, 43200]
    for attempt, base in enumerate(expected, start=1):
        delay = retry_delay(attempt, 0, rng=rng)
        assert delay is not None and 0.8 * base <= delay <= 1.2 * base
    assert MAX_ATTEMPTS == 11 and retry_delay(11, 0) is None
    assert retry_delay(10, 60_000) is None  # even the shortest next try comes after 24 h
    scaled = retry_delay(1, 0, scale=0.01, rng=rng)
    assert scaled is not None and 0.08 <= scaled <= 0.12
    assert retry_delay(1, 0, scale=0.01, retry_after_s=2) == 2  # longer: honoured
    shorter = retry_delay(3, 0, retry_after_s=1, rng=rng)
    assert shorter is not None and shorter >= 48
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    assert 100 < (parse_retry_after(later) or 0) <= 120
    assert parse_retry_after("30") == 30 and parse_retry_after("soon") is None
    assert [outcome_of(s) for s in (200, 204, 400, 401, 403, 413, 410, 500, 408, 429, 0)] == [
        "delivered", "delivered", "dead", "dead", "dead", "dead", "gone",
        "retrying", "retrying", "retrying", "retrying",
    ]  # fmt: skip


def test_a_redirect_connects_to_the_address_checked_not_a_second_dns_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_getaddrinfo = socket.getaddrinfo

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.test":  # the second answer: an address nothing listens on
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(outbound, "resolve", lambda host: ["127.0.0.1"])  # the check's answer
    monkeypatch.setattr(outbound, "is_public", lambda address: address == "127.0.0.1")
    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with receiving() as receiver, receiving() as inside:
        inside.answer(200)
        receiver.answer(307, location=f"http://rebind.test:{inside.port}/moved")
        client = GuardedClient(Settings())
        answer = client.post(receiver.url, b"{}", {})
        client.close()
    assert answer.status == 200, answer.error
    assert [r.headers["host"] for r in inside.requests] == [f"rebind.test:{inside.port}"]


@contextmanager
def dripping(interval_s: float, count: int) -> Iterator[str]:
    """A receiver answering one byte of its headers every ``interval_s`` seconds."""
    server = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve() -> None:
        with contextlib.suppress(OSError):
            connection, _ = server.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 200 OK\r\n")
                for _ in range(count):
                    if done.wait(interval_s):
                        return
                    connection.sendall(b"X")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    finally:
        done.set()
        server.close()
        thread.join(5)


def test_the_timeout_bounds_the_whole_answer_not_each_read() -> None:
    with dripping(0.2, 50) as url:
        client = GuardedClient(Settings(webhook_timeout_s=1.0))
        started = time.monotonic()
        answer = client.post(url, b"{}", {})
        took = time.monotonic() - started
        client.close()
    assert answer.status == 0 and not answer.refused
    assert "TimeoutError" in answer.error or "timed out" in answer.error, answer.error
    assert took < 2.0
