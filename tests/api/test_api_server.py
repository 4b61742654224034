"""`ledger serve` as users run it: a real uvicorn server in its own process.

The event stream (SSE) is tested here: it never ends, so it needs a real server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson

from ledger.ledger import Ledger
from tests.conftest import Cli, StoreFactory, assert_user_error
from tests.server_support import serving


def _read_sse(lines: Iterator[str], count: int) -> list[dict[str, Any]]:
    """The next ``count`` events of an open stream's lines: id, type and payload."""
    events: list[dict[str, Any]] = []
    fields: dict[str, str] = {}
    for line in lines:
        if line == "":
            if "data" in fields:
                payload = orjson.loads(fields["data"])
                assert fields["id"] == str(payload["position"])
                assert fields["event"] == payload["type"]
                events.append(payload)
                if len(events) == count:
                    return events
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value
    raise AssertionError(f"the stream ended after {len(events)} events")


def test_sse_resumes_from_last_event_id_without_loss_or_repetition(store: StoreFactory) -> None:
    with Ledger(store.settings()) as ledger:
        token = ledger.tokens.create("dashboard", "reader").secret
        start = ledger.event_count()
        for number in range(30):
            ledger.models.register_version(f"m{number % 3}", _model_file(store))
    headers = {"Authorization": f"Bearer {token}"}
    with serving(store) as url, httpx.Client(base_url=url, headers=headers, timeout=10) as http:
        with http.stream("GET", f"/events/stream?after={start}") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            first = _read_sse(stream.iter_lines(), 25)  # a client drops mid-stream...
        with Ledger(store.settings()) as ledger:  # ...while others keep writing
            for number in range(20):
                ledger.models.set_tags(f"m{number % 3}", {"round": str(number)})
            head = ledger.event_count()
        resume = {"Last-Event-ID": str(first[-1]["position"])}
        with http.stream("GET", "/events/stream", headers=resume) as stream:
            lines = stream.iter_lines()
            rest = _read_sse(lines, head - first[-1]["position"])
            with Ledger(store.settings()) as ledger:  # live events arrive on the open stream
                ledger.models.set_tags("m0", {"live": "yes"})
            live = _read_sse(lines, 1)
    positions = [e["position"] for e in first + rest + live]
    assert positions == list(range(start + 1, head + 2))
    assert live[0]["type"] == "Model.Tagged" and live[0]["data"] == {"key": "live", "value": "yes"}
    assert all(e["actor"] == "tester" for e in first + rest)


def _model_file(store: StoreFactory) -> Any:
    path = store.tmp_path / "model.bin"
    path.write_bytes(b"weights")
    return path


def test_serve_answers_with_tokens_from_the_cli(store: StoreFactory, cli: Cli) -> None:
    created = cli("token", "create", "--name", "ops", "--role", "admin", "--json")
    assert created.code == 0, created
    secret = created.json()["token"]  # type: ignore[index]
    with serving(store) as url:
        headers = {"Authorization": f"Bearer {secret}"}
        assert httpx.get(f"{url}/tokens", headers=headers).json()[0]["name"] == "ops"
        assert httpx.get(f"{url}/models").status_code == 401
        docs = httpx.get(f"{url}/openapi.json").json()
        assert "/models/{name}/versions" in docs["paths"]
        revoked = cli("token", "revoke", "ops")
        assert revoked.code == 0, revoked
        deadline = time.monotonic() + 30  # generous: a bound on a hang, not a latency limit
        while httpx.get(f"{url}/tokens", headers=headers).status_code != 401:
            assert time.monotonic() < deadline, "the revoked token still works"
            time.sleep(0.05)
    listed = cli("token", "list", "--json").json()
    assert listed == [{**listed[0], "name": "ops", "role": "admin", "revoked": True}]  # type: ignore[index]


def test_token_cli_errors(cli: Cli) -> None:
    assert_user_error(cli("token", "create", "--name", "x", "--role", "root"), "unknown role")
    assert_user_error(cli("token", "revoke", "ghost"), "token 'ghost' does not exist")
    assert cli("token", "create", "--name", "x", "--role", "reader").code == 0
    assert_user_error(cli("token", "create", "--name", "x", "--role", "reader"), "revoke it first")


def test_serve_refuses_a_public_address_without_auth(cli: Cli, monkeypatch: Any) -> None:
    monkeypatch.setenv("LEDGER_API_AUTH", "false")
    result = cli("serve", "--host", "0.0.0.0", "--port", "1")
    assert_user_error(result, "refusing to serve on 0.0.0.0 with LEDGER_API_AUTH off")
