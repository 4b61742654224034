#!/usr/bin/env python3
"""Check a Lifecycle Ledger inclusion proof offline: standard library and `cryptography` only.

    python verify_proof.py PROOF.json --public-key checkpoint.key.pub

PROOF.json is what `ledger prove KIND:NAME[:VERSION]` prints. The script checks that the
checkpoint inside it is signed by the public key (Ed25519 over the checkpoint's canonical
JSON without "signature"), then, for each event, recomputes its leaf from the stored event
(position, aggregate id, version, topic, state) and folds the audit path up to the
checkpoint's root (RFC 9162 §2.1.3.2). Exit status 0: every event is in the signed log;
1: the proof does not hold; 2: unusable input.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

CHECKPOINT_FORMAT = "lifecycle-ledger-checkpoint/v1"
PROOF_FORMAT = "lifecycle-ledger-inclusion/v1"


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def leaf_hash(event: dict[str, Any]) -> bytes:
    """SHA-256(0x00 || position (8 bytes) || SHA-256("<id>:<version>:<topic>" || state))."""
    header = (
        f"{uuid.UUID(event['aggregate_id'])}:{int(event['aggregate_version'])}:{event['topic']}"
    )
    digest = hashlib.sha256(header.encode() + base64.b64decode(event["state"])).digest()
    data = int(event["position"]).to_bytes(8, "big", signed=True) + digest
    return hashlib.sha256(b"\x00" + data).digest()


def root_from_path(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes | None:
    if not 0 <= index < size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None


def check_signature(checkpoint: dict[str, Any], public_key: Ed25519PublicKey) -> str:
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        return "not a ledger checkpoint"
    body = {k: v for k, v in checkpoint.items() if k != "signature"}
    signed = json.dumps(body, sort_keys=True, separators=(",", ":")).encode("ascii")
    try:
        public_key.verify(base64.b64decode(checkpoint["signature"]), signed)
    except (InvalidSignature, ValueError):
        return "the checkpoint's signature does not match (forged, altered or another key)"
    return ""


def check(proof: dict[str, Any], public_key: Ed25519PublicKey) -> list[str]:
    """Problems found (an empty list: the proof holds)."""
    if proof.get("format") != PROOF_FORMAT:
        return ["not a ledger inclusion proof"]
    checkpoint = proof["checkpoint"]
    if problem := check_signature(checkpoint, public_key):
        return [problem]
    size, root = int(checkpoint["tree_size"]), bytes.fromhex(checkpoint["root_hash"])
    problems = []
    if not proof["events"]:
        problems.append("the proof holds no events")
    for event in proof["events"]:
        path = [bytes.fromhex(node) for node in event["audit_path"]]
        computed = root_from_path(int(event["leaf_index"]), size, leaf_hash(event), path)
        if computed != root:
            problems.append(f"event at log position {event['position']} is not in the tree")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("proof", type=Path, help="JSON printed by `ledger prove` (- for stdin)")
    parser.add_argument("--public-key", type=Path, required=True, help="Ed25519 public key (PEM)")
    args = parser.parse_args()
    try:
        text = sys.stdin.read() if str(args.proof) == "-" else args.proof.read_text()
        proof = json.loads(text)
        key = serialization.load_pem_public_key(args.public_key.read_bytes())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the public key is not an Ed25519 key")
        problems = check(proof, key)
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(f"error: unusable input: {error}", file=sys.stderr)
        return 2
    checkpoint = proof["checkpoint"]
    if problems:
        for problem in problems:
            print(f"FAILED: {problem}", file=sys.stderr)
        return 1
    for event in proof["events"]:
        print(
            f"OK: {event['topic'].rpartition(':')[2]} v{event['aggregate_version']} of "
            f"{event['aggregate_id']} at log position {event['position']}"
        )
    print(
        f"all {len(proof['events'])} events of {proof.get('entity', '?')} are in the log of "
        f"store {checkpoint['origin']} signed at {checkpoint['timestamp']} "
        f"(size {checkpoint['tree_size']}, key {checkpoint['key_id']})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
