"""Command ids: N successful calls make exactly N changes, whatever the connection does.

A command's id is saved with its events in one transaction. A save whose
acknowledgement was lost is resent and collides with its own first copy; a
retried request collides with the earlier one. Both find the committed command
and return its result instead of making the change again.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import PersistenceError

from ledger.errors import ConcurrencyError
from ledger.ledger import Ledger
from tests.aggregate_state import model_versions
from tests.conftest import Api, StoreFactory
from tests.fault_proxy import CuttingProxy


def versions_of(ledger: Ledger, name: str) -> list[int]:
    everything = model_versions(ledger, name, limit=10**6, include_deleted=True)
    return sorted(v.number for v in everything)


def test_a_command_id_runs_once(ledger: Ledger, model_dir: Path) -> None:
    """The same command id again returns the first result and writes nothing."""
    results = []
    for _ in range(3):
        with ledger.on_behalf_of("ci-bot", command_id="request-1"):
            results.append(ledger.models.register_version("iris", model_dir, tags={"a": "1"}))
    head = ledger.event_count()
    assert [r.number for r in results] == [1, 1, 1]
    assert results[-1].tags == {"a": "1"}
    assert versions_of(ledger, "iris") == [1]
    with ledger.on_behalf_of("ci-bot", command_id="request-1"):
        ledger.models.register_version("iris", model_dir)
    assert ledger.event_count() == head
    # Commands without an id are new commands every time.
    ledger.models.register_version("iris", model_dir)
    assert versions_of(ledger, "iris") == [1, 2]


def test_each_command_of_a_request_has_its_own_id(ledger: Ledger, model_dir: Path) -> None:
    """Commands in one block get <id>/1, <id>/2...: a retried block replays each of them."""
    for _ in range(2):
        with ledger.on_behalf_of("ci-bot", command_id="request-2"):
            first = ledger.models.register_version("iris", model_dir)
            second = ledger.models.register_version("iris", model_dir)
            ledger.models.set_alias("iris", "champion", second.number)
    assert (first.number, second.number) == (1, 2)
    assert versions_of(ledger, "iris") == [1, 2]


def test_a_retried_command_that_would_now_be_refused_returns_its_result(
    ledger: Ledger, model_dir: Path
) -> None:
    """Deploying twice is refused, but the same command id again is the same deployment."""
    ledger.models.register_version("iris", model_dir)
    ledger.endpoints.create("web", "online")
    for _ in range(2):
        with ledger.on_behalf_of("ci-bot", command_id="deploy-1"):
            endpoint = ledger.endpoints.deploy("web", "blue", "iris:1")
    assert list(endpoint.deployments) == ["blue"]
    head = ledger.event_count()
    with ledger.on_behalf_of("ci-bot", command_id="deploy-1"):
        ledger.endpoints.deploy("web", "blue", "iris:1")
    assert ledger.event_count() == head


def test_a_lost_acknowledgement_is_not_a_failure(
    ledger: Ledger, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit lands, its answer is lost, the store resends: one version, no error."""
    original = ledger.recorder.insert_events
    resent = []

    def commit_then_resend(stored_events: Any, **kwargs: Any) -> Any:
        if not resent:
            resent.append(original(stored_events, **kwargs))  # committed; the answer is lost
        return original(stored_events, **kwargs)  # the resend collides with it

    monkeypatch.setattr(ledger.recorder, "insert_events", commit_then_resend)
    version = ledger.models.register_version("iris", model_dir)
    assert resent and version.number == 1
    assert versions_of(ledger, "iris") == [1]
    assert ledger.models.register_version("iris", model_dir).number == 2
    assert ledger.verify().ok


def test_a_retried_request_gets_the_committed_version(api: Api) -> None:
    """The first answer was a 5xx (its key freed) although the command committed: the
    retry with the same Idempotency-Key returns that version instead of adding one."""
    headers = {**api.auth("contributor"), "Idempotency-Key": "upload-7"}
    files = [("files", ("model.bin", b"weights"))]
    first = api.client.post("/models/iris/versions", files=files, headers=headers)
    assert first.status_code == 201
    with Ledger(api.settings) as ledger:
        ledger_head = ledger.event_count()
    # What a 5xx does to the key: the idempotency record is gone, the events stay.
    with api.client.app.state.services.pool.views() as views:  # type: ignore[attr-defined]
        views.db.execute("DELETE FROM ledger_api_idempotency")
    retry = api.client.post("/models/iris/versions", files=files, headers=headers)
    assert retry.status_code == 201, retry.text
    assert retry.json()["version"] == first.json()["version"] == 1
    assert api.head() == ledger_head
    latest = api.client.get("/models/iris", headers=api.auth("reader")).json()["latest_version"]
    assert latest == 1


def test_conflicts_back_off_until_the_time_budget(store: StoreFactory, model_dir: Path) -> None:
    """A command that keeps losing conflicts gives up with ConcurrencyError (409), not a
    traceback, once ``conflict_retry_s`` is spent."""
    with Ledger(store.settings(conflict_retry_s=0.3)) as ledger:
        ledger.models.register_version("iris", model_dir)

        def always_conflicting(*args: Any, **kwargs: Any) -> Any:
            from eventsourcing.persistence import IntegrityError

            raise IntegrityError("duplicate key value violates unique constraint")

        ledger.recorder.insert_events = always_conflicting  # type: ignore[method-assign]
        started = time.monotonic()
        with pytest.raises(ConcurrencyError, match="retry later"):
            ledger.models.register_version("iris", model_dir)
        assert 0.3 <= time.monotonic() - started < 5


def test_connections_cut_mid_commit_never_duplicate(store: StoreFactory, model_dir: Path) -> None:
    """PostgreSQL behind a proxy that cuts every connection about every 0.75 s, wherever
    it is (a query, a COMMIT, an answer on its way back): no registration fails, and the
    N that succeeded are exactly versions 1..N."""
    if store.kind != "postgres":
        pytest.skip("SQLite has no connection to cut")
    direct = store.settings()
    with Ledger(direct):  # creates the schema without the proxy in the way
        pass
    location = direct.store_location
    with CuttingProxy((location.pg_host, location.pg_port), cut_every=0.75) as proxy:
        url = f"postgresql://{location.pg_user}@127.0.0.1:{proxy.port}/{location.pg_dbname}"
        succeeded = failed = 0
        with Ledger(store.settings(store=url)) as ledger:
            proxy.start_cutting()
            # 6 s, and on a slow machine until enough cuts and registrations; the deadline
            # bounds a hang.
            busy_until, deadline = time.monotonic() + 6, time.monotonic() + 120
            while time.monotonic() < busy_until or proxy.cuts < 5 or succeeded < 50:
                assert time.monotonic() < deadline, (proxy.cuts, succeeded, failed)
                try:
                    ledger.models.register_version("iris", model_dir)
                    succeeded += 1
                except PersistenceError:
                    failed += 1
    assert proxy.cuts >= 5 and succeeded >= 50 and failed == 0, (proxy.cuts, succeeded, failed)
    with Ledger(direct) as ledger:
        assert versions_of(ledger, "iris") == list(range(1, succeeded + 1))
        assert ledger.verify().ok
