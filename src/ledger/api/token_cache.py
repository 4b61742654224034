"""Who holds an API token, cached briefly so that a request does not read the views."""

from __future__ import annotations

import time

from ledger.api.view_pool import ViewPool
from ledger.domain import ApiToken
from projections.base import Change
from projections.tokens import token_holder

MAX_CACHED_TOKENS = 10_000
TOKEN_CACHE_S = 1.0
TOKEN_EVENTS = f"{ApiToken.__name__}."


class TokenCache:
    """(name, role) of the live token with a hash, read from the views and kept a moment.

    A revoke applied to the views by this server's follower takes effect at once (the
    follower calls :meth:`views_changed`); one applied by another process (a CLI read,
    another server) within TOKEN_CACHE_S.
    """

    def __init__(self, pool: ViewPool) -> None:
        self._pool = pool
        # Token hash -> (when read, (name, role) or None for no live token). Entries last
        # TOKEN_CACHE_S, and all go when this server's follower applies a token event.
        self._tokens: dict[str, tuple[float, tuple[str, str] | None]] = {}
        self._generation = 0

    def holder(self, token_hash: str) -> tuple[str, str] | None:
        """(name, role) of the live token with this hash, or None."""
        now = time.monotonic()
        cached = self._tokens.get(token_hash)
        if cached is not None and now - cached[0] < TOKEN_CACHE_S:
            return cached[1]
        generation = self._generation
        with self._pool.views() as views:
            holder = token_holder(views.db, token_hash)
        if generation == self._generation:  # no token event since the read
            if len(self._tokens) >= MAX_CACHED_TOKENS:
                self._tokens.clear()
            self._tokens[token_hash] = (now, holder)
        return holder

    def views_changed(self, changes: list[Change], committed_at: float) -> None:
        """Forget every cached answer when the views apply a token event."""
        if any(change.event_type.startswith(TOKEN_EVENTS) for change in changes):
            self._generation += 1
            self._tokens.clear()
