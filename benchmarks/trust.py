"""Trust benchmark: signed checkpoints and Merkle proofs over the log, and the register rate.

For each event count (10k and 1M; ``--quick``: 2k and 20k) on SQLite and PostgreSQL, a
fresh store is filled (one untouched model version "probe:1" first, then tag churn saved
2,000 events at a time), then measured, one after the other in this process:

- checkpoint, first: the Merkle root of the whole log streamed from the events and signed
  (Ed25519); this is also what a verifier's today's-root costs;
- checkpoint, next: after 1,000 more events, continuing from the block hashes (one per 256
  events) the first one kept;
- verify: `ledger verify --checkpoints` work (today's tree from every event, the
  consistency proofs of both checkpoints, their signatures);
- prove: `ledger prove model:probe:1` work (the tree of the checkpoint's size from the kept
  block hashes, re-reading the blocks on the audit path), the proof's size as JSON, and the
  time scripts/verify_proof.py takes to check it offline.

Then the register rate of ``Ledger.models.register_version`` on each store, with command ids
(every save also records its command id) beside the ledger without them (today's rate
before command ids): three alternating runs of each, the best of each reported.

    .venv/bin/python benchmarks/trust.py                  # 10k and 1M events
    .venv/bin/python benchmarks/trust.py --quick          # 2k and 20k events
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from rich.progress import Progress
from rich.table import Table

# benchmarks/projections.py shadows the `projections` package: look in this directory last.
sys.path.append(sys.path.pop(0))

from _common import (
    DEFAULT_PG_URL,
    Report,
    add_json_option,
    bench_console,
    scratch_schema,
    timed_ops,
    unique_name,
)
from ledger.checkpoint_service import checkpoint_now
from ledger.checkpoints import generate_key, stored_checkpoints
from ledger.domain import EventMeta, acting
from ledger.domain.model import model_version_id
from ledger.ledger import Ledger
from ledger.proofs import check_checkpoints, prove_entity
from ledger.settings import Settings
from ledger.storage.database import LedgerDatabase

console = bench_console()
HERE = Path(__file__).resolve().parent
CHUNK = 2_000
VERSIONS = 20


def standalone_verifier() -> ModuleType:
    """scripts/verify_proof.py, loaded as the module an auditor would run."""
    spec = importlib.util.spec_from_file_location(
        "verify_proof", HERE.parent / "scripts" / "verify_proof.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def store(kind: str, pg_url: str, key: Path) -> Iterator[Settings]:
    home = Path(tempfile.mkdtemp())
    if kind == "postgres":
        with scratch_schema(pg_url, unique_name("bench_trust"), create=False) as schema:
            yield Settings(store=pg_url, pg_schema=schema, home=home, checkpoint_key=key)
    else:
        yield Settings(home=home, checkpoint_key=key)


def fill(ledger: Ledger, events: int, model_dir: Path, progress: Progress) -> None:
    """The probe version, then tags on a few versions, ``CHUNK`` events per save."""
    task = progress.add_task(f"filling {events:,} events", total=events)
    ledger.models.register_version("probe", model_dir)
    for _ in range(VERSIONS):
        ledger.models.register_version("churn", model_dir)
    add_events(ledger, events - ledger.event_count())
    progress.update(task, completed=ledger.event_count())


def add_events(ledger: Ledger, count: int) -> None:
    versions = [ledger.repository.get(model_version_id("churn", v + 1)) for v in range(VERSIONS)]
    meta = EventMeta(actor="bench", reason="churn", correlation_id="bench")
    done = 0
    while done < count:
        step = min(CHUNK, count - done)
        with acting(meta):
            for i in range(step):
                version = versions[(done + i) % VERSIONS]
                version.trigger_event(version.Tagged, key=f"k{i % 7}", value=str(done + i))
        ledger.save(*versions)
        done += step


def seconds(action: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


def measure(settings: Settings, public: Any, verifier: ModuleType) -> dict[str, Any]:
    """Every figure of one store and size (the store is already filled)."""
    first, first_s = seconds(lambda: checkpoint_now(settings)[0])
    with Ledger(settings) as ledger:
        add_events(ledger, 1_000)
    second, next_s = seconds(lambda: checkpoint_now(settings)[0])
    db = LedgerDatabase(settings)
    try:
        (_, checks), verify_s = seconds(lambda: check_checkpoints(db, [first, second], public))
        assert all(check.ok for check in checks), checks
        latest = stored_checkpoints(db, 1)[0]
        proof, prove_s = seconds(lambda: prove_entity(db, "model:probe:1", latest))
    finally:
        db.close()
    text = json.dumps(proof)
    runs = 200
    start = time.perf_counter()
    for _ in range(runs):
        assert not verifier.check(json.loads(text), public)
    check_ms = (time.perf_counter() - start) / runs * 1000
    return {
        "events": second.tree_size,
        "first_s": first_s,
        "next_s": next_s,
        "verify_s": verify_s,
        "prove_s": prove_s,
        "proof_bytes": len(text),
        "path_nodes": len(proof["events"][0]["audit_path"]),
        "check_ms": check_ms,
    }


# -- register rate ------------------------------------------------------------------------


class LedgerWithoutCommandIds(Ledger):
    """The ledger as it was before command ids: saves record no command row."""

    records_command_ids = False


def register_rate(
    settings: Settings, count: int, model_dir: Path, ledger_class: type[Ledger]
) -> float:
    """Versions registered per second through ``Ledger.models.register_version``."""
    with ledger_class(settings) as ledger:
        ledger.models.register_version("warm-up", model_dir)
        total, _ = timed_ops(lambda _: ledger.models.register_version("rate", model_dir), 0, count)
    return count / total


def register_rates(
    kind: str, pg_url: str, key: Path, count: int, model_dir: Path
) -> tuple[float, float]:
    """(best rate without, best rate with) command ids: three runs of each, alternating, each
    in a fresh store, so that both meet the same noise."""
    rates: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(3):
        for with_ids in (False, True):
            with store(kind, pg_url, key) as settings:
                ledger_class = Ledger if with_ids else LedgerWithoutCommandIds
                rates[with_ids].append(register_rate(settings, count, model_dir, ledger_class))
    return max(rates[False]), max(rates[True])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", default="10000,1000000", help="comma-separated sizes")
    parser.add_argument("--quick", action="store_true", help="2k and 20k events")
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, metavar="URL")
    parser.add_argument("--registrations", type=int, default=500)
    add_json_option(parser)
    args = parser.parse_args(argv)
    report = Report("Trust: signed checkpoints, Merkle proofs, register rate", console=console)
    sizes = [2_000, 20_000] if args.quick else [int(s) for s in args.events.split(",")]
    registrations = 100 if args.quick else args.registrations
    kinds = args.stores.split(",")
    scratch = Path(tempfile.mkdtemp())
    key = scratch / "checkpoint.key"
    public = generate_key(key)
    model_dir = scratch / "model"
    model_dir.mkdir()
    (model_dir / "model.bin").write_bytes(b"weights" * 146)
    verifier = standalone_verifier()

    trees = Table("store", "events", "checkpoint s", "next checkpoint s", "verify s",
                  "prove s", "proof bytes", "path nodes", "offline check ms",
                  title="Checkpoints and proofs")  # fmt: skip
    rates = Table("store", "registrations", "without command ids /s", "with command ids /s", "cost",
                  title="Register rate")  # fmt: skip
    results: list[dict[str, Any]] = []
    with Progress(console=console, transient=True) as progress:
        for kind in kinds:
            for size in sizes:
                with store(kind, args.pg_url, key) as settings:
                    with Ledger(settings) as ledger:
                        fill(ledger, size, model_dir, progress)
                    row = measure(settings, public, verifier) | {"store": kind}
                results.append(row)
                trees.add_row(kind, f"{row['events']:,}", f"{row['first_s']:.2f}",
                              f"{row['next_s']:.3f}", f"{row['verify_s']:.2f}",
                              f"{row['prove_s']:.3f}", f"{row['proof_bytes']:,}",
                              str(row["path_nodes"]), f"{row['check_ms']:.2f}")  # fmt: skip
    report.show(trees)
    for kind in kinds:
        without, with_ids = register_rates(kind, args.pg_url, key, registrations, model_dir)
        rates.add_row(kind, f"{registrations:,}", f"{without:,.0f}", f"{with_ids:,.0f}",
                      f"{1 - with_ids / without:.0%} (target <= 10%)")  # fmt: skip
    report.show(rates)
    report.fact(
        "Leaves are the events' chain digests; the tree is RFC 9162's. The first checkpoint "
        "reads every event, later ones only the events after the last complete block of 256; "
        "verify reads every event again (it trusts no cache); prove starts from the kept "
        "block hashes and re-reads the blocks its audit path enters."
    )
    limits = [
        "Checkpoint, verify and prove: reading the events and SHA-256 in Python (SQLite hashes "
        "each state in Python; PostgreSQL computes the event digests in the server).",
        "Register rate: one durable commit per version (see benchmarks/register.py).",
    ]
    report.conclude(limits, args, pg_url=args.pg_url if "postgres" in kinds else None,
                    results=results)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
