"""Signed checkpoints: the log's Merkle tree size and root, signed with an Ed25519 key.

A checkpoint is a JSON object::

    {"format": "lifecycle-ledger-checkpoint/v1", "origin": "<store id>",
     "tree_size": 1000, "root_hash": "<64 hex>", "timestamp": "2026-11-30T19:20:00.000Z",
     "key_id": "<16 hex>", "signature": "<base64>"}

The signature is Ed25519 over the canonical JSON of every other field: keys sorted, no
whitespace, ASCII only (``json.dumps(body, sort_keys=True, separators=(",", ":"))``).
``origin`` is the store id (the first 16 hex digits of the log's first chain hash);
``key_id`` the first 16 hex digits of SHA-256 over the raw 32-byte public key. The private
key lives in a file outside the database (``LEDGER_CHECKPOINT_KEY``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.chain import CHAIN_TABLE
from ledger.errors import InvalidInputError, NotFoundError
from ledger.log_tree import Block, LogTree
from ledger.storage.database import LedgerDatabase
from ledger.storage.side_tables import CHECKPOINTS, MERKLE_BLOCKS, create_side_tables

FORMAT = "lifecycle-ledger-checkpoint/v1"
STORE_ID_DIGITS = 16


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement: this store's log had ``tree_size`` events with this Merkle root."""

    origin: str
    tree_size: int
    root_hash: str
    timestamp: str
    key_id: str
    signature: str = ""
    format: str = FORMAT

    def body(self) -> dict[str, Any]:
        fields = asdict(self)
        del fields["signature"]
        return fields

    def signed_bytes(self) -> bytes:
        """The exact bytes the signature covers."""
        return json.dumps(self.body(), sort_keys=True, separators=(",", ":")).encode("ascii")

    def to_dict(self) -> dict[str, Any]:
        return self.body() | {"signature": self.signature}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=2) + "\n"

    @property
    def label(self) -> str:
        return f"checkpoint {self.tree_size} of {self.timestamp}"

    @classmethod
    def from_dict(cls, data: Any) -> Checkpoint:
        try:
            checkpoint = cls(
                origin=str(data["origin"]),
                tree_size=int(data["tree_size"]),
                root_hash=str(data["root_hash"]),
                timestamp=str(data["timestamp"]),
                key_id=str(data["key_id"]),
                signature=str(data["signature"]),
                format=str(data.get("format", FORMAT)),
            )
            bytes.fromhex(checkpoint.root_hash)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise InvalidInputError(f"not a ledger checkpoint: {error}") from None
        if checkpoint.format != FORMAT or checkpoint.tree_size < 0:
            raise InvalidInputError(f"not a {FORMAT} checkpoint")
        return checkpoint


# -- keys ----------------------------------------------------------------------------------


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def generate_key(path: Path) -> Ed25519PublicKey:
    """A new private key in ``path`` (mode 0600, never overwritten) and its public key
    beside it in ``<path>.pub``."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InvalidInputError(f"{path} exists; a key is never overwritten") from None
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    public = key.public_key()
    Path(f"{path}.pub").write_text(public_pem(public))
    return public


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as error:
        raise InvalidInputError(
            f"cannot read the checkpoint key {path}: {error.strerror}"
        ) from None
    except (ValueError, TypeError):
        raise InvalidInputError(f"{path} is not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInputError(f"{path} is not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as error:
        raise InvalidInputError(f"cannot read the public key {path}: {error.strerror}") from None
    except ValueError:
        raise InvalidInputError(f"{path} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidInputError(f"{path} is not an Ed25519 public key")
    return key


def signature_problem(checkpoint: Checkpoint, public_key: Ed25519PublicKey) -> str:
    """ "" when ``public_key`` signed ``checkpoint``; otherwise what is wrong."""
    if checkpoint.key_id != key_id(public_key):
        return f"signed by key {checkpoint.key_id}, not by the given public key"
    try:
        public_key.verify(base64.b64decode(checkpoint.signature), checkpoint.signed_bytes())
    except (InvalidSignature, ValueError):
        return "the signature does not match its content (forged or altered)"
    return ""


# -- making checkpoints ------------------------------------------------------------------


def store_id(db: LedgerDatabase) -> str:
    """The store's id: the start of its first chain hash ("" while the log is empty)."""
    if not db.table_exists(CHAIN_TABLE):
        return ""
    rows = db.execute(f"SELECT hash FROM {CHAIN_TABLE} ORDER BY position LIMIT 1")
    return bytes(rows[0][0]).hex()[:STORE_ID_DIGITS] if rows else ""


def stored_blocks(db: LedgerDatabase, count: int | None = None) -> list[Block]:
    """The leading blocks' hashes kept by earlier checkpoints (at most ``count``).

    A cache only: checkpoints continue from it and proofs start from it, but verification
    recomputes every leaf from the events. A wrong entry makes a checkpoint or proof that
    fails verification, never one that passes.
    """
    if not db.table_exists(MERKLE_BLOCKS):
        return []
    rows = db.execute(
        f"SELECT block, first_position, last_position, hash FROM {MERKLE_BLOCKS} "
        "WHERE block < ? ORDER BY block",
        (count if count is not None else 2**62,),
    )
    blocks = []
    for expected, (index, first, last, digest) in enumerate(rows):
        if index != expected:
            break
        blocks.append(Block(int(first), int(last), bytes.fromhex(digest)))
    return blocks


def make_checkpoint(db: LedgerDatabase, key: Ed25519PrivateKey) -> Checkpoint:
    """Sign the log's current tree and keep the checkpoint in the side table.

    The tree continues from the block hashes earlier checkpoints kept, so only the events
    after the last complete block are read.
    """
    create_side_tables(db)
    origin = store_id(db)
    if not origin:
        raise NotFoundError("the log is empty: nothing to checkpoint")
    known = stored_blocks(db)
    tree = LogTree(db, known=known)
    now = datetime.now(UTC)
    unsigned = Checkpoint(
        origin=origin,
        tree_size=tree.size,
        root_hash=tree.root.hex(),
        timestamp=now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        key_id=key_id(key.public_key()),
    )
    signature = base64.b64encode(key.sign(unsigned.signed_bytes())).decode()
    checkpoint = Checkpoint(**(unsigned.body() | {"signature": signature}))
    new_blocks = [
        (index, block.first, block.last, block.hash.hex())
        for index, block in enumerate(tree.blocks)
        if index >= len(known)
    ]
    with db.transaction():
        db.execute_many(
            f"INSERT INTO {MERKLE_BLOCKS} (block, first_position, last_position, hash) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (block) DO NOTHING",
            new_blocks,
        )
        db.execute(
            f"INSERT INTO {CHECKPOINTS} (tree_size, created_us, last_position, document) "
            "VALUES (?, ?, ?, ?)",
            (
                checkpoint.tree_size,
                int(now.timestamp() * 1_000_000),
                tree.last_position,
                json.dumps(checkpoint.to_dict(), sort_keys=True),
            ),
        )
    return checkpoint


def last_checkpointed_position(db: LedgerDatabase) -> int:
    """The log position the newest checkpoint kept here covers (0: none yet)."""
    if not db.table_exists(CHECKPOINTS):
        return 0
    rows = db.execute(f"SELECT max(last_position) FROM {CHECKPOINTS}")
    return int(rows[0][0] or 0)


def stored_checkpoints(db: LedgerDatabase, limit: int = 100) -> list[Checkpoint]:
    """Checkpoints made on this store, newest first."""
    if not db.table_exists(CHECKPOINTS):
        return []
    rows = db.execute(
        f"SELECT document FROM {CHECKPOINTS} ORDER BY tree_size DESC, created_us DESC LIMIT ?",
        (limit,),
    )
    return [Checkpoint.from_dict(json.loads(row[0])) for row in rows]


def write_to_directory(checkpoint: Checkpoint, directory: Path) -> Path:
    """Publish into an operator's directory: one file per checkpoint, written atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = checkpoint.timestamp.replace(":", "").replace("-", "").replace(".", "")
    path = directory / f"checkpoint-{checkpoint.tree_size:012d}-{stamp}.json"
    temporary = path.with_suffix(".tmp")
    temporary.write_text(checkpoint.to_json())
    os.replace(temporary, path)
    return path


def read_directory(directory: Path) -> list[Checkpoint]:
    """Every checkpoint file (``*.json``) in ``directory``."""
    if not directory.is_dir():
        raise InvalidInputError(f"{directory} is not a directory of checkpoints")
    found = []
    for path in sorted(directory.glob("*.json")):
        try:
            found.append(Checkpoint.from_dict(json.loads(path.read_text())))
        except (ValueError, InvalidInputError) as error:
            raise InvalidInputError(f"{path}: {error}") from None
    return found
