"""The relay's resume check and stamps, called directly on a store's log.

Found by mutation testing (scripts/mutation.sh): every envelope of a batch must carry its
chain hash, and a stream that reaches past this log's end must be refused as such.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from ledger.bus.stream_trust import (
    RelayRefusedError,
    chain_hashes,
    check_continues,
    stamp,
    store_id,
)
from ledger.storage import ensure_store
from ledger.storage.database import LedgerDatabase
from tests.bus_support import append_events
from tests.conftest import StoreFactory


@pytest.fixture
def log(store: StoreFactory) -> Iterator[LedgerDatabase]:
    settings = store.settings()
    append_events(settings, aggregates=1, per_aggregate=3)
    db = LedgerDatabase(settings)
    yield db
    db.close()


def newest(db: LedgerDatabase, position: int) -> dict[str, Any]:
    """The envelope a stream holds for this log's event at ``position``."""
    (row,) = db.read_events(position - 1, 1)
    return {
        "position": position,
        "id": f"{UUID(str(row[1]))}/{row[2]}",
        "chain": chain_hashes(db, position, position)[position],
        "store": "s",
    }


def test_every_envelope_of_a_batch_is_stamped_with_its_chain_hash(log: LedgerDatabase) -> None:
    envelopes: list[dict[str, Any]] = [{"position": p} for p in (1, 2, 3)]
    stamp(log, "s", envelopes)
    hashes = chain_hashes(log, 1, 3)
    assert [e["chain"] for e in envelopes] == [hashes[1], hashes[2], hashes[3]]
    assert all(e["chain"] and e["store"] == "s" for e in envelopes)


def test_a_stream_that_continues_this_log_is_accepted(log: LedgerDatabase) -> None:
    check_continues(log, "S", "s", None)
    check_continues(log, "S", "s", newest(log, 3))


def test_a_stream_reaching_past_this_log_is_refused_as_a_restored_database(
    log: LedgerDatabase,
) -> None:
    ahead = {**newest(log, 3), "position": 4}
    with pytest.raises(RelayRefusedError, match="up to log position 4 but this log ends at 3"):
        check_continues(log, "S", "s", ahead)


def test_a_stream_whose_event_differs_is_refused(log: LedgerDatabase) -> None:
    for changed in ({"chain": "00" * 32}, {"id": "another/1"}):
        with pytest.raises(RelayRefusedError, match="event at log position 3 differs"):
            check_continues(log, "S", "s", {**newest(log, 3), **changed})
    with pytest.raises(RelayRefusedError, match="another store"):
        check_continues(log, "S", "s", {**newest(log, 3), "store": "t"})


def test_the_refusal_says_what_happened_and_how_to_go_on(log: LedgerDatabase) -> None:
    ahead = {**newest(log, 3), "position": 4}
    with pytest.raises(RelayRefusedError) as refused:
        check_continues(log, "S", "s", ahead)
    assert str(refused.value) == (
        "the relay refuses to publish to JetStream stream S: it holds events up to log "
        "position 4 but this log ends at 3: the database was restored from an older backup; "
        "run `ledger relay --reset` to publish this log into a fresh stream S "
        "(it deletes the stream and its consumers)"
    )
    with pytest.raises(RelayRefusedError, match=r"\(id t; this store is -\)"):
        check_continues(log, "S", "", {**newest(log, 3), "store": "t"})


def test_an_empty_log_has_no_store_id(store: StoreFactory) -> None:
    settings = store.settings()
    db = LedgerDatabase(settings)
    try:
        assert store_id(db) == ""  # no chain table yet
        ensure_store(settings)
        assert store_id(db) == ""  # a chain table without rows
        append_events(settings, aggregates=1, per_aggregate=1)
        assert len(store_id(db)) == 16
    finally:
        db.close()
