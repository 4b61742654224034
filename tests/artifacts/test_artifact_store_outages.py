"""An artifact store that goes away is an outage, as a database's is: the API answers 503
with Retry-After (MLflow's routes TEMPORARILY_UNAVAILABLE), the CLI prints one line and
exits 1, nothing is recorded for a file that could not be stored, and once the store is
back the same server serves again. The S3 server (moto) is reached through a proxy that
the test turns off; requests are retried for LEDGER_ARTIFACTS_RETRY_S (short here).

SQLite only: how events are stored has no part in how an artifact store's outage is met.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from ledger.ledger import Ledger
from tests.conftest import Cli, StoreFactory, _env_with, _with, free_port, running_api
from tests.fault_proxy import CuttingProxy
from tests.object_stores import ObjectStoreServer

FILES = {"weights.bin": bytes(range(256)) * 64, "config.json": b"{}"}
MLFLOW = "/api/2.0/mlflow-artifacts/artifacts"


class Switch:
    """Turns the S3 server off and on, as seen through the proxy."""

    def __init__(self, proxy: CuttingProxy, target: tuple[str, int]) -> None:
        self.proxy, self.target = proxy, target

    def off(self) -> None:
        self.proxy.target = ("127.0.0.1", free_port())  # nothing listens: connections end
        self.proxy.cut_all()

    def on(self) -> None:
        self.proxy.target = self.target


@pytest.fixture
def switch(s3_server: ObjectStoreServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Switch]:
    parts = urlsplit(s3_server.endpoint)
    target = (parts.hostname or "127.0.0.1", parts.port or 80)
    with CuttingProxy(target, cut_every=3600) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{proxy.port}")
        yield Switch(proxy, target)


@pytest.fixture
def store(s3_server: ObjectStoreServer, switch: Switch, tmp_path: Path) -> Iterator[StoreFactory]:
    """SQLite, artifacts in a bucket reached through the switch, retried for 0.5 s."""
    factory = StoreFactory("sqlite", tmp_path)
    overrides = {"artifacts": s3_server.new_location(), "artifacts_retry_s": 0.5}
    factory.settings = _with(factory.settings, overrides)  # type: ignore[method-assign]
    factory.env = _env_with(factory.env, overrides)  # type: ignore[method-assign]
    yield factory


def _register(store: StoreFactory, tmp_path: Path) -> int:
    """Register iris:1 (while the store is there); return the events in the log."""
    source = tmp_path / "model"
    source.mkdir()
    for name, data in FILES.items():
        (source / name).write_bytes(data)
    with Ledger(store.settings()) as ledger:
        ledger.models.register_version("iris", source)
        return ledger.event_count()


def _unavailable(response: httpx.Response, location: str) -> None:
    assert response.status_code == 503, (response.status_code, response.text[:300])
    assert response.headers["retry-after"]
    text = response.text
    assert f"the artifact store {location} is unavailable: it cannot be reached" in text


def test_the_api_answers_503_while_the_store_is_away_then_serves_again(
    store: StoreFactory, switch: Switch, tmp_path: Path
) -> None:
    _register(store, tmp_path)
    location = store.settings().artifacts_location
    with running_api(store.settings()) as api:
        reader, writer = api.auth("reader"), api.auth("contributor")
        one_file = "/models/iris/versions/1/files/weights.bin"
        assert api.client.get(one_file, headers=reader).content == FILES["weights.bin"]
        head = api.head()

        switch.off()
        _unavailable(api.client.get(one_file, headers=reader), location)
        _unavailable(api.client.get("/models/iris/versions/1/download", headers=reader), location)
        upload = [("files", ("weights.bin", b"new weights"))]
        _unavailable(api.client.post("/models/iris/versions", files=upload, headers=writer),
                     location)  # fmt: skip
        data = {"file": ("train.csv", b"x\n1\n", "text/csv")}
        _unavailable(api.client.post("/data/train/versions", files=data, headers=writer),
                     location)  # fmt: skip
        mlflow_get = api.client.get(f"{MLFLOW}/ledger/models/iris/1/weights.bin", headers=reader)
        _unavailable(mlflow_get, location)
        assert mlflow_get.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
        mlflow_put = api.client.put(f"{MLFLOW}/0/r/artifacts/x.bin", content=b"x", headers=writer)
        _unavailable(mlflow_put, location)
        assert api.head() == head, "nothing may be recorded for files that were not stored"

        switch.on()  # the same server, not restarted
        assert api.client.get(one_file, headers=reader).content == FILES["weights.bin"]
        created = api.client.post("/models/iris/versions", files=upload, headers=writer)
        assert created.status_code == 201, created.text


def test_the_cli_says_the_store_is_away_in_one_line(
    store: StoreFactory, switch: Switch, cli: Cli, tmp_path: Path
) -> None:
    events = _register(store, tmp_path)
    location = store.settings().artifacts_location
    switch.off()
    out = tmp_path / "downloads" / "iris"
    source = tmp_path / "model"
    for args in (
        ("model", "download", "iris:1", str(out)),
        ("verify", "--artifacts"),
        ("model", "register", "iris", str(source)),
    ):
        started = time.monotonic()
        result = cli(*args)
        # LEDGER_ARTIFACTS_RETRY_S (0.5 s) bounds the retries, not obstore's 3 minutes
        assert time.monotonic() - started < 15, args
        assert result.code == 1, (args, result)
        assert result.err.startswith(
            f"error: the artifact store {location} is unavailable: it cannot be reached"
        ), (args, result.err)
        assert "Traceback" not in result.err and len(result.err.strip().splitlines()) == 1
    assert not out.exists() and list(out.parent.iterdir()) == []
    with Ledger(store.settings()) as ledger:
        assert ledger.event_count() == events, "a version whose files were not stored"
