"""`ledger gc`: a dry run prints what would go; a run removes it and shows in the audit."""

from __future__ import annotations

import time
from typing import Any

from ledger.ledger import Ledger
from tests.conftest import Cli, StoreFactory, assert_user_error
from tests.gc_support import blob_keys, orphan


def test_gc_dry_run_then_run_then_audit(cli: Cli, store: StoreFactory) -> None:
    with Ledger(store.settings()) as ledger:
        lost = orphan(ledger, b"left by a refused upload")
    young = cli("gc", "--dry-run")
    assert young.code == 0 and "would remove" in young.out and "kept 1 unreferenced" in young.out
    time.sleep(1.1)
    dry = cli("gc", "--dry-run", "--older-than", "PT1S", "--json").json()
    assert dry["dry_run"] and dry["removed"]["blobs"] == {"count": 1, "bytes": 24}  # type: ignore[index]
    assert cli("audit", "--entity", "gc", "--json").json()["items"] == []  # type: ignore[index]

    done = cli("gc", "--older-than", "PT1S", "--reason", "weekly tidy")
    assert done.code == 0 and "removed" in done.out
    with Ledger(store.settings()) as ledger:
        assert lost not in blob_keys(ledger)
    rows: Any = cli("audit", "--entity", "gc", "--json").json()
    collected = rows["items"][-1]
    assert collected["event_type"] == "GarbageCollector.Collected"
    assert collected["reason"] == "weekly tidy" and collected["name"] == "artifacts"
    assert collected["details"]["removed"]["blobs"] == {"count": 1, "bytes": 24}
    assert collected["details"]["older_than"] == "PT1S"
    assert "Collected" in cli("audit", "--type", "Collected").out


def test_gc_refuses_a_grace_that_is_no_duration(cli: Cli) -> None:
    assert_user_error(cli("gc", "--older-than", "7 days"), "--older-than '7 days'")
    assert_user_error(cli("gc", "--older-than", "PT0S"), "ISO 8601 duration")
