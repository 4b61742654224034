"""Signed checkpoints: the Merkle tree, proofs, tamper detection, the standalone verifier, the API
and the server's periodic checkpoints."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ledger.chain import GENESIS, event_digest, link
from ledger.checkpoint_service import CheckpointThread, checkpoint_now
from ledger.checkpoints import Checkpoint, generate_key, stored_blocks
from ledger.domain import EventMeta, acting
from ledger.domain.model import model_version_id
from ledger.ledger import Ledger
from ledger.log_tree import LogTree, log_root
from ledger.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_of,
    split_point,
    verify_consistency,
    verify_inclusion,
)
from ledger.proofs import prove_entity
from ledger.storage.database import LedgerDatabase
from tests.conftest import Cli, StoreFactory, assert_user_error, running_api
from tests.paths import REPO

VERIFIER = REPO / "scripts" / "verify_proof.py"

# -- the Merkle tree against a naive RFC 9162 implementation ----------------------------


def naive_root(items: list[bytes]) -> bytes:
    if not items:
        return hashlib.sha256(b"").digest()
    if len(items) == 1:
        return leaf_hash(items[0])
    k = split_point(len(items))
    return node_hash(naive_root(items[:k]), naive_root(items[k:]))


DATA = [f"leaf {i}".encode() for i in range(41)]


@pytest.mark.parametrize("n", range(1, 41))
def test_merkle_root_and_proofs_match_a_naive_tree(n: int) -> None:
    items = DATA[:n]
    root = naive_root(items)
    assert root_of(leaf_hash(d) for d in items) == root

    def subtree(lo: int, hi: int) -> bytes:
        return naive_root(items[lo:hi])

    for index in range(n):
        path = inclusion_proof(index, n, subtree)
        assert verify_inclusion(index, n, leaf_hash(items[index]), path, root)
        assert not verify_inclusion(index, n, leaf_hash(b"forged"), path, root)
        if path:
            forged_path = [bytes(32), *path[1:]]
            assert not verify_inclusion(index, n, leaf_hash(items[index]), forged_path, root)
        if n > 1:
            wrong_index = (index + 1) % n
            assert not verify_inclusion(wrong_index, n, leaf_hash(items[index]), path, root)
    for m in range(0, n + 1):
        proof = consistency_proof(m, n, subtree)
        assert verify_consistency(m, n, naive_root(items[:m]), root, proof)
        if 0 < m < n:
            assert not verify_consistency(m, n, naive_root(DATA[1 : m + 1]), root, proof)
            assert not verify_consistency(m, n, naive_root(items[:m]), root, proof[:-1])
            assert not verify_consistency(m, n, naive_root(items[:m]), DATA[0] * 1, proof)


def test_empty_tree_root() -> None:
    assert root_of([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()


# -- helpers over a real store -------------------------------------------------------------


@pytest.fixture
def key(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "checkpoint.key"
    generate_key(path)
    return path


def fill(settings: Any, model_dir: Path, versions: int = 3) -> None:
    with Ledger(settings) as ledger:
        for number in range(versions):
            ledger.models.register_version("iris", model_dir, reason=f"v{number}")
        ledger.models.register_version("other", model_dir)


def use_key(monkeypatch: pytest.MonkeyPatch, key: Path, directory: Path) -> None:
    monkeypatch.setenv("LEDGER_CHECKPOINT_KEY", str(key))
    monkeypatch.setenv("LEDGER_CHECKPOINT_DIR", str(directory))


def events_query(store: StoreFactory) -> str:
    pos, table = store.position_column, store.events_table
    uid = "originator_id::text" if store.kind == "postgres" else "originator_id"
    return f"SELECT {pos}, {uid}, originator_version, topic, state FROM {table} ORDER BY {pos}"


def rechain(store: StoreFactory) -> None:
    """Recompute the whole hash chain from the events, as a careful forger would."""
    previous = GENESIS
    store.sql("DELETE FROM ledger_chain")
    for position, uid, version, topic, state in store.sql(events_query(store)):
        previous = link(previous, position, event_digest(uid, version, topic, bytes(state)))
        store.sql("INSERT INTO ledger_chain (position, hash) VALUES (?, ?)", (position, previous))


# -- tamper detection on both stores -------------------------------------------------------


def test_tail_deletion_is_detected(
    store: StoreFactory,
    cli: Cli,
    model_dir: Path,
    key: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fill(store.settings(), model_dir)
    use_key(monkeypatch, key, tmp_path / "published")
    assert cli("checkpoint").code == 0
    public = f"{key}.pub"
    assert (
        cli("verify", "--checkpoints", str(tmp_path / "published"), "--public-key", public).code
        == 0
    )

    last = store.sql(f"SELECT max({store.position_column}) FROM {store.events_table}")[0][0]
    for position in (last, last - 1):
        store.sql(
            f"DELETE FROM {store.events_table} WHERE {store.position_column} = ?", (position,)
        )
        store.sql("DELETE FROM ledger_chain WHERE position = ?", (position,))
    assert cli("verify").code == 0  # the chain alone cannot tell
    result = cli("verify", "--checkpoints", str(tmp_path / "published"), "--public-key", public)
    assert result.code == 1
    assert "TAMPERED: checkpoint" in result.err and "events were deleted" in result.err


def test_edit_with_recomputed_chain_is_detected(
    store: StoreFactory,
    cli: Cli,
    model_dir: Path,
    key: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fill(store.settings(), model_dir)
    use_key(monkeypatch, key, tmp_path / "published")
    assert cli("checkpoint").code == 0
    with Ledger(store.settings()) as ledger:  # more events after the checkpoint: still fine
        ledger.models.register_version("late", Path(model_dir))
    public = f"{key}.pub"
    assert (
        cli("verify", "--checkpoints", str(tmp_path / "published"), "--public-key", public).code
        == 0
    )

    position, state = next(
        (row[0], bytes(row[4])) for row in store.sql(events_query(store)) if b"custom" in row[4]
    )
    edited = state.replace(b'"flavor":"custom"', b'"flavor":"onnx"')
    assert edited != state
    store.sql(
        f"UPDATE {store.events_table} SET state = ? WHERE {store.position_column} = ?",
        (edited, position),
    )
    rechain(store)
    assert cli("verify").code == 0  # the rewritten chain is consistent with itself
    result = cli(
        "verify", "--json", "--checkpoints", str(tmp_path / "published"), "--public-key", public
    )
    assert result.code == 1
    report: Any = result.json()
    assert report["checkpoints"]["ok"] is False
    assert "not the ones checkpointed" in report["checkpoints"]["checkpoints"][0]["problem"]


def test_checkpoint_signed_by_another_key_or_altered_fails(
    store: StoreFactory,
    cli: Cli,
    model_dir: Path,
    key: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fill(store.settings(), model_dir, versions=1)
    use_key(monkeypatch, key, tmp_path / "published")
    assert cli("checkpoint").code == 0
    (path,) = (tmp_path / "published").glob("*.json")
    document = json.loads(path.read_text())
    path.write_text(json.dumps(document | {"tree_size": document["tree_size"] - 1}))
    result = cli("verify", "--checkpoints", str(path), "--public-key", f"{key}.pub")
    assert result.code == 1 and "signature does not match" in result.err
    other = tmp_path / "other.key"
    generate_key(other)
    result = cli(
        "verify", "--checkpoints", str(tmp_path / "published"), "--public-key", f"{other}.pub"
    )
    assert result.code == 1 and "not by the given public key" in result.err
    assert_user_error(cli("verify", "--checkpoints", str(tmp_path)), "--public-key")


# -- the tree over a store, incrementally and at once ------------------------------------


def test_incremental_checkpoints_match_a_full_recomputation(
    store: StoreFactory, model_dir: Path, key: Path
) -> None:
    settings = store.settings(checkpoint_key=key)
    fill(settings, model_dir, versions=2)
    first, _ = checkpoint_now(settings)
    fill(settings, model_dir, versions=3)
    second, _ = checkpoint_now(settings)
    db = LedgerDatabase(settings)
    try:
        size, _, root = log_root(db)
        assert (second.tree_size, second.root_hash) == (size, root.hex())
        tree = LogTree(db, block=4)  # small blocks: proofs cross block boundaries
        assert tree.root == root
        old = bytes.fromhex(first.root_hash)
        proof = consistency_proof(first.tree_size, tree.size, tree.subtree)
        assert verify_consistency(first.tree_size, tree.size, old, root, proof)
    finally:
        db.close()


def add_tags(settings: Any, count: int) -> None:
    """``count`` more events, saved in one go (tags on iris:1)."""
    with Ledger(settings) as ledger:
        version = ledger.repository.get(model_version_id("iris", 1))
        with acting(EventMeta(actor="tester", reason="churn")):
            for i in range(count):
                version.trigger_event(version.Tagged, key=f"k{i % 5}", value=str(i))
        ledger.save(version)


def test_block_cache_speeds_checkpoints_and_proofs_but_never_decides(
    store: StoreFactory, model_dir: Path, key: Path, tmp_path: Path
) -> None:
    settings = store.settings(checkpoint_key=key)
    fill(settings, model_dir, versions=1)
    add_tags(settings, 600)
    checkpoint_now(settings)
    add_tags(settings, 300)
    latest, _ = checkpoint_now(settings)  # continues from the 2 blocks the first one kept
    db = LedgerDatabase(settings)
    try:
        assert [b.first for b in stored_blocks(db)] == [1, 257, 513]
        size, _, root = log_root(db)
        assert (latest.tree_size, latest.root_hash) == (size, root.hex())
    finally:
        db.close()
    store.sql("UPDATE ledger_merkle_blocks SET hash = ? WHERE block = 1", ("00" * 32,))
    db = LedgerDatabase(settings)
    try:
        proof = prove_entity(db, "model:other:1", latest)  # the stale cache is not trusted
    finally:
        db.close()
    assert verify_offline(proof, Path(f"{key}.pub"), tmp_path) == 0


# -- inclusion proofs and the standalone verifier ------------------------------------------


def verify_offline(proof: dict[str, Any], public_key: Path, tmp_path: Path) -> int:
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(proof))
    done = subprocess.run(
        [sys.executable, "-I", str(VERIFIER), str(path), "--public-key", str(public_key)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,  # -I and another folder: the ledger package cannot be imported
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode


def test_inclusion_proof_verifies_offline_and_forgeries_fail(
    store: StoreFactory,
    cli: Cli,
    model_dir: Path,
    key: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fill(store.settings(), model_dir)
    use_key(monkeypatch, key, tmp_path / "published")
    assert cli("checkpoint").code == 0
    public = Path(f"{key}.pub")
    result = cli("prove", "model:iris:2")
    assert result.code == 0, result.err
    proof: Any = result.json()
    assert [e["aggregate_version"] for e in proof["events"]] == [1]
    assert verify_offline(proof, public, tmp_path) == 0

    whole: Any = cli("prove", "model:iris").json()
    assert len(whole["events"]) == 7  # the model (created + 3 versions added), 3 versions
    assert verify_offline(whole, public, tmp_path) == 0

    forged_leaf = json.loads(json.dumps(proof))
    event = forged_leaf["events"][0]
    event["state"] = event["state"][:-4] + ("AAAA" if event["state"][-4:] != "AAAA" else "BBBB")
    assert verify_offline(forged_leaf, public, tmp_path) == 1
    forged_path = json.loads(json.dumps(proof))
    forged_path["events"][0]["audit_path"][0] = "00" * 32
    assert verify_offline(forged_path, public, tmp_path) == 1
    forged_checkpoint = json.loads(json.dumps(proof))
    forged_checkpoint["checkpoint"]["root_hash"] = "11" * 32
    assert verify_offline(forged_checkpoint, public, tmp_path) == 1

    assert_user_error(cli("prove", "widget:x"), "KIND:NAME")
    assert_user_error(cli("prove", "endpoint:nothing"), "no events")


def test_prove_needs_a_checkpoint(store: StoreFactory, cli: Cli, model_dir: Path) -> None:
    fill(store.settings(), model_dir, versions=1)
    assert_user_error(cli("prove", "model:iris"), "no checkpoint")
    assert_user_error(cli("checkpoint"), "LEDGER_CHECKPOINT_KEY")


def test_keygen_writes_a_private_key_only_its_owner_reads(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "k" / "signing.key"
    result = cli("checkpoint", "keygen", "--out", str(path))
    assert result.code == 0 and "BEGIN PUBLIC KEY" in result.out
    assert path.stat().st_mode & 0o777 == 0o600
    assert Path(f"{path}.pub").read_text() == result.out
    assert_user_error(cli("checkpoint", "keygen", "--out", str(path)), "never overwritten")


# -- the API and the server's own checkpoints ---------------------------------------------


def test_get_checkpoints(store: StoreFactory, model_dir: Path, key: Path) -> None:
    settings = store.settings(checkpoint_key=key, checkpoint_every_events=0, checkpoint_every_s=0)
    fill(settings, model_dir, versions=1)
    with running_api(settings) as api:
        assert api.client.get("/checkpoints").json() == {"items": []}
        assert api.client.get("/checkpoints/latest").status_code == 404
        made, _ = checkpoint_now(settings)
        items = api.client.get("/checkpoints").json()["items"]
        assert [Checkpoint.from_dict(item) for item in items] == [made]
        assert api.client.get("/checkpoints/latest").json() == made.to_dict()
        assert api.client.get("/checkpoints?limit=0").status_code == 422


def test_server_checkpoints_every_n_events(store: StoreFactory, model_dir: Path, key: Path) -> None:
    settings = store.settings(checkpoint_key=key, checkpoint_every_events=3, checkpoint_every_s=0)
    with running_api(settings) as api:
        fill(settings, model_dir, versions=2)
        deadline = time.monotonic() + 60  # generous: a bound on a hang, not a latency limit
        while time.monotonic() < deadline:
            items = api.client.get("/checkpoints").json()["items"]
            if items and items[0]["tree_size"] == api.head():
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"no checkpoint of the whole log: {items}")


def test_checkpoint_thread_survives_failures(
    store: StoreFactory, key: Path, monkeypatch: pytest.MonkeyPatch, model_dir: Path
) -> None:
    import ledger.checkpoint_service as service

    settings = store.settings(checkpoint_key=key, checkpoint_every_events=1, checkpoint_every_s=0)
    fill(settings, model_dir, versions=1)
    failures = iter([True, True])
    real = service.checkpoint_now
    called = threading.Event()

    def flaky(settings: Any) -> Any:
        if next(failures, False):
            raise OSError("the database is down")
        called.set()
        return real(settings)

    monkeypatch.setattr(service, "checkpoint_now", flaky)
    monkeypatch.setattr(service, "POLL_S", 0.05)
    thread = CheckpointThread(settings)
    thread.start()
    try:
        assert called.wait(60), thread.last_error
    finally:
        thread.stop()
    assert thread.made == 1


def test_verify_reads_checkpoints_from_a_server_url(
    store: StoreFactory, model_dir: Path, key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import urllib.request

    from ledger.cli import trust

    settings = store.settings(checkpoint_key=key, checkpoint_every_events=0, checkpoint_every_s=0)
    fill(settings, model_dir, versions=1)
    made, _ = checkpoint_now(settings)
    with running_api(settings) as api:
        asked: list[str] = []

        def urlopen(url: str, timeout: float) -> Any:
            asked.append(url)
            return io.BytesIO(api.client.get(url.removeprefix("http://ledger.example")).content)

        monkeypatch.setattr(urllib.request, "urlopen", urlopen)
        assert trust.load_checkpoints("http://ledger.example/") == [made]
    assert asked == ["http://ledger.example/checkpoints?limit=1000"]


def test_checkpoints_are_published_on_nats(
    store: StoreFactory, model_dir: Path, key: Path, tmp_path: Path
) -> None:
    import asyncio
    import uuid

    import nats

    from tests.bus_support import NATS_URL

    prefix = f"test_{uuid.uuid4().hex[:10]}"
    settings = store.settings(
        checkpoint_key=key,
        checkpoint_dir=tmp_path / "published",
        nats_url=NATS_URL,
        nats_subject_prefix=prefix,
    )
    fill(settings, model_dir, versions=1)

    async def receive() -> tuple[Checkpoint, list[str]]:
        client = await nats.connect(NATS_URL)
        try:
            subscription = await client.subscribe(f"{prefix}.checkpoint")
            await client.flush()
            made, published = await asyncio.to_thread(checkpoint_now, settings)
            message = await subscription.next_msg(timeout=30)
            assert Checkpoint.from_dict(json.loads(message.data)) == made
            return made, published
        finally:
            await client.close()

    made, published = asyncio.run(receive())
    assert published[1] == f"nats:{prefix}.checkpoint"
    (path,) = (tmp_path / "published").glob("*.json")
    assert str(path) == published[0]
    assert Checkpoint.from_dict(json.loads(path.read_text())) == made
