"""Webhook fan-out for benchmarks/bus.py: deliveries/s from `ledger automation` to a local
receiver with 1 and 50 subscriptions, and event -> webhook received latency at a steady
rate. The receiver is a threaded http.server (HTTP/1.1, keep-alive) in this process; the
dispatcher (and on NATS the relay) run as processes of their own."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

from executors.webhooks.dispatcher import consumer_name
from ledger.bus.consumers import consumer_exists
from ledger.domain import EventMeta, Model, acting
from ledger.domain.webhook import webhook_id
from ledger.ledger import Ledger
from ledger.settings import Settings

THROUGHPUT_TARGET = 1_000  # deliveries/s
LATENCY_TARGET_MS = 100.0


class _Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.latencies_ms: list[float] = []
        self.first = self.last = 0.0  # time.perf_counter() of the first and last arrival


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        arrived = time.time()
        sent = datetime.fromisoformat(orjson.loads(body)["time"]).timestamp()
        counter: _Counter = self.server.counter  # type: ignore[attr-defined]
        now = time.perf_counter()
        with counter.lock:
            counter.count += 1
            counter.latencies_ms.append((arrived - sent) * 1000)
            counter.first = counter.first or now
            counter.last = now
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def receiver() -> Iterator[tuple[str, _Counter]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.request_queue_size = 256
    counter = _Counter()
    server.counter = counter  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", counter
    finally:
        server.shutdown()
        server.server_close()


def _env(settings: Settings) -> dict[str, str]:
    names = ["home", "nats_url", "nats_stream", "nats_subject_prefix"]
    if settings.store_location.kind == "postgres":
        names += ["store", "pg_schema"]
    values = {f"LEDGER_{n.upper()}": str(getattr(settings, n)) for n in names}
    return {**os.environ, **values, "LEDGER_LOG_LEVEL": "ERROR"}


@contextmanager
def automation(settings: Settings, names: list[str]) -> Iterator[None]:
    """`ledger automation` (and `ledger relay` on NATS) until the block ends, its webhooks'
    consumers created."""
    ledger_bin = str(Path(sys.executable).parent / "ledger")
    env = _env(settings)
    processes = [subprocess.Popen([ledger_bin, "automation"], env=env,
                                  stderr=subprocess.DEVNULL)]  # fmt: skip
    if settings.nats_url:
        processes.append(subprocess.Popen([ledger_bin, "relay"], env=env,
                                          stderr=subprocess.DEVNULL))  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not all(_consumer_ready(settings, name) for name in names):
            if time.monotonic() > deadline:
                raise TimeoutError("the webhook consumers were not created in 60 s")
            time.sleep(0.2)
        yield
    finally:
        for process in processes:
            process.terminate()
            process.wait(30)


def _consumer_ready(settings: Settings, webhook: str) -> bool:
    return consumer_exists(settings, consumer_name(str(webhook_id(webhook))))


def _subscribe(settings: Settings, url: str, subscriptions: int, tag: str) -> list[str]:
    names = [f"bench-{tag}-{i:02d}" for i in range(subscriptions)]
    with Ledger(settings) as ledger:
        for name in names:
            ledger.webhooks.create(name, url=url, events=["ledger.model.>"])
    return names


def fan_out(settings: Settings, subscriptions: int, events: int) -> tuple[int, float]:
    """(deliveries, deliveries/s): a backlog of ``events`` events (a model and its tags, one
    commit per 200) appended while `ledger automation` is down, each then delivered to
    ``subscriptions`` webhooks; the rate is from the first arrival to the last."""
    with receiver() as (url, counter):
        names = _subscribe(settings, url, subscriptions, f"f{subscriptions}")
        with automation(settings, names):
            pass  # the durable consumers now exist: what is appended next is theirs
        with Ledger(settings) as ledger, acting(EventMeta("bench", "fan-out", "bench")):
            for m in range(0, events, 200):
                model = Model.register(f"fan-{subscriptions}-{m}")
                for i in range(min(200, events - m) - 1):
                    model.set_tag("step", str(i))
                ledger.save(model)
        expected = events * subscriptions
        with automation(settings, names):
            deadline = time.monotonic() + 300
            while counter.count < expected and time.monotonic() < deadline:
                time.sleep(0.01)
        seconds = max(counter.last - counter.first, 1e-9)
    return counter.count, (counter.count - 1) / seconds


def steady_latency(settings: Settings, rate: int, seconds: float) -> list[float]:
    """Tag changes at ``rate``/s, one subscription: ms from each event's time to its
    arrival at the receiver."""
    with receiver() as (url, counter):
        names = _subscribe(settings, url, 1, "latency")
        with automation(settings, names), Ledger(settings) as ledger:
            with acting(EventMeta("bench", "latency", "bench")):
                ledger.save(Model.register("latency-probe"))
            while counter.count == 0:  # warm: connections open, consumer running
                ledger.models.set_tags("latency-probe", {"warm": str(time.time())})
                time.sleep(0.05)
            time.sleep(0.5)
            with counter.lock:
                counter.latencies_ms.clear()
                counter.count = 0
            total = int(rate * seconds)
            start = time.perf_counter()
            for i in range(total):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                ledger.models.set_tags("latency-probe", {"i": str(i)})
            deadline = time.monotonic() + 60
            while counter.count < total and time.monotonic() < deadline:
                time.sleep(0.01)
        return list(counter.latencies_ms)
