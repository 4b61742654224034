"""Acceptance (issue 23): a 2 GiB model upload over HTTP into S3 keeps the server's memory
under 300 MiB and makes one copy.

``ledger serve`` runs as users run it, its artifacts on moto's S3 server. The client
streams a form built by hand (the ``sha256`` field, then the file, made of pseudo-random
blocks as it is sent): never 2 GiB in the test's memory either. Meanwhile the server's
resident memory (its process and any children) is sampled every 0.1 s, and its temporary
folder and ledger home are watched for large files. Afterwards the bucket holds exactly
one object: the blob. moto's own memory and disk are moto's, not the server's.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ledger.ledger import Ledger
from tests.conftest import StoreFactory
from tests.object_store_servers import ObjectStoreServer, s3_client
from tests.server_support import serving

SIZE = 2 * 1024**3
BLOCK = 1024 * 1024
RSS_LIMIT = 300 * 1024 * 1024
UPLOAD_GROWTH_LIMIT = 100 * 1024 * 1024  # parts in flight: about 40 MiB
LARGE_FILE = 64 * 1024 * 1024  # a file this big on the server's disk would be a copy
BOUNDARY = "acceptance-boundary-7f3a"
_SEEDS = 16


def _blocks() -> Iterator[bytes]:
    """The file's content: SIZE bytes of pseudo-random blocks, a block at a time."""
    blocks = [random.Random(seed).randbytes(BLOCK) for seed in range(_SEEDS)]
    for index in range(SIZE // BLOCK):
        yield blocks[(index * 7 + index // _SEEDS) % _SEEDS]


def _sha256() -> str:
    hasher = hashlib.sha256()
    for block in _blocks():
        hasher.update(block)
    return hasher.hexdigest()


def _form(digest: str) -> tuple[bytes, bytes]:
    """What comes before and after the file's bytes in the form."""
    fields = {"sha256": json.dumps({"big.bin": digest}), "flavor": "custom"}
    head = b"".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )
    head += (
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; "
        'name="files"; filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    return head, f"\r\n--{BOUNDARY}--\r\n".encode()


def _descendants(root: int) -> set[int]:
    """``root`` and every process below it."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found.update(children)
        frontier.extend(children)
    return found


def _rss(pids: set[int]) -> int:
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def _pss(pids: set[int]) -> int:
    """The processes' proportional set size: their own memory, and their share of the
    pages they map with other processes (shared libraries)."""
    total = 0
    for pid in pids:
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in rollup.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1]) * 1024
    return total


def _server_pid(url: str) -> int:
    """The `ledger serve` process this test started for ``url``."""
    port = url.rsplit(":", 1)[1]
    for pid in _descendants(os.getpid()) - {os.getpid()}:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in argv and port.encode() in argv:
            return pid
    raise AssertionError(f"no `ledger serve` process for {url}")


def _largest_file(folders: list[Path]) -> int:
    largest = 0
    for folder in folders:
        for current, _, names in os.walk(folder):
            for name in names:
                try:
                    largest = max(largest, os.stat(os.path.join(current, name)).st_size)
                except OSError:
                    continue
    return largest


class Watch:
    """Samples the server's memory and its folders' largest file every 0.1 s."""

    def __init__(self, pid: int, folders: list[Path]) -> None:
        self.pid, self.folders = pid, folders
        self.peak_rss = self.peak_pss = self.largest_file = self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = _descendants(self.pid)
            self.peak_rss = max(self.peak_rss, _rss(pids))
            self.peak_pss = max(self.peak_pss, _pss(pids))
            self.largest_file = max(self.largest_file, _largest_file(self.folders))
            self.samples += 1
            self._stop.wait(0.1)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.slow
def test_a_2_gib_upload_into_s3_stays_small_and_makes_one_copy(
    store: StoreFactory, s3_server: ObjectStoreServer, tmp_path: Path
) -> None:
    location = s3_server.new_location()
    settings = store.settings(artifacts=location)
    with Ledger(settings) as ledger:
        token = ledger.tokens.create("uploader", "contributor").secret
    server_tmp = tmp_path / "server-tmp"
    server_tmp.mkdir()
    digest = _sha256()
    head, tail = _form(digest)
    env = {"LEDGER_ARTIFACTS": location, "LEDGER_API_MAX_UPLOAD_MB": "3072",
           "TMPDIR": str(server_tmp)}  # fmt: skip

    def body() -> Iterator[bytes]:
        yield head
        yield from _blocks()
        yield tail

    auth = {"Authorization": f"Bearer {token}"}
    headers = {
        **auth,
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        "Content-Length": str(len(head) + SIZE + len(tail)),
    }
    with serving(store, **env) as url:
        pid = _server_pid(url)
        idle_rss = _rss(_descendants(pid))
        with Watch(pid, [tmp_path]) as watch:  # its TMPDIR and its ledger home
            started = time.monotonic()
            answer = httpx.post(f"{url}/models/big/versions", content=body(), headers=headers,
                                timeout=httpx.Timeout(30, read=900))  # fmt: skip
            elapsed = time.monotonic() - started
        assert answer.status_code == 201, answer.text
        version = answer.json()
        read = httpx.get(f"{url}/models/big/versions/1", headers=auth)
    mib = 1024 * 1024
    print(
        f"\n2 GiB upload into S3: {elapsed:.1f} s, {SIZE / mib / elapsed:.0f} MiB/s; server "
        f"RSS idle {idle_rss / mib:.0f} MiB, peak {watch.peak_rss / mib:.0f} MiB, PSS peak "
        f"{watch.peak_pss / mib:.0f} MiB "
        f"({watch.samples} samples); largest file on its disk: {watch.largest_file} bytes"
    )
    assert watch.samples >= 10
    # RSS also counts the shared libraries' pages that other processes made resident (on a
    # machine running the test suite, pyarrow's and Ray's: up to 50 MiB more); PSS counts
    # the server's share of them. And the upload itself adds little to what the server held.
    assert watch.peak_pss < RSS_LIMIT, (
        f"server memory (PSS) peaked at {watch.peak_pss / mib:.0f} MiB"
    )
    growth = watch.peak_rss - idle_rss
    assert growth < UPLOAD_GROWTH_LIMIT, f"the upload added {growth / mib:.0f} MiB of RSS"
    assert watch.largest_file < LARGE_FILE, "the upload was copied to the server's disk"
    assert version["files"] == [{"path": "big.bin", "sha256": digest, "size": SIZE}]
    assert read.status_code == 200 and read.json()["files"] == version["files"]
    bucket, prefix = location.removeprefix("s3://").split("/", 1)
    client = s3_client(s3_server.endpoint)
    objects = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert [(o["Key"], o["Size"]) for o in objects] == [
        (f"{prefix}/sha256/{digest[:2]}/{digest}", SIZE)
    ], "the store holds something besides the one blob"
    client.delete_object(Bucket=bucket, Key=objects[0]["Key"])  # moto keeps it in memory
