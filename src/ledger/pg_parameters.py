"""The libpq connection parameters a postgresql:// LEDGER_STORE may carry in its query
string (``?sslmode=verify-full&sslrootcert=...``): TLS, timeouts, keepalives, the session.

Only the names below are taken; where, who and the password stay in the URL itself.
"""

from __future__ import annotations

from functools import cache
from urllib.parse import unquote

PARAMETERS = (
    "application_name",
    "channel_binding",
    "connect_timeout",
    "gssencmode",
    "keepalives",
    "keepalives_count",
    "keepalives_idle",
    "keepalives_interval",
    "options",
    "passfile",
    "sslcert",
    "sslcrl",
    "sslkey",
    "sslmode",
    "sslnegotiation",
    "sslrootcert",
    "target_session_attrs",
    "tcp_user_timeout",
)
CHOICES = {
    "channel_binding": ("disable", "prefer", "require"),
    "gssencmode": ("disable", "prefer", "require"),
    "keepalives": ("0", "1"),
    "sslmode": ("disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
    "sslnegotiation": ("postgres", "direct"),
    "target_session_attrs": (
        "any", "read-write", "read-only", "primary", "standby", "prefer-standby",
    ),
}  # fmt: skip
WHOLE_NUMBERS = (
    "connect_timeout",
    "keepalives_count",
    "keepalives_idle",
    "keepalives_interval",
    "tcp_user_timeout",
)


def parse_parameters(query: str) -> dict[str, str]:
    """The connection parameters of a LEDGER_STORE query string, checked: a name not in
    ``PARAMETERS`` (or unknown to this libpq), a repeated one, or a value libpq would
    refuse raises a one-line ValueError."""
    parameters: dict[str, str] = {}
    for part in filter(None, query.split("&")):
        # Decoded as libpq decodes a URI: %XX escapes only ('+' stays '+').
        raw_name, _, raw_value = part.partition("=")
        name, value = unquote(raw_name), unquote(raw_value)
        if name not in PARAMETERS:
            raise ValueError(
                f"LEDGER_STORE: unknown connection parameter {name!r} in the query string "
                f"(allowed: {', '.join(PARAMETERS)})"
            )
        if name not in _libpq_parameters():
            raise ValueError(
                f"LEDGER_STORE: connection parameter {name!r} needs a newer libpq than "
                f"this one ({_libpq_version()})"
            )
        if name in parameters:
            raise ValueError(f"LEDGER_STORE: connection parameter {name!r} is given twice")
        _check_value(name, value)
        parameters[name] = value
    return parameters


def _check_value(name: str, value: str) -> None:
    if not value:
        raise ValueError(f"LEDGER_STORE: connection parameter {name!r} has no value")
    choices = CHOICES.get(name)
    if choices is not None and value not in choices:
        raise ValueError(f"LEDGER_STORE: {name}={value!r} is not one of {', '.join(choices)}")
    if name in WHOLE_NUMBERS and not value.isdigit():
        raise ValueError(f"LEDGER_STORE: {name}={value!r} must be a whole number")


@cache
def _libpq_parameters() -> frozenset[str]:
    """The parameter names the libpq psycopg runs on knows."""
    from psycopg import pq  # only a PostgreSQL store with a query string needs it

    return frozenset(option.keyword.decode() for option in pq.Conninfo.get_defaults())


def _libpq_version() -> str:
    from psycopg import pq

    version = pq.version()
    return f"libpq {version // 10000}.{version % 10000}"
