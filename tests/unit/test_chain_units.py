"""The hash chain's comparison and the Merkle proofs, case by case, without a store
(except the progress test). Each case is one that mutation testing (scripts/mutation.sh)
showed could change unnoticed: the exact report of each kind of tampering, the chain's
byte format, proofs of the wrong shape.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ledger import chain
from ledger.chain import GENESIS, VerifyReport, _compare, link
from ledger.ledger import Ledger
from ledger.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_inclusion,
    root_of,
    verify_consistency,
    verify_inclusion,
)

DIGESTS = {p: hashlib.sha256(f"event {p}".encode()).digest() for p in range(1, 6)}


def sealed(positions: list[int]) -> list[tuple[int, bytes]]:
    """The chain an honest store writes for events at ``positions``."""
    rows, previous = [], GENESIS
    for position in positions:
        previous = link(previous, position, DIGESTS[position])
        rows.append((position, previous))
    return rows


def events(positions: list[int]) -> list[tuple[int, bytes]]:
    return [(p, DIGESTS[p]) for p in positions]


def test_a_link_is_the_documented_sha256_of_previous_position_and_digest() -> None:
    expected = hashlib.sha256(GENESIS + bytes([0] * 7 + [3]) + DIGESTS[3]).digest()
    assert link(GENESIS, 3, DIGESTS[3]) == expected


def test_an_empty_log_verifies_with_the_genesis_head() -> None:
    assert _compare([], [], None) == VerifyReport(0, GENESIS.hex())


def test_an_intact_log_reports_its_count_and_head() -> None:
    chained = sealed([1, 2, 3])
    assert _compare(events([1, 2, 3]), chained, None) == VerifyReport(3, chained[-1][1].hex())


def test_an_event_missing_from_an_empty_chain_is_inserted() -> None:
    assert _compare(events([1]), [], None) == VerifyReport(
        0, GENESIS.hex(), 1, "event is not in the chain (inserted)"
    )


def test_an_event_inserted_between_chained_ones_is_found_at_its_position() -> None:
    chained = [row for row in sealed([1, 2, 3]) if row[0] != 2]
    assert _compare(events([1, 2, 3]), chained, None) == VerifyReport(
        1, chained[0][1].hex(), 2, "event is not in the chain (inserted)"
    )


def test_a_deleted_event_is_found_at_its_position() -> None:
    chained = sealed([1, 2, 3])
    assert _compare(events([1, 3]), chained, None) == VerifyReport(
        1, chained[0][1].hex(), 2, "chained event is missing (deleted)"
    )


def test_an_edited_event_is_found_at_its_position() -> None:
    chained = sealed([1, 2, 3])
    edited = [(1, DIGESTS[1]), (2, DIGESTS[4]), (3, DIGESTS[3])]
    assert _compare(edited, chained, None) == VerifyReport(
        1, chained[0][1].hex(), 2, "event does not match its hash (edited or reordered)"
    )


def test_progress_is_reported_once_a_page(
    ledger: Ledger, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):
        ledger.models.register_version("iris", model_dir)
    count = ledger.event_count()
    monkeypatch.setattr(chain, "PAGE_SIZE", 2)
    progress: list[int] = []
    assert ledger.verify(progress.append).count == count
    assert progress == list(range(2, count + 1, 2))
    assert ledger.verify().ok  # and without a progress callback


LEAVES = [leaf_hash(bytes([i])) for i in range(7)]


def subtree(lo: int, hi: int) -> bytes:
    return root_of(LEAVES[lo:hi])


def test_a_leaf_outside_the_tree_has_no_proof() -> None:
    with pytest.raises(ValueError, match="not in a tree of 7"):
        inclusion_proof(7, 7, subtree)
    path = inclusion_proof(6, 7, subtree)
    assert root_from_inclusion(7, 7, LEAVES[6], path) is None


def test_a_truncated_or_extended_inclusion_path_proves_nothing() -> None:
    path = inclusion_proof(2, 7, subtree)
    assert verify_inclusion(2, 7, LEAVES[2], path, root_of(LEAVES))
    assert root_from_inclusion(2, 7, LEAVES[2], path[:-1]) is None
    assert root_from_inclusion(2, 7, LEAVES[2], [*path, LEAVES[0]]) is None


def test_consistency_refuses_a_shrinking_tree_and_different_roots_of_one_size() -> None:
    old, new = root_of(LEAVES[:3]), root_of(LEAVES)
    assert not verify_consistency(7, 3, new, old, [])
    assert not verify_consistency(3, 3, old, new, [])
    assert verify_consistency(3, 3, old, old, [])


def test_a_consistency_proof_with_an_extra_hash_proves_nothing() -> None:
    old, new = root_of(LEAVES[:3]), root_of(LEAVES)
    proof = consistency_proof(3, 7, subtree)
    assert verify_consistency(3, 7, old, new, proof)
    assert not verify_consistency(3, 7, old, new, [*proof, LEAVES[0]])
    assert not verify_consistency(3, 7, old, new, [])
