"""moto's standalone S3 server and Azurite (the Azure Storage emulator, installed from npm
by scripts/bootstrap.sh into .venv/azurite) as processes of their own, for the tests
(tests/object_stores.py) and the benchmarks (benchmarks/artifacts.py). Plain Python: no
pytest, so that a benchmark can start them too.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
AZURITE = ROOT / ".venv" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
# Azurite's well-known development account (public, the same in every emulator).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


@dataclass
class ObjectStoreServer:
    """A running S3 or Azure Blob server: ``kind`` is ``s3`` or ``az``, ``env`` what a
    client needs to reach it."""

    kind: str
    endpoint: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    created: list[str] = field(default_factory=list)

    def new_location(self, prefix: str = "artifacts") -> str:
        """A fresh bucket (container) and the store URL of ``prefix`` in it."""
        name = f"ledger-{uuid.uuid4().hex[:16]}"
        if self.kind == "s3":
            s3_client(self.endpoint).create_bucket(Bucket=name)
        else:
            azure_client(self.endpoint).create_container(name)
        self.created.append(name)
        return f"{self.kind}://{name}/{prefix}"


def s3_client(endpoint: str):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id="testing",
        aws_secret_access_key="testing", region_name="us-east-1",
    )  # fmt: skip


def azure_client(endpoint: str):  # type: ignore[no-untyped-def]
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient(f"{endpoint}/{AZURITE_ACCOUNT}", credential={
        "account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY})  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start in 60 s")
        time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server: SIGTERM, then SIGKILL (Azurite's node process may not exit on TERM)."""
    process.terminate()
    try:
        process.wait(3)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


@contextmanager
def moto_server() -> Iterator[ObjectStoreServer]:
    """moto's standalone S3 server on a free port."""
    port = free_port()
    binary = shutil.which("moto_server", path=os.path.dirname(sys.executable))
    if not binary:
        raise RuntimeError("moto[server] is not installed (scripts/bootstrap.sh installs it)")
    process = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}  # fmt: skip
    try:
        _wait_until_up(endpoint, process, "moto_server")
        yield ObjectStoreServer("s3", endpoint, env, process)
    finally:
        _stop(process)


@contextmanager
def azurite_server() -> Iterator[ObjectStoreServer]:
    """Azurite's blob service on a free port, its data in a temporary folder
    (FileNotFoundError when Azurite is not installed)."""
    if not AZURITE.exists():
        raise FileNotFoundError(
            f"Azurite is not installed at {AZURITE} (scripts/bootstrap.sh installs it)"
        )
    port = free_port()
    data = tempfile.mkdtemp(prefix="ledger-azurite-")
    process = subprocess.Popen(
        [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", data,
         "--silent", "--skipApiVersionCheck", "--loose"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AZURE_STORAGE_USE_EMULATOR": "true", "AZURITE_BLOB_STORAGE_URL": endpoint}
    try:
        _wait_until_up(endpoint, process, "Azurite")
        yield ObjectStoreServer("az", endpoint, env, process)
    finally:
        _stop(process)
        shutil.rmtree(data, ignore_errors=True)
