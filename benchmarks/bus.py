"""Event bus benchmark: relay throughput and append-to-handler latency, on NATS and in process.

For each store (SQLite, PostgreSQL), with a JetStream stream of its own on the NATS
server at --nats-url:

- relay: --events events already in the log; a relay starts cold and publishes them
  all (events/s until JetStream acknowledged the last one);
- drain: a durable consumer with an exactly-once handler (its handled-events record
  and nothing else) takes all of them from the stream (events/s);
- latency: commands (tag changes) at --rate per second for --seconds; `ledger relay` runs
  in one process and a durable consumer in another. Latency = handler start - event
  timestamp (taken as the command builds the event, before the append commits). The
  in-process bus (no NATS: the consumer follows the log) is measured the same way.
- webhooks: `ledger automation` delivering to a local receiver, on the embedded default
  (SQLite, in-process bus) and on PostgreSQL with NATS: deliveries/s with 1 and 50
  subscriptions, and event -> webhook received at --webhook-rate events/s.

    .venv/bin/python benchmarks/bus.py                  # 20,000 events, 200 commands/s for 15 s
    .venv/bin/python benchmarks/bus.py --events 5000 --seconds 5     # quicker
    .venv/bin/python benchmarks/bus.py --webhooks-only --quick       # webhook fan-out alone
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

import nats
from rich.table import Table

# benchmarks/projections.py shadows the `projections` package: look in this directory last.
sys.path.append(sys.path.pop(0))

from _common import (
    DEFAULT_NATS_URL,
    DEFAULT_PG_URL,
    Report,
    add_json_option,
    bench_console,
    percentile,
    scratch_schema,
    unique_name,
)
from _webhooks import LATENCY_TARGET_MS as WEBHOOK_LATENCY_TARGET_MS
from _webhooks import THROUGHPUT_TARGET as WEBHOOK_TARGET
from _webhooks import fan_out, steady_latency
from ledger.bus import Delivery, open_bus
from ledger.bus.relay import Relay
from ledger.domain import EventMeta, Model, acting
from ledger.ledger import Ledger
from ledger.settings import Settings

RELAY_TARGET = 5_000  # events/s
LATENCY_TARGET_MS = 50.0
console = bench_console()


@contextmanager
def bench_store(kind: str, pg_url: str, nats_url: str) -> Iterator[Settings]:
    home = Path(tempfile.mkdtemp())
    suffix = unique_name("bench")[6:]
    bus = {
        "nats_url": nats_url,
        "nats_stream": f"BENCH_{suffix}",
        "nats_subject_prefix": f"bench_{suffix}",
        "log_level": "ERROR",
    }
    try:
        if kind == "postgres":
            with scratch_schema(pg_url, f"bench_bus_{suffix}", create=False) as schema:
                yield Settings(store=pg_url, pg_schema=schema, home=home, **bus)
        else:
            yield Settings(home=home, **bus)
    finally:
        asyncio.run(_delete_stream(nats_url, bus["nats_stream"]))
        shutil.rmtree(home, ignore_errors=True)


async def _delete_stream(url: str, stream: str) -> None:
    client = await nats.connect(url)
    try:
        await _delete_stream_quietly(client.jetstream(), stream)
    finally:
        await client.close()


def fill(settings: Settings, events: int) -> None:
    """``events`` events: models registered, then tagged, 200 events per model."""
    with Ledger(settings) as ledger, acting(EventMeta("bench", "fill", "bench")):
        for m in range(events // 200):
            model = Model.register(f"model-{m:05d}")
            for i in range(199):
                model.set_tag("step", str(i))
            ledger.save(model)


# -- relay and drain throughput -----------------------------------------------------------


async def relay_throughput(settings: Settings, events: int) -> float:
    relay = Relay(settings)
    stop = asyncio.Event()
    start = time.perf_counter()
    task = asyncio.create_task(relay.run(stop))
    while relay.status.position < events:
        await asyncio.sleep(0.001)
    seconds = time.perf_counter() - start
    stop.set()
    await task
    return events / seconds


async def publish_ceiling(settings: Settings, events: int) -> float:
    """JetStream's own rate from Python: ``events`` messages the size of the relay's,
    published with ``publish_async`` a thousand in flight at a time, into a stream of
    their own. The relay's ceiling: the same publishes without reading the log."""
    client = await nats.connect(settings.nats_url)
    js = client.jetstream()
    stream, subject = f"{settings.nats_stream}_RAW", f"{settings.nats_subject_prefix}_raw"
    try:
        info = await js.stream_info(settings.nats_stream)  # what the relay published
        payload = b"x" * (info.state.bytes // max(info.state.messages, 1))
        await js.add_stream(name=stream, subjects=[f"{subject}.>"])
        start = time.perf_counter()
        for first in range(0, events, 1_000):
            acks = [
                await js.publish_async(f"{subject}.event", payload, stream=stream)
                for _ in range(first, min(first + 1_000, events))
            ]
            await asyncio.gather(*acks)
        return events / (time.perf_counter() - start)
    finally:
        await _delete_stream_quietly(js, stream)
        await client.close()


async def _delete_stream_quietly(js: Any, stream: str) -> None:
    with suppress(nats.js.errors.NotFoundError):
        await js.delete_stream(stream)


async def drain_throughput(settings: Settings, events: int) -> float:
    handled = 0

    def count(delivery: Delivery) -> None:
        nonlocal handled
        handled += 1

    bus = open_bus(settings)
    bus.subscribe("drain", count)
    stop = asyncio.Event()
    start = time.perf_counter()
    task = asyncio.create_task(bus.run(stop))
    while handled < events:
        await asyncio.sleep(0.001)
    seconds = time.perf_counter() - start
    stop.set()
    await task
    return events / seconds


# -- append-to-handler latency ---------------------------------------------------------------


def consumer_process(settings_json: str, results: Any, stop_flag: Any) -> None:
    """A durable consumer recording (position, ms from event time to handler start); it
    reports the last position it handled as it goes, and everything when stopped."""
    settings = Settings.model_validate_json(settings_json)
    seen: list[tuple[int, float]] = []

    def measure(delivery: Delivery) -> None:
        sent = datetime.fromisoformat(delivery.event.time).timestamp()
        seen.append((delivery.event.position, (time.time() - sent) * 1000))

    async def run() -> None:
        bus = open_bus(settings)
        bus.subscribe("latency", measure, start="new")
        stop = asyncio.Event()
        task = asyncio.create_task(bus.run(stop))
        while not stop_flag.is_set():
            await asyncio.sleep(0.05)
            results.put(("reached", seen[-1][0] if seen else 0))
        stop.set()
        await task

    asyncio.run(run())
    results.put(("done", seen))


def latency(settings: Settings, rate: int, seconds: float) -> list[float]:
    """Commands at ``rate``/s; the consumer's latencies (ms) of the events they appended."""
    spawn = multiprocessing.get_context("spawn")
    results = spawn.Queue()
    stop_flag = spawn.Event()
    relay = None
    if settings.nats_url:
        env = {**os.environ, **{f"LEDGER_{k.upper()}": str(v) for k, v in _env(settings).items()}}
        ledger_bin = Path(sys.executable).parent / "ledger"
        relay = subprocess.Popen([ledger_bin, "relay"], env=env, stderr=subprocess.DEVNULL)
    consumer = spawn.Process(
        target=consumer_process, args=(settings.model_dump_json(), results, stop_flag)
    )
    consumer.start()
    try:
        with Ledger(settings) as ledger:
            probe = f"probe-{time.time_ns()}"
            with acting(EventMeta("bench", "latency", "bench")):
                ledger.save(Model.register(probe))
            # Until the consumer handles events: its consumer exists, its connections are warm.
            warm_up = 0
            while _reached(results, 0.05) == 0:
                warm_up += 1
                ledger.models.set_tags(probe, {"warm-up": str(warm_up)})
            first = ledger.event_count() + 1
            start = time.perf_counter()
            for i in range(int(rate * seconds)):
                delay = start + i / rate - time.perf_counter()  # a fixed schedule
                if delay > 0:
                    time.sleep(delay)
                ledger.models.set_tags(probe, {"i": str(i)})
            last = ledger.event_count()
        deadline = time.monotonic() + 60
        while _reached(results, 0.5) < last and time.monotonic() < deadline:
            pass
    finally:
        stop_flag.set()
        seen = _collected(results)
        consumer.join(30)
        if relay is not None:
            relay.terminate()
            relay.wait(10)
    return [ms for position, ms in seen if position >= first]


def _reached(results: Any, timeout: float) -> int:
    """The last position the consumer reported having handled (0: none yet)."""
    reached = 0
    try:
        while True:
            kind, value = results.get(timeout=timeout)
            if kind == "reached":
                reached = max(reached, value)
            timeout = 0.001
    except queue.Empty:
        return reached


def _collected(results: Any) -> list[tuple[int, float]]:
    while True:
        kind, value = results.get(timeout=60)
        if kind == "done":
            return list(value)


def _env(settings: Settings) -> dict[str, Any]:
    names = ["home", "nats_url", "nats_stream", "nats_subject_prefix", "log_level"]
    if settings.store_location.kind == "postgres":
        names += ["store", "pg_schema"]
    return {name: getattr(settings, name) for name in names}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="for the throughput runs")
    parser.add_argument("--rate", type=int, default=200, help="commands/s for the latency run")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, metavar="URL")
    parser.add_argument("--nats-url", default=DEFAULT_NATS_URL, metavar="URL")
    parser.add_argument("--quick", action="store_true", help="5,000 events, 5 s latency runs")
    parser.add_argument("--webhook-events", type=int, default=5_000, help="fan-out to 1 webhook")
    parser.add_argument("--webhook-rate", type=int, default=100, help="events/s, latency run")
    parser.add_argument("--webhooks-only", action="store_true", help="only the webhook rows")
    add_json_option(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.seconds, args.webhook_events = 5_000, 5.0, 2_000

    report = Report("Event bus: relay, consumers, append → handler latency", console=console)
    table = Table("store", "bus", "measure", "events", "events/s", "p50 ms", "p99 ms",
                  "max ms", "target", title="Event bus")  # fmt: skip
    for kind in args.stores.split(",") if not args.webhooks_only else []:
        with bench_store(kind, args.pg_url, args.nats_url) as settings:
            console.print(f"[dim]{kind}: filling {args.events:,} events[/]")
            fill(settings, args.events)
            rate = asyncio.run(relay_throughput(settings, args.events))
            ok = "ok" if rate >= RELAY_TARGET else "MISSED"
            table.add_row(kind, "NATS", "relay: publish a backlog", f"{args.events:,}",
                          f"{rate:,.0f}", "", "", "", f"{ok} (>= {RELAY_TARGET:,}/s)")  # fmt: skip
            rate = asyncio.run(publish_ceiling(settings, args.events))
            table.add_row(kind, "NATS", "ceiling: publish_async alone, same sizes",
                          f"{args.events:,}", f"{rate:,.0f}", "", "", "", "")  # fmt: skip
            rate = asyncio.run(drain_throughput(settings, args.events))
            table.add_row(kind, "NATS", "consumer: drain, exactly once", f"{args.events:,}",
                          f"{rate:,.0f}", "", "", "", "")  # fmt: skip
            for bus_name, bus_settings in (
                ("NATS", settings),
                ("in process", settings.model_copy(update={"nats_url": ""})),
            ):
                console.print(f"[dim]{kind}: latency through the {bus_name} bus[/]")
                latencies = latency(bus_settings, args.rate, args.seconds)
                p99 = percentile(latencies, 99) or 0.0
                ok = "ok" if p99 <= LATENCY_TARGET_MS else "MISSED"
                table.add_row(
                    kind, bus_name, f"append -> handler at {args.rate}/s", f"{len(latencies):,}",
                    "", f"{percentile(latencies, 50):.1f}", f"{p99:.1f}",
                    f"{max(latencies):.1f}", f"{ok} (p99 <= {LATENCY_TARGET_MS:g} ms)",
                )  # fmt: skip
    webhook_rows(table, args)
    report.fact(
        f"relay and drain over {args.events:,} events already in the log; latency: tag changes "
        f"at {args.rate}/s for {args.seconds:g} s, `ledger relay` and the consumer in processes "
        "of their own, from the event's timestamp to the handler's start"
    )
    report.show(table)
    pg_url = args.pg_url if "postgres" in args.stores else None
    report.conclude(LIMITS, args, pg_url)
    return 0


def webhook_rows(table: Table, args: argparse.Namespace) -> None:
    """Webhook fan-out: the embedded default (SQLite, in process), PostgreSQL on NATS."""
    setups = [("sqlite", "in process"), ("postgres", "NATS")]
    for kind, bus_name in [setup for setup in setups if setup[0] in args.stores]:
        runs = [(1, args.webhook_events), (50, max(args.webhook_events // 25, 40))]
        for subscriptions, events in runs:
            with bench_store(kind, args.pg_url, args.nats_url) as settings:
                if bus_name == "in process":
                    settings = settings.model_copy(update={"nats_url": ""})
                console.print(f"[dim]{kind}: webhooks, {subscriptions} subscription(s)[/]")
                delivered, rate = fan_out(settings, subscriptions, events)
                ok = "ok" if rate >= WEBHOOK_TARGET else "MISSED"
                table.add_row(kind, bus_name, f"webhooks: fan-out to {subscriptions}",
                              f"{delivered:,}", f"{rate:,.0f}", "", "", "",
                              f"{ok} (>= {WEBHOOK_TARGET:,}/s)")  # fmt: skip
        with bench_store(kind, args.pg_url, args.nats_url) as settings:
            if bus_name == "in process":
                settings = settings.model_copy(update={"nats_url": ""})
            latencies = steady_latency(settings, args.webhook_rate, args.seconds)
        p99 = percentile(latencies, 99) or 0.0
        ok = "ok" if p99 <= WEBHOOK_LATENCY_TARGET_MS else "MISSED"
        table.add_row(
            kind, bus_name, f"event -> webhook received at {args.webhook_rate}/s",
            f"{len(latencies):,}", "", f"{percentile(latencies, 50):.1f}", f"{p99:.1f}",
            f"{max(latencies, default=0):.1f}", f"{ok} (p99 <= {WEBHOOK_LATENCY_TARGET_MS:g} ms)",
        )  # fmt: skip


LIMITS = [
    "relay: it pipelines up to a thousand publishes and waits for JetStream's "
    "acknowledgements together, with a deduplication id and the expected last id on each "
    "(so the stream never holds a gap or a duplicate); the ceiling row is nats-py publishing "
    "messages of the same size with nothing else to do, so the gap between the two is "
    "reading the log and building each message in Python, and the server's checks.",
    "drain: a consumer commits once per fetched batch (each handler in a savepoint, with "
    "its handled-events record); on PostgreSQL that record is a round trip per event.",
    "append → handler on SQLite: the relay and the in-process consumer poll the log every "
    "10 ms, which is most of the latency; on PostgreSQL they wake on NOTIFY.",
    "webhooks: each subscription is a durable consumer; a fetched batch's POSTs go out "
    "together (32 at a time over kept-alive connections) before its transaction, which then "
    "records each final outcome exactly once; the receiver is a Python http.server in the "
    "benchmark's process, so part of the ceiling is the receiver's.",
]


if __name__ == "__main__":
    raise SystemExit(main())
