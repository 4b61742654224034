"""Damaging stored blobs the way a disk or a bucket can: a flipped byte, a truncated copy,
a deleted object. Written through the store's own objects (``store.blobs``), so the same
damage is done to a local directory, an S3 bucket or an Azure container."""

from __future__ import annotations

from collections.abc import Callable

from ledger.artifacts.store import ArtifactStore, blob_key


def flip_byte_in(data: bytearray) -> None:
    data[len(data) - 10] ^= 0x01  # near the end: every earlier chunk is intact


def stored_bytes(store: ArtifactStore, digest: str) -> bytes:
    with store.blobs.reader(blob_key(digest)) as stream:
        return stream.read()


def flip_byte(store: ArtifactStore, digest: str) -> None:
    data = bytearray(stored_bytes(store, digest))
    flip_byte_in(data)
    store.blobs.write(blob_key(digest), [bytes(data)])


def truncate(store: ArtifactStore, digest: str) -> None:
    data = stored_bytes(store, digest)
    store.blobs.write(blob_key(digest), [data[: len(data) // 2]])


def overwrite(store: ArtifactStore, digest: str, data: bytes) -> None:
    store.blobs.write(blob_key(digest), [data])


def delete(store: ArtifactStore, digest: str) -> None:
    assert store.has(digest)
    store.blobs.delete(blob_key(digest))


Damage = Callable[[ArtifactStore, str], None]
DAMAGES: dict[str, Damage] = {"flipped": flip_byte, "truncated": truncate, "deleted": delete}
