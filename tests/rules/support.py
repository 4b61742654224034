"""The shop of the issue's example rules: a champion, an endpoint, an `evaluate` pipeline,
and the rule engine with a worker running in process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from executors.rules.engine import RuleEngine
from executors.worker import Worker
from ledger.ledger import Ledger
from ledger.rule_spec import parse_rules
from ledger.settings import Settings
from ledger.storage.database import LedgerDatabase
from ledger.storage.side_tables import HANDLED_EVENTS
from projections.views import Views
from tests.bus_support import in_background
from tests.conftest import wait_for

MODEL = "iris-classifier"
EXAMPLE_RULES = Path(__file__).parents[2] / "examples" / "rules" / "rules.yaml"
EVALUATE_STEPS = """
import json


def evaluate(ctx):
    # The accuracy each model version scores on the held-out set, prepared by the test.
    scores = json.loads(open(ctx.params["scores"]).read())
    return {"accuracy": scores[ctx.params["model"]]}
"""


class Shop:
    """The store of the example: model versions with their accuracy on held-out data."""

    def __init__(self, settings: Settings, root: Path) -> None:
        self.settings = settings
        self.root = root
        self.scores = root / "scores.json"
        self.scores.write_text("{}")
        self.files = root / "model"
        self.files.mkdir(exist_ok=True)
        (self.files / "weights.bin").write_bytes(b"iris")

    def set_up(self, ledger: Ledger, *, rules: str | None = None) -> None:
        """v1 (accuracy 0.9) is the champion, live on shop/blue; `evaluate` and the rules."""
        self.register(ledger, 0.9, tags={})
        ledger.models.set_alias(MODEL, "champion", 1)
        ledger.endpoints.create("shop")
        ledger.endpoints.deploy("shop", "blue", f"{MODEL}:1")
        ledger.endpoints.set_traffic("shop", {"blue": 100})
        code = self.root / "code"
        code.mkdir(exist_ok=True)
        (code / "evaluating.py").write_text(EVALUATE_STEPS)
        spec = {
            "parameters": {"model": "", "scores": str(self.scores)},
            "steps": [{"name": "evaluate", "run": "evaluating:evaluate"}],
        }
        ledger.assets.register_pipeline("evaluate", spec, code_dir=code)
        ledger.rules.apply(parse_rules(rules or EXAMPLE_RULES.read_text()))

    def register(self, ledger: Ledger, accuracy: float, tags: dict[str, str] | None = None) -> int:
        """The next version, with its accuracy registered and on the held-out set."""
        version = ledger.models.register_version(
            MODEL,
            self.files,
            metrics={"accuracy": accuracy},
            tags={"stage": "candidate"} if tags is None else tags,
        )
        scores = json.loads(self.scores.read_text())
        scores[f"{MODEL}:{version.number}"] = accuracy
        self.scores.write_text(json.dumps(scores))
        return version.number


def engine_and_worker(settings: Settings) -> list[Callable[[asyncio.Event], Awaitable[None]]]:
    return [RuleEngine(settings).run, Worker(settings).run]


@contextmanager
def running(*mains: Callable[[asyncio.Event], Awaitable[None]]) -> Iterator[None]:
    with in_background(*mains):
        yield


def read(settings: Settings, query: Callable[[Views], Any]) -> Any:
    """``query`` on views brought up to the head of the log."""
    views = Views.open(settings)
    try:
        return query(views)
    finally:
        views.close()


def eventually(settings: Settings, query: Callable[[Views], Any], what: str,
               timeout: float = 60) -> Any:  # fmt: skip
    """Wait until ``query`` on fresh views returns something true; return it."""
    found: list[Any] = []

    def check() -> bool:
        found[:] = [read(settings, query)]
        return bool(found[0])

    wait_for(check, timeout, what)
    return found[0]


def firings(settings: Settings, rule: str, outcome: str = "") -> list[dict[str, Any]]:
    return [
        f
        for f in read(settings, lambda v: v.rule_firings(rule, limit=1000))
        if not outcome or f["outcome"] == outcome
    ]


def head(settings: Settings) -> int:
    db = LedgerDatabase(settings)
    try:
        return db.head_position()
    finally:
        db.close()


def judged_up_to(settings: Settings, position: int) -> bool:
    """The engine's consumer handled every event up to ``position``, and judged them."""
    db = LedgerDatabase(settings)
    try:
        if not db.table_exists("ledger_rule_inbox") or not db.table_exists(HANDLED_EVENTS):
            return False
        handled = db.execute(
            f"SELECT COUNT(*) FROM {HANDLED_EVENTS} WHERE consumer = 'rules' AND position <= ?",
            (position,),
        )
        waiting = db.execute("SELECT COUNT(*) FROM ledger_rule_inbox")
        return bool(handled[0][0] >= position and waiting[0][0] == 0)
    finally:
        db.close()


def settle(settings: Settings) -> None:
    """Wait until the engine judged every event written so far (and what that wrote)."""
    while True:
        reached = head(settings)
        wait_for(partial(judged_up_to, settings, reached), 60, f"judging up to {reached}")
        if head(settings) == reached:
            return
