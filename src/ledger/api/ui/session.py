"""Sign-in sessions of the web UI: a signed cookie naming a token, and CSRF tokens.

The cookie holds the sha256 of the API token the user signed in with (never the token)
and a random nonce, signed and timestamped with the server's key; the token is looked up
on every request, so revoking it ends the session at once. Every form carries a CSRF
token derived from the nonce, which a page of another site cannot read.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from ledger.settings import Settings

SESSION_COOKIE = "ledger_session"
# The sign-in form's own CSRF nonce, set when the form is shown (login CSRF).
LOGIN_COOKIE = "ledger_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
LOGIN_FORM_S = 3600


@dataclass(frozen=True)
class Session:
    """What a valid session cookie says: whose token, and the nonce its CSRF token comes from."""

    token_hash: str
    nonce: str


class SessionKeys:
    """Signs session cookies and derives CSRF tokens with the server's key."""

    def __init__(self, settings: Settings) -> None:
        secret = settings.ui_session_secret
        self._key = (secret.get_secret_value() if secret else secrets.token_hex(32)).encode()
        self.max_age_s = int(settings.ui_session_hours * 3600)
        self._signer = URLSafeTimedSerializer(self._key, salt="ledger-ui-session")

    def new_session(self, token_hash: str) -> str:
        """A cookie value for a sign-in with the token whose hash is ``token_hash``."""
        return self._signer.dumps({"t": token_hash, "n": secrets.token_urlsafe(16)})

    def open(self, value: str) -> Session | None:
        """The session a cookie value holds; None when forged, damaged or expired."""
        try:
            data = self._signer.loads(value, max_age=self.max_age_s)
        except BadSignature:  # SignatureExpired is one too
            return None
        if not isinstance(data, dict) or not isinstance(data.get("t"), str):
            return None
        return Session(token_hash=data["t"], nonce=str(data.get("n", "")))

    def csrf_token(self, nonce: str) -> str:
        """The CSRF token of the session (or sign-in form) with this nonce."""
        return hmac.new(self._key, f"csrf:{nonce}".encode(), hashlib.sha256).hexdigest()
