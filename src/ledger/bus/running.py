"""Long-running bus loops: waiting that a stop interrupts, and riding out outages."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from ledger.errors import BusUnavailableError
from ledger.logging import get_logger
from ledger.outages import first_line, is_store_unavailable

RETRY_WAIT_S = 1.0
log = get_logger(__name__)


async def stopped(stop: asyncio.Event, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``stop``; whether it is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout)
    return stop.is_set()


async def keep_running(
    name: str, attempt: Callable[[], Awaitable[None]], stop: asyncio.Event
) -> None:
    """Run ``attempt`` until ``stop`` is set. A failure (the store or NATS went away) is
    logged and the attempt started again; a misconfiguration (BusUnavailableError) is not
    retried."""
    while not stop.is_set():
        try:
            await attempt()
        except BusUnavailableError:
            raise
        except Exception as error:
            if is_store_unavailable(error):  # a database restart: no traceback for that
                log.warning(f"{name}: the event store is unavailable; starting it again",
                            error=first_line(error), retry_in_s=RETRY_WAIT_S)  # fmt: skip
            else:
                log.exception(f"{name} failed; starting it again", retry_in_s=RETRY_WAIT_S)
            await stopped(stop, RETRY_WAIT_S)
