"""Receive the ledger's webhooks and start GitHub workflows with them.

Each webhook is a CloudEvents 1.0 event (``application/cloudevents+json``) signed per the
Standard Webhooks spec. The receiver checks the signature with the secret the subscription
was created with, then posts a ``repository_dispatch`` to GitHub: ``event_type`` is the
CloudEvent's type (``ledger.model_version.registered``...) and ``client_payload`` the
whole CloudEvent, so a workflow reads ``github.event.client_payload.data``.

Answers: 202 forwarded (or forwarded before: a redelivery is not sent twice), 401 bad
signature, 400 not a CloudEvent, 413 too large, 502 GitHub refused or could not be reached
(the ledger retries it later).

    LEDGER_WEBHOOK_SECRET=whsec_... GITHUB_REPOSITORY=owner/repo GITHUB_TOKEN=ghp_... \\
        python examples/ci/receiver.py --port 8088
    ledger webhook create github http://HOST:8088/ --events 'ledger.model_version.*' \\
        --secret-file secret.txt

GITHUB_TOKEN needs the repository's "Contents: write" permission (fine-grained) or
``repo`` scope; GITHUB_API_URL points at GitHub Enterprise (default https://api.github.com).
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import urllib.error
import urllib.request
from collections import OrderedDict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

MAX_BODY = 1 << 20
GITHUB_TIMEOUT_S = 5  # under the ledger's 10 s delivery timeout
REMEMBERED_IDS = 10_000


@dataclass(frozen=True)
class Config:
    secret: str
    repository: str  # owner/name
    github_token: str
    github_api: str = "https://api.github.com"

    @classmethod
    def from_env(cls) -> Config:
        missing = [
            name
            for name in ("LEDGER_WEBHOOK_SECRET", "GITHUB_REPOSITORY", "GITHUB_TOKEN")
            if not os.environ.get(name)
        ]
        if missing:
            raise SystemExit(f"receiver: set {', '.join(missing)}")
        return cls(
            secret=os.environ["LEDGER_WEBHOOK_SECRET"],
            repository=os.environ["GITHUB_REPOSITORY"],
            github_token=os.environ["GITHUB_TOKEN"],
            github_api=os.environ.get("GITHUB_API_URL") or cls.github_api,
        )


class Forwarded:
    """The webhook ids already forwarded (the ledger delivers at least once)."""

    def __init__(self) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, webhook_id: object) -> bool:
        with self._lock:
            return webhook_id in self._ids

    def add(self, webhook_id: str) -> None:
        with self._lock:
            self._ids[webhook_id] = None
            while len(self._ids) > REMEMBERED_IDS:
                self._ids.popitem(last=False)


def dispatch(config: Config, event: dict[str, Any]) -> tuple[int, str]:
    """POST the event as a repository_dispatch; GitHub's status and the start of its answer."""
    body = json.dumps({"event_type": event["type"], "client_payload": event}).encode()
    request = urllib.request.Request(
        f"{config.github_api.rstrip('/')}/repos/{config.repository}/dispatches",
        data=body,
        method="POST",
        headers={
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {config.github_token}",
            "X-GitHub-Api-Version": "2022-11-28",
            "Content-Type": "application/json",
            "User-Agent": "lifecycle-ledger-receiver",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=GITHUB_TIMEOUT_S) as response:
            return response.status, response.read(500).decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read(500).decode(errors="replace")
    except (urllib.error.URLError, TimeoutError) as error:
        return 0, str(error)


class Receiver(BaseHTTPRequestHandler):
    """One webhook: verify, forward, answer."""

    server: ReceiverServer

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length", "")
        if not length.isdigit() or int(length) > MAX_BODY:
            return self._answer(413, {"error": f"give a Content-Length of at most {MAX_BODY}"})
        body = self.rfile.read(int(length))
        try:
            self.server.webhook.verify(body, dict(self.headers.items()), json_parse=False)
        except WebhookVerificationError as error:
            return self._answer(401, {"error": f"signature: {error}"})
        try:
            event = json.loads(body)
        except ValueError:
            event = None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return self._answer(400, {"error": "expected a CloudEvent with a type"})
        webhook_id = self.headers["webhook-id"]
        if webhook_id in self.server.forwarded:
            return self._answer(202, {"forwarded": event["type"], "again": True})
        status, answer = dispatch(self.server.config, event)
        if not 200 <= status < 300:
            return self._answer(502, {"error": f"GitHub answered {status or 'nothing'}: {answer}"})
        self.server.forwarded.add(webhook_id)
        return self._answer(202, {"forwarded": event["type"]})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        if os.environ.get("RECEIVER_QUIET") != "1":
            super().log_message(format, *args)


class ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], config: Config) -> None:
        super().__init__(address, Receiver)
        self.config = config
        self.webhook = Webhook(config.secret)
        self.forwarded = Forwarded()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8088)
    arguments = parser.parse_args()
    server = ReceiverServer((arguments.host, arguments.port), Config.from_env())
    print(f"receiver: forwarding to {server.config.repository} from port {server.server_port}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
