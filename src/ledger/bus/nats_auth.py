"""How the ledger authenticates to NATS: user and password, token, NKey seed or
credentials file, and TLS with a CA and an optional client certificate."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import nats
from nats.errors import AuthorizationError

from ledger.errors import BusCredentialsError, InvalidInputError
from ledger.settings import Settings

CHECK_TIMEOUT_S = 3
# What nats-py reports when the server refuses who we are (its -ERR texts).
REFUSALS = ("authorization violation", "authentication", "user authentication expired")


def describe_nats_url(url: str) -> str:
    """The server list without credentials (fit for logs and health)."""
    described = []
    for part in url.split(","):
        parts = urlsplit(part.strip())
        host = parts.netloc.rpartition("@")[2]
        described.append(parts._replace(netloc=host).geturl())
    return ",".join(described)


def nats_servers(settings: Settings) -> list[str]:
    """The server URLs of LEDGER_NATS_URL (comma-separated)."""
    return [url.strip() for url in settings.nats_url.split(",") if url.strip()]


def connect_options(settings: Settings) -> dict[str, Any]:
    """``nats.connect`` keyword arguments for the credentials and TLS the settings name."""
    options: dict[str, Any] = {}
    if settings.nats_user:
        options["user"] = settings.nats_user
        if settings.nats_password is not None:
            options["password"] = settings.nats_password.get_secret_value()
    if settings.nats_token is not None:
        options["token"] = settings.nats_token.get_secret_value()
    if settings.nats_nkey_seed is not None:
        options["nkeys_seed"] = str(_readable(settings.nats_nkey_seed, "LEDGER_NATS_NKEY_SEED"))
    if settings.nats_creds is not None:
        options["user_credentials"] = str(_readable(settings.nats_creds, "LEDGER_NATS_CREDS"))
    context = tls_context(settings)
    if context is not None:
        options["tls"] = context
    return options


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for LEDGER_NATS_TLS_*, or None (then a tls:// URL uses the
    system's CAs)."""
    if settings.nats_tls_ca is None and settings.nats_tls_cert is None:
        return None
    try:
        context = ssl.create_default_context(cafile=settings.nats_tls_ca)
        if settings.nats_tls_cert is not None:
            context.load_cert_chain(settings.nats_tls_cert, settings.nats_tls_key)
    except (OSError, ssl.SSLError) as error:
        raise InvalidInputError(f"NATS TLS settings: {error}") from None
    return context


def who(settings: Settings) -> str:
    """Who the ledger claims to be, for error messages (never a secret)."""
    if settings.nats_user:
        return f"user {settings.nats_user!r}"
    if settings.nats_creds is not None:
        return f"credentials file {settings.nats_creds}"
    if settings.nats_nkey_seed is not None:
        return f"the NKey in {settings.nats_nkey_seed}"
    if settings.nats_token is not None:
        return "a token"
    return "no credentials"


def is_refusal(error: BaseException | str) -> bool:
    """Whether an error (or its text) is NATS refusing who we are, or a TLS handshake that
    failed: mistakes of configuration, which retrying cannot mend."""
    if isinstance(error, AuthorizationError | ssl.SSLError):
        return True
    return any(refusal in str(error).lower() for refusal in REFUSALS)


def credentials_refused(settings: Settings, error: BaseException) -> BusCredentialsError:
    """The one-line error for credentials (or a TLS handshake) NATS refused."""
    where = describe_nats_url(settings.nats_url)
    if isinstance(error, ssl.SSLError):
        return BusCredentialsError(
            f"TLS with NATS at {where} failed: {error.reason or error}; check "
            "LEDGER_NATS_TLS_CA, LEDGER_NATS_TLS_CERT and LEDGER_NATS_TLS_KEY"
        )
    return BusCredentialsError(
        f"NATS at {where} refuses the credentials ({who(settings)}): "
        f"{str(error) or type(error).__name__}; check LEDGER_NATS_USER and "
        "LEDGER_NATS_PASSWORD, LEDGER_NATS_TOKEN, LEDGER_NATS_NKEY_SEED or LEDGER_NATS_CREDS"
    )


def check_nats_credentials(settings: Settings) -> None:
    """Raise BusCredentialsError at once when NATS refuses the credentials or the TLS
    handshake; NATS being unreachable is left to the services, which wait for it."""
    if settings.nats_url:
        asyncio.run(_check_credentials(settings))


async def _check_credentials(settings: Settings) -> None:
    refusals: list[BaseException] = []

    async def note(error: Exception) -> None:
        if is_refusal(error):
            refusals.append(error)

    try:
        client = await nats.connect(
            nats_servers(settings),
            connect_timeout=CHECK_TIMEOUT_S,
            allow_reconnect=False,
            error_cb=note,
            **connect_options(settings),
        )
    except Exception as error:
        if refusals or is_refusal(error):
            raise credentials_refused(settings, refusals[0] if refusals else error) from None
        return  # unreachable for now
    await client.close()


def _readable(path: Path, variable: str) -> Path:
    if not path.is_file():
        raise InvalidInputError(f"{variable}={path}: no such file")
    return path
