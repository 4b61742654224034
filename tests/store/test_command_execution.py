"""How commands run: what their events carry, how a reused command id is refused, and how
a save rides out a store that cannot be reached for a moment.

Found by mutation testing (scripts/mutation.sh): these paths could change unnoticed.
The outages are simulated on the recorder, so they run on both stores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError

from ledger.domain.model import model_id, model_version_id
from ledger.errors import ConcurrencyError
from ledger.ledger import Ledger
from tests.aggregate_state import model_versions
from tests.conftest import StoreFactory


def test_events_carry_the_commands_actor_and_reason(ledger: Ledger, model_dir: Path) -> None:
    ledger.models.register_version("iris", model_dir)
    with ledger.on_behalf_of("ci-bot", correlation_id="req-9"):
        ledger.models.set_alias("iris", "champion", 1, reason="passed the gate")
    last = ledger.events_of(model_id("iris"))[-1]
    assert (last.actor, last.reason, last.correlation_id) == ("ci-bot", "passed the gate", "req-9")
    ledger.models.archive_version("iris:1", reason="retired")  # through LedgerApplication.change
    last = ledger.events_of(model_version_id("iris", 1))[-1]
    assert (type(last).__name__, last.reason) == ("Archived", "retired")


def failing_first(original: Any, failures: int) -> Any:
    """``original``, after raising the error of an unreachable store ``failures`` times."""
    calls = []

    def call(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) <= failures:
            raise OperationalError("server closed the connection unexpectedly")
        return original(*args, **kwargs)

    return call


def test_a_save_is_sent_again_while_the_store_is_unreachable(
    store: StoreFactory, model_dir: Path
) -> None:
    with Ledger(store.settings(store_retry_s=30)) as ledger:
        recorder: Any = ledger.recorder
        recorder.insert_events = failing_first(recorder.insert_events, failures=2)
        assert ledger.models.register_version("iris", model_dir).number == 1
        assert [v.number for v in model_versions(ledger, "iris")] == [1]


def test_a_store_unreachable_past_the_retry_budget_is_reported(
    store: StoreFactory, model_dir: Path
) -> None:
    with Ledger(store.settings(store_retry_s=0.2)) as ledger:
        recorder: Any = ledger.recorder
        recorder.insert_events = failing_first(recorder.insert_events, failures=10**6)
        with pytest.raises(OperationalError):
            ledger.models.register_version("iris", model_dir)


def test_a_lost_answer_is_looked_up_again_while_the_store_is_unreachable(
    store: StoreFactory, model_dir: Path
) -> None:
    """The commit lands, its answer is lost, and the store cannot say at once whether
    the command committed: asking again finds it, and nothing is written twice."""
    with Ledger(store.settings(store_retry_s=30)) as ledger:
        recorder: Any = ledger.recorder
        original = recorder.insert_events
        resent: list[Any] = []

        def commit_then_resend(stored_events: Any, **kwargs: Any) -> Any:
            if not resent:
                resent.append(original(stored_events, **kwargs))
            return original(stored_events, **kwargs)

        recorder.insert_events = commit_then_resend
        recorder.committed_command = failing_first(recorder.committed_command, failures=2)
        assert ledger.models.register_version("iris", model_dir).number == 1
        assert resent
        assert [v.number for v in model_versions(ledger, "iris")] == [1]


def test_a_command_id_used_for_another_change_is_refused_with_the_reason(
    ledger: Ledger, model_dir: Path
) -> None:
    ledger.models.register_version("iris", model_dir)
    with ledger.on_behalf_of("ci-bot", command_id="alias-1"):
        ledger.models.set_alias("iris", "champion", 1)
    ledger.models.register_version("iris", model_dir)
    with (
        pytest.raises(Exception, match=r"^this command id \(Idempotency-Key\) was already used"),
        ledger.on_behalf_of("ci-bot", command_id="alias-1"),
    ):
        ledger.models.register_version("iris", model_dir)


def test_giving_up_on_conflicts_says_how_many_writes_conflicted(
    store: StoreFactory, model_dir: Path
) -> None:
    attempts: list[int] = []

    def always_conflicting(*args: Any, **kwargs: Any) -> Any:
        attempts.append(1)
        raise IntegrityError("duplicate key value violates unique constraint")

    with Ledger(store.settings(conflict_retry_s=0.1)) as ledger:
        recorder: Any = ledger.recorder
        recorder.insert_events = always_conflicting
        with pytest.raises(ConcurrencyError) as refused:
            ledger.models.register_version("iris", model_dir)
    assert str(refused.value).startswith(f"gave up after {len(attempts)} conflicting")
