"""Webhook subscriptions: create, update, pause, resume, delete, ask for a redelivery.

The signing secret is generated here when none is given, written to its own table
before the event (which carries only its fingerprint) is saved, and shown once.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from ledger import command_ids
from ledger.application import LedgerApplication
from ledger.bus.events import BusEvent
from ledger.domain.webhook import (
    Webhook,
    check_url,
    not_selected,
    secret_fingerprint,
    webhook_id,
)
from ledger.errors import InvalidInputError, RuleViolationError
from ledger.expressions import compile_expression
from ledger.refs import check_name
from ledger.storage.database import LedgerDatabase
from ledger.storage.decoding import EventDecoder
from ledger.storage.feed import read_event
from ledger.storage.webhook_tables import read_secret, save_secret

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24
MIN_SECRET_BYTES = 24
MAX_DESCRIPTION = 1000


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and the base64 of 24 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def check_secret(secret: str) -> str:
    """``whsec_`` + base64 of at least 24 bytes; InvalidInputError otherwise."""
    secret = secret.strip()
    body = secret.removeprefix(SECRET_PREFIX)
    try:
        raw = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except ValueError:
        raw = b""
    if not secret.startswith(SECRET_PREFIX) or len(raw) < MIN_SECRET_BYTES:
        raise InvalidInputError(
            f"a webhook secret is {SECRET_PREFIX} followed by the base64 of at least "
            f"{MIN_SECRET_BYTES} random bytes (leave it out to have one generated)"
        )
    return secret


def check_filter(text: str) -> str:
    """The filter expression, compiled once to refuse bad ones ("" lets every event pass)."""
    if text.strip():
        compile_expression(text)
    return text.strip()


def check_allowed_host(url: str, allowed_hosts: list[str]) -> None:
    """With an allow-list (LEDGER_WEBHOOK_ALLOWED_HOSTS), the URL's host must be on it."""
    host = (urlsplit(url).hostname or "").lower()
    if allowed_hosts and host not in {h.lower() for h in allowed_hosts}:
        raise InvalidInputError(
            f"webhook URL host {host!r} is not in LEDGER_WEBHOOK_ALLOWED_HOSTS "
            f"({', '.join(allowed_hosts)})"
        )


@dataclass(frozen=True)
class CreatedWebhook:
    webhook: Webhook
    secret: str  # shown to the user once


class WebhookCommands:
    """Commands for webhook subscriptions (reads go through the webhooks view)."""

    def __init__(self, application: LedgerApplication) -> None:
        self._app = application

    def create(
        self,
        name: str,
        *,
        url: str,
        events: list[str],
        filter: str = "",
        secret: str = "",
        description: str = "",
        reason: str = "",
    ) -> CreatedWebhook:
        """Subscribe ``url`` to the events matching ``events`` (subject patterns) that pass
        ``filter``; deliveries are signed with ``secret`` (generated when empty)."""
        check_name(name, "webhook name")
        check_allowed_host(check_url(url), self._app.settings.webhook_allowed_hosts)
        checked_filter = check_filter(filter)
        signing = check_secret(secret) if secret else new_secret()
        fingerprint = secret_fingerprint(signing)
        _check_description(description)

        def command() -> Webhook:
            existing = self._app.find(Webhook, webhook_id(name))
            if existing is not None:
                raise RuleViolationError(
                    f"webhook {name!r} was deleted: its history keeps the name; choose another"
                    if existing.deleted
                    else f"webhook {name!r} already exists"
                )
            webhook = Webhook.create(
                name,
                url=url,
                events=events,
                filter=checked_filter,
                secret_fingerprint=fingerprint,
                description=description,
            )
            if command_ids.is_replaying():  # the first run's secret signs: this one is unused
                replayed.append(True)
            else:
                self._save_secret(name, fingerprint, signing)
            self._app.save(webhook)
            return webhook

        replayed: list[bool] = []
        webhook = self._app.execute(reason, command)
        if replayed:  # what the first run created, and its secret
            webhook = self._app.repository.get(webhook_id(name), version=1)
            signing = self._read_secret(name, webhook.secret_fingerprint)
        return CreatedWebhook(webhook, signing)

    def update(
        self,
        name: str,
        *,
        url: str | None = None,
        events: list[str] | None = None,
        filter: str | None = None,
        secret: str | None = None,
        description: str | None = None,
        reason: str = "",
    ) -> Webhook:
        """Change some settings; a new ``secret`` signs the deliveries from now on."""
        if url is not None:
            check_allowed_host(check_url(url), self._app.settings.webhook_allowed_hosts)
        checked_filter = None if filter is None else check_filter(filter)
        signing = None if secret is None else check_secret(secret)
        fingerprint = None if signing is None else secret_fingerprint(signing)
        if description is not None:
            _check_description(description)

        def change(webhook: Webhook) -> None:
            if signing is not None and fingerprint is not None:
                self._save_secret(name, fingerprint, signing)
            webhook.update(
                url=url,
                events=events,
                filter=checked_filter,
                secret_fingerprint=fingerprint,
                description=description,
            )

        return self._app.change(lambda: self.get(name), change, reason)

    def pause(self, name: str, *, cause: str = "user", reason: str = "") -> Webhook:
        """Hold deliveries (``cause`` "gone": the receiver answered 410 Gone)."""
        return self._app.change(lambda: self.get(name), lambda w: w.pause(cause), reason)

    def resume(self, name: str, *, reason: str = "") -> Webhook:
        """Deliver again, from where deliveries stopped."""
        return self._app.change(lambda: self.get(name), Webhook.resume, reason)

    def delete(self, name: str, *, reason: str = "") -> Webhook:
        return self._app.change(lambda: self.get(name), Webhook.delete, reason)

    def request_redelivery(self, name: str, event_id: str, *, reason: str = "") -> Webhook:
        """Send the ledger event ``event_id`` to the webhook once more (same webhook-id)."""
        db = LedgerDatabase(self._app.settings)
        try:
            event = BusEvent.from_envelope(read_event(db, EventDecoder(), event_id))
        finally:
            db.close()
        webhook = self.get(name)
        refusal = not_selected(webhook.events, webhook.filter, event)
        if refusal:
            raise InvalidInputError(f"webhook {name!r} is not sent event {event_id}: {refusal}")
        return self._app.change(
            lambda: self.get(name), lambda w: w.request_redelivery(event_id), reason
        )

    def get(self, name: str) -> Webhook:
        check_name(name, "webhook name")
        return self._app.load(Webhook, webhook_id(name), f"webhook {name!r}")

    def _read_secret(self, name: str, fingerprint: str) -> str:
        db = LedgerDatabase(self._app.settings)
        try:
            return read_secret(db, name, fingerprint)
        finally:
            db.close()

    def _save_secret(self, name: str, fingerprint: str, secret: str) -> None:
        db = LedgerDatabase(self._app.settings)
        try:
            save_secret(db, name, fingerprint, secret)
        finally:
            db.close()


def _check_description(description: str) -> None:
    if len(description) > MAX_DESCRIPTION:
        raise InvalidInputError(f"a description holds at most {MAX_DESCRIPTION} characters")
