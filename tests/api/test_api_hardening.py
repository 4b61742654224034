"""What the HTTP API must not give away: server files, token hashes, an open door with
auth off, metrics without a token; and uploads it must refuse cleanly (400, not 500)."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from ledger.api import create_app
from ledger.bus.relay import Relay
from ledger.commands.tokens import hash_token
from ledger.errors import InvalidInputError
from ledger.ledger import Ledger
from ledger.settings import Settings
from tests.api.test_api_server import _read_sse
from tests.bus.test_bus import relayed
from tests.bus_support import in_background, wait_for, with_jetstream
from tests.conftest import Api, Cli, StoreFactory, running_api
from tests.server_support import serving

CSV = b"x,y\n1,a\n2,b\n3,a\n"


def _post_path(api: Api, path: str, name: str = "train") -> httpx.Response:
    return api.client.post(
        f"/data/{name}/versions", json={"path": path}, headers=api.auth("contributor")
    )


# -- server-side paths and data uploads (finding 8) ---------------------------------------


def test_server_side_paths_are_off_without_data_roots(api: Api, tmp_path: Path) -> None:
    readable = tmp_path / "server.csv"
    readable.write_bytes(CSV)
    head = api.head()
    refused = _post_path(api, str(readable))
    assert refused.status_code == 400, refused.text
    assert "LEDGER_DATA_ROOTS is empty" in refused.json()["detail"]
    assert api.head() == head


@pytest.fixture
def rooted(store: StoreFactory, tmp_path: Path) -> Iterator[Api]:
    """The API with one data root, ``tmp_path/root``."""
    (tmp_path / "root").mkdir()
    with running_api(store.settings(data_roots=[tmp_path / "root"])) as running:
        yield running


def test_paths_outside_the_roots_missing_or_escaping_get_one_answer(
    rooted: Api, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    secret = tmp_path / "secret.csv"  # readable by the server, outside the root
    secret.write_bytes(CSV)
    (root / "link.csv").symlink_to(secret)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "part.csv").write_bytes(CSV)
    (root / "linked_dir").symlink_to(tmp_path / "elsewhere")
    (root / "mixed").mkdir()  # a folder inside whose file links out, and one that dangles
    (root / "mixed" / "a.csv").write_bytes(CSV)
    (root / "mixed" / "b.csv").symlink_to(secret)
    (root / "dangling").mkdir()
    (root / "dangling" / "a.csv").write_bytes(CSV)
    (root / "dangling" / "b.csv").symlink_to(tmp_path / "no-such.csv")
    head = rooted.head()
    attempts = {
        "outside": str(secret),
        "missing outside": str(tmp_path / "no-such.csv"),
        "missing inside": str(root / "no-such.csv"),
        "symlink escape": str(root / "link.csv"),
        "dot-dot escape": f"{root}/../secret.csv",
        "linked folder": str(root / "linked_dir"),
        "folder with an escaping link": str(root / "mixed"),
        "folder with a dangling link": str(root / "dangling"),
        "relative": "secret.csv",
        "system file": "/etc/passwd",
    }
    answers = set()
    for what, path in attempts.items():
        refused = _post_path(rooted, path)
        assert refused.status_code == 400, (what, refused.text)
        answers.add(refused.json()["detail"].replace(repr(path), "PATH"))
    assert len(answers) == 1, answers  # the same words whether the file exists or not
    assert "LEDGER_DATA_ROOTS" in answers.pop()
    assert rooted.head() == head


def test_a_path_inside_a_root_is_profiled(rooted: Api, tmp_path: Path) -> None:
    inside = tmp_path / "root" / "sub" / "train.csv"
    inside.parent.mkdir()
    inside.write_bytes(CSV)
    created = _post_path(rooted, f"{tmp_path}/root/sub/../sub/train.csv")
    assert created.status_code == 201, created.text
    version = _data_version(rooted, "train", 1)
    assert version["content"]["uri"] == inside.resolve().as_uri()
    assert version["content"]["profile"]["rows"] == 3


def _data_version(api: Api, name: str, number: int) -> dict[str, Any]:
    got = api.client.get(f"/data/{name}/versions/{number}", headers=api.auth("reader"))
    assert got.status_code == 200, got.text
    result: dict[str, Any] = got.json()
    return result


def _upload_data(api: Api, filename: str, content: bytes, **form: str) -> httpx.Response:
    return api.client.post(
        "/data/train/versions",
        files={"file": (filename, content, "application/octet-stream")},
        data=form,
        headers=api.auth("contributor"),
    )


def test_data_uploads_are_profiled_and_kept(api: Api, tmp_path: Path) -> None:
    created = _upload_data(api, "train.csv", CSV, description="first cut", reason="baseline")
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 1 and created.json()["created"] is True
    version = _data_version(api, "train", 1)
    profile = version["content"]["profile"]
    assert profile["rows"] == 3 and profile["columns"]["y"]["top"][0] == ["a", 2]
    assert version["content"]["description"] == "first cut"
    kept = Path(version["content"]["uri"].removeprefix("file://"))
    assert kept.read_bytes() == CSV and kept.name == "train.csv"
    assert kept.is_relative_to(api.settings.artifacts_dir.resolve())
    again = _upload_data(api, "train.csv", CSV)
    assert again.status_code == 201 and again.json()["created"] is False

    pq.write_table(pa.table({"f": [1.5, 2.5]}), tmp_path / "t.parquet")
    parquet = _upload_data(api, "t.parquet", (tmp_path / "t.parquet").read_bytes())
    assert parquet.status_code == 201, parquet.text
    assert _data_version(api, "train", 2)["content"]["profile"]["format"] == "parquet"
    assert not any((api.settings.artifacts_dir / "tmp").iterdir()), "an upload left its file"


def test_bad_data_uploads_are_refused_without_server_paths(api: Api) -> None:
    head = api.head()
    staging = str(api.settings.artifacts_dir.resolve())
    for filename, content, fragment in [
        ("notes.txt", b"hello", "unsupported dataset file notes.txt"),
        ("broken.parquet", b"not parquet", "cannot read broken.parquet as Parquet"),
        ("x" * 252 + ".csv", CSV, "longer than 255 bytes"),
    ]:
        refused = _upload_data(api, filename, content)
        assert refused.status_code == 400, (filename, refused.text)
        detail = refused.json()["detail"]
        assert fragment in detail and staging not in detail, detail
    two = api.client.post(
        "/data/train/versions",
        files=[("file", ("a.csv", CSV)), ("file", ("b.csv", CSV))],
        headers=api.auth("contributor"),
    )
    assert two.status_code == 400, two.text
    assert api.head() == head
    assert not (api.settings.artifacts_dir / "data").exists()
    assert not any((api.settings.artifacts_dir / "tmp").iterdir()), "a refusal left its file"


# -- model uploads that cannot be written (finding 9) -------------------------------------


@pytest.mark.parametrize(
    "names",
    [
        ["a", "a/b"],
        ["a/b", "a"],
        ["x" * 256],
        ["ok.bin", "folder/" + "y" * 256],
    ],
    ids=["file-then-folder", "folder-then-file", "long-name", "long-nested-name"],
)
def test_uploads_that_cannot_be_written_get_400(api: Api, names: list[str]) -> None:
    head = api.head()
    refused = api.client.post(
        "/models/m/versions",
        files=[("files", (name, b"content")) for name in names],
        headers=api.auth("contributor"),
    )
    assert refused.status_code == 400, refused.text
    detail = refused.json()["detail"]
    assert "both a file and the folder" in detail or "longer than 255 bytes" in detail, detail
    assert api.head() == head
    assert not (api.settings.artifacts_dir / "sha256").exists()
    staging = api.settings.artifacts_dir / "tmp"
    assert not staging.exists() or not any(staging.iterdir())


# -- token hashes stay out of everything readers see (finding 9) --------------------------


def _issue_tokens(settings: Settings) -> list[str]:
    """Hashes of a token issued, and of the one issued again after a revoke."""
    with Ledger(settings) as ledger:
        first = ledger.tokens.create("ci", "reader").secret
        ledger.tokens.revoke("ci")
        second = ledger.tokens.create("ci", "contributor").secret
    return [hash_token(first), hash_token(second)]


def _assert_hidden(hashes: list[str], text: str, where: str) -> None:
    assert '"ci"' in text, f"{where}: the token events are not there"
    for digest in hashes:
        assert digest not in text, f"{where} shows a token hash"


def test_token_hashes_are_not_in_the_feed_audit_or_bus(nats_store: StoreFactory, cli: Cli) -> None:
    settings = nats_store.settings()
    hashes = _issue_tokens(settings)
    with running_api(settings) as api:
        reader = api.auth("reader")
        feed = api.client.get("/events?limit=1000", headers=reader)
        _assert_hidden(hashes, feed.text, "/events")
        audit = api.client.get("/audit?entity=token:ci&limit=100", headers=reader)
        assert audit.status_code == 200, audit.text
        _assert_hidden(hashes, audit.text, "/audit")
        head = api.head()
    with in_background(Relay(settings).run):
        wait_for(lambda: relayed(settings) >= head, 30, "the relay")

    async def payloads(js: Any) -> list[bytes]:
        return [(await js.get_msg(settings.nats_stream, seq)).data for seq in range(1, head + 1)]

    published = b"\n".join(with_jetstream(settings.nats_url, payloads)).decode()
    _assert_hidden(hashes, published, "NATS")
    tail = cli("events", "tail", "--from", "1", "-n", str(head), "--json")
    assert tail.code == 0, tail
    _assert_hidden(hashes, tail.out, "ledger events tail")


def test_token_hashes_are_not_on_the_event_stream_and_tokens_still_work(
    store: StoreFactory,
) -> None:
    hashes = _issue_tokens(store.settings())
    with Ledger(store.settings()) as ledger:
        token = ledger.tokens.create("dashboard", "reader").secret
        head = ledger.event_count()
    headers = {"Authorization": f"Bearer {token}"}
    with serving(store) as url, httpx.Client(base_url=url, headers=headers, timeout=10) as http:
        with http.stream("GET", "/events/stream?after=0") as stream:
            events = _read_sse(stream.iter_lines(), head)
        _assert_hidden(hashes, json.dumps(events), "/events/stream")
        assert http.get("/models").status_code == 200  # the views still match the hash


# -- auth off: this machine only (finding 9) ---------------------------------------------


def test_auth_off_refuses_other_machines_and_non_loopback_binds(store: StoreFactory) -> None:
    settings = store.settings(api_auth=False)
    for host in ("0.0.0.0", "10.0.0.1", "example.com"):
        with pytest.raises(InvalidInputError, match=re.escape(f"refusing to serve on {host}")):
            create_app(settings, host=host)
    with pytest.raises(InvalidInputError, match=re.escape("refusing to serve on 10.0.0.1")):
        create_app(store.settings(api_auth=False, api_host="10.0.0.1"))
    app = create_app(settings)
    with Ledger(settings) as ledger:
        head = ledger.event_count()

    def client_at(address: tuple[str, int]) -> TestClient:
        # In-process ASGI calls: the client address is only what the scope says.
        return TestClient(app, client=address, raise_server_exceptions=False)

    with client_at(("127.0.0.1", 1)):  # runs the app's lifespan once, for all of them
        for address in (("10.0.0.1", 40000), ("testclient", 50000), ("::ffff:10.0.0.1", 1)):
            got = client_at(address).get("/models")
            assert got.status_code == 403, (address, got.text)
            assert "LEDGER_API_AUTH off" in got.json()["detail"]
            written = client_at(address).post("/environments/py/versions", json={"spec": {}})
            assert written.status_code == 403, written.text
        for address in (("127.0.0.1", 40000), ("::1", 40000), ("::ffff:127.0.0.1", 1)):
            assert client_at(address).get("/models").status_code == 200, address
    with Ledger(settings) as ledger:
        assert ledger.event_count() == head


def test_auth_off_refuses_a_client_without_an_address(store: StoreFactory) -> None:
    app = create_app(store.settings(api_auth=False))
    sent: list[dict[str, Any]] = []

    async def call() -> None:
        scope = {
            "type": "http", "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": "/models", "raw_path": b"/models", "query_string": b"", "headers": [],
            "server": ("127.0.0.1", 8000), "client": None,
        }  # fmt: skip

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Any) -> None:
            sent.append(message)

        await app(scope, receive, send)

    asyncio.run(call())
    assert sent[0]["status"] == 403


# -- /metrics needs a token unless made public (finding 9) --------------------------------


def test_metrics_need_a_token_unless_public(store: StoreFactory) -> None:
    with running_api(store.settings(api_anonymous_reads=True)) as api:
        anonymous = api.client.get("/metrics")
        assert anonymous.status_code == 401, anonymous.text
        assert "LEDGER_API_PUBLIC_METRICS" in anonymous.json()["detail"]
        bad = api.client.get("/metrics", headers={"Authorization": "Bearer llt_nope"})
        assert bad.status_code == 401
        scraped = api.client.get("/metrics", headers=api.auth("reader"))
        assert scraped.status_code == 200 and "ledger_events_appended" in scraped.text


def test_metrics_can_be_made_public(store: StoreFactory) -> None:
    with running_api(store.settings(api_public_metrics=True)) as api:
        public = api.client.get("/metrics")
        assert public.status_code == 200 and "ledger_events_appended" in public.text


def test_data_roots_and_public_metrics_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEDGER_DATA_ROOTS", "/srv/data, /mnt/shared")
    monkeypatch.setenv("LEDGER_API_PUBLIC_METRICS", "true")
    settings = Settings()
    assert settings.data_roots == [Path("/srv/data"), Path("/mnt/shared")]
    assert settings.api_public_metrics is True
    monkeypatch.setenv("LEDGER_DATA_ROOTS", '["/a,b"]')
    assert Settings().data_roots == [Path("/a,b")]
    monkeypatch.delenv("LEDGER_DATA_ROOTS")
    assert Settings().data_roots == [] and os.environ.get("LEDGER_API_PUBLIC_METRICS")
