"""Following the event log: catch up, wait for the next append, again, until stopped.

Nothing ends the loop but ``stop``: when the store goes away (a restart, a network
cut), failed catch-ups are retried with a short backoff and logged in one line (the
first of a streak, then about once a minute), and the LISTEN connection comes back by
itself (``Listener``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ledger.logging import get_logger
from ledger.outages import first_line, is_store_unavailable
from ledger.storage.connections import Listener

FIRST_BACKOFF_S = 0.1
MAX_BACKOFF_S = 1.0  # kept short: the views catch up within a second of the store's return
LOG_EVERY = 60
log = get_logger(__name__)


def follow_log(
    catch_up: Callable[[], object],
    listener: Listener,
    stop: threading.Event,
    wait_s: float,
    *,
    what: str = "views",
) -> None:
    """Call ``catch_up``, then wait for an append (at most ``wait_s``), until ``stop``."""
    failures = 0
    while not stop.is_set():
        try:
            catch_up()
            if failures:
                log.warning("the store is back; following the log again", follower=what)
                failures = 0
            listener.wait(wait_s)
        except Exception as error:
            failures += 1
            if failures % LOG_EVERY == 1:  # the first of an outage, then about once a minute
                _log_failure(what, error)
            stop.wait(min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** (failures - 1)))


def _log_failure(what: str, error: Exception) -> None:
    if is_store_unavailable(error):
        log.warning(
            "the event store is unavailable; retrying", follower=what, error=first_line(error)
        )
    else:
        log.exception("following the log failed; retrying", follower=what)
