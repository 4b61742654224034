"""examples/ci/receiver.py: signed ledger webhooks in, GitHub repository_dispatch out.

A real receiver and a fake GitHub API (a local HTTP server that records what it gets)
run on free ports; webhooks are signed with the Standard Webhooks reference library.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from tests.conftest import free_port
from tests.paths import REPO

SECRET = "whsec_" + base64.b64encode(b"a secret of thirty-two bytes....").decode()
EVENT: dict[str, Any] = {
    "specversion": "1.0",
    "id": "0b6a3c1e-5d1f-5b7e-9a54-2f2b1d2c3e4f/1",
    "source": "urn:lifecycle-ledger",
    "type": "ledger.model_version.registered",
    "subject": "model_version/0b6a3c1e-5d1f-5b7e-9a54-2f2b1d2c3e4f",
    "time": "2026-12-07T03:00:00+00:00",
    "datacontenttype": "application/json",
    "ledgerposition": 7,
    "data": {"position": 7, "actor": "ci-bot", "data": {"model_name": "iris", "version": 1}},
}


def load_receiver() -> ModuleType:
    path = REPO / "examples" / "ci" / "receiver.py"
    spec = importlib.util.spec_from_file_location("ci_receiver", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


receiver = load_receiver()


@dataclass
class FakeGitHub:
    """What the fake GitHub API received, and the status it answers with."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    status: int = 204


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            fake.requests.append(
                {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
            )
            self.send_response(fake.status)
            answer = b"" if fake.status == 204 else b'{"message": "Bad credentials"}'
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def receiver_url(github: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("RECEIVER_QUIET", "1")
    config = receiver.Config(
        secret=SECRET, repository="acme/models", github_token="ghs_test", github_api=github.url
    )
    server = receiver.ReceiverServer(("127.0.0.1", 0), config)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


def signed(
    body: bytes, secret: str = SECRET, msg_id: str = "msg_1", at: datetime | None = None
) -> dict[str, str]:
    at = at or datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
        "content-type": "application/cloudevents+json",
    }


def post(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(url, content=body, headers=headers, timeout=10)


def test_a_signed_event_is_forwarded_as_a_repository_dispatch(
    receiver_url: str, github: FakeGitHub
) -> None:
    body = json.dumps(EVENT).encode()
    answer = post(receiver_url, body, signed(body))
    assert answer.status_code == 202, answer.text
    (request,) = github.requests
    assert request["path"] == "/repos/acme/models/dispatches"
    assert request["headers"]["Authorization"] == "Bearer ghs_test"
    assert request["headers"]["Accept"] == "application/vnd.github+json"
    assert request["body"] == {"event_type": EVENT["type"], "client_payload": EVENT}
    assert len(request["body"]["client_payload"]) <= 10  # GitHub's limit on top-level keys


def test_a_redelivery_is_not_forwarded_twice(receiver_url: str, github: FakeGitHub) -> None:
    body = json.dumps(EVENT).encode()
    assert post(receiver_url, body, signed(body, msg_id="msg_a")).status_code == 202
    assert post(receiver_url, body, signed(body, msg_id="msg_a")).status_code == 202
    assert post(receiver_url, body, signed(body, msg_id="msg_b")).status_code == 202
    assert len(github.requests) == 2


@pytest.mark.parametrize("case", ["tampered", "wrong secret", "too old", "unsigned"])
def test_a_bad_signature_is_401_and_nothing_is_forwarded(
    receiver_url: str, github: FakeGitHub, case: str
) -> None:
    body = json.dumps(EVENT).encode()
    other_secret = "whsec_" + base64.b64encode(b"another secret").decode()
    headers = {
        "tampered": signed(body),
        "wrong secret": signed(body, secret=other_secret),
        "too old": signed(body, at=datetime.now(UTC) - timedelta(minutes=10)),
        "unsigned": {"content-type": "application/json"},
    }[case]
    sent = body.replace(b'"iris"', b'"evil"') if case == "tampered" else body
    answer = post(receiver_url, sent, headers)
    assert answer.status_code == 401 and "signature" in answer.json()["error"]
    assert github.requests == []


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"id": "x"}'])
def test_a_signed_body_that_is_not_a_cloudevent_is_400(
    receiver_url: str, github: FakeGitHub, body: bytes
) -> None:
    assert post(receiver_url, body, signed(body)).status_code == 400
    assert github.requests == []


def test_github_refusing_is_502_so_the_ledger_retries(
    receiver_url: str, github: FakeGitHub
) -> None:
    github.status = 401
    body = json.dumps(EVENT).encode()
    answer = post(receiver_url, body, signed(body, msg_id="msg_r"))
    assert answer.status_code == 502 and "GitHub answered 401" in answer.json()["error"]
    github.status = 204  # the retry goes through: a refusal is not remembered as forwarded
    assert post(receiver_url, body, signed(body, msg_id="msg_r")).status_code == 202
    assert len(github.requests) == 2


def test_github_unreachable_is_502(github: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECEIVER_QUIET", "1")
    config = receiver.Config(
        SECRET, "acme/models", "t", github_api=f"http://127.0.0.1:{free_port()}"
    )
    server = receiver.ReceiverServer(("127.0.0.1", 0), config)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        body = json.dumps(EVENT).encode()
        answer = post(f"http://127.0.0.1:{server.server_port}/", body, signed(body))
        assert answer.status_code == 502 and "GitHub answered nothing" in answer.json()["error"]
    finally:
        server.shutdown()
        server.server_close()


def test_the_script_runs_from_its_environment(github: FakeGitHub) -> None:
    script = REPO / "examples" / "ci" / "receiver.py"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "LEDGER_"))}
    refused = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=30
    )
    assert refused.returncode != 0
    assert "set LEDGER_WEBHOOK_SECRET, GITHUB_REPOSITORY, GITHUB_TOKEN" in refused.stderr

    port = free_port()
    env |= {
        "LEDGER_WEBHOOK_SECRET": SECRET,
        "GITHUB_REPOSITORY": "acme/models",
        "GITHUB_TOKEN": "ghs_env",
        "GITHUB_API_URL": github.url,
    }
    process = subprocess.Popen(
        [sys.executable, str(script), "--port", str(port)], env=env, stderr=subprocess.DEVNULL
    )
    try:
        body = json.dumps(EVENT).encode()
        deadline = time.monotonic() + 20
        while True:
            try:
                answer = post(f"http://127.0.0.1:{port}/", body, signed(body))
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert answer.status_code == 202
        assert github.requests[0]["headers"]["Authorization"] == "Bearer ghs_env"
    finally:
        process.terminate()
        process.wait(timeout=10)
