"""API tokens: issue, reissue and revoke. The secret is shown once; only its hash is stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from ledger.application import LedgerApplication
from ledger.domain.token import ApiToken, check_role, token_id
from ledger.refs import check_name

TOKEN_PREFIX = "llt_"


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    name: str
    role: str
    secret: str  # shown to the user once, never stored


class TokenCommands:
    """Commands for the tokens the HTTP API authenticates with."""

    def __init__(self, application: LedgerApplication) -> None:
        self._app = application

    def create(self, name: str, role: str, *, reason: str = "") -> IssuedToken:
        """A new secret for ``name`` (a revoked name can be issued again)."""
        check_name(name, "token name")
        checked_role = check_role(role)
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        digest = hash_token(secret)

        def command() -> IssuedToken:
            token = self._app.find(ApiToken, token_id(name), for_update=True)
            if token is None:
                token = ApiToken.issue(name, checked_role, digest)
            else:
                token.reissue(checked_role, digest)
            self._app.save(token)
            return IssuedToken(name, checked_role, secret)

        return self._app.execute(reason, command)

    def revoke(self, name: str, *, reason: str = "") -> None:
        self._app.change(
            lambda: self._app.load(ApiToken, token_id(name), f"token {name!r}"),
            ApiToken.revoke,
            reason,
        )
