"""When a failed delivery is tried again: Azure Event Grid's schedule, and which answers
are final.

10 s, 30 s, 1 m, 5 m, 10 m, 30 m, 1 h, 3 h, 6 h, then every 12 h while the event is younger
than 24 h; each delay ±20 % (jitter) and multiplied by LEDGER_WEBHOOK_RETRY_SCALE (the
24 h too). A longer ``Retry-After`` from the receiver wins.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRY_DELAYS_S = (10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 10800.0, 21600.0)
REPEAT_EVERY_S = 43200.0  # after the fixed delays
TIME_TO_LIVE_S = 86400.0  # no attempt after the event is this old
JITTER = 0.2
MAX_RETRY_AFTER_S = REPEAT_EVERY_S  # a receiver cannot hold an event longer than this


def _attempts_possible() -> int:
    """How many attempts the schedule allows, at most (the first one included)."""
    elapsed, attempts = 0.0, 1
    while True:
        delay = scheduled_delay(attempts)
        if elapsed + delay >= TIME_TO_LIVE_S:
            return attempts
        elapsed += delay
        attempts += 1


def scheduled_delay(attempt: int) -> float:
    """The delay after failed attempt ``attempt`` (1-based), before jitter and scaling."""
    return RETRY_DELAYS_S[attempt - 1] if attempt <= len(RETRY_DELAYS_S) else REPEAT_EVERY_S


MAX_ATTEMPTS = _attempts_possible()  # 11: the nine delays, then one 12 h retry


def retry_delay(
    attempt: int,
    age_s: float,
    *,
    scale: float = 1.0,
    retry_after_s: float | None = None,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds to wait after failed attempt ``attempt`` of an event ``age_s`` old; None
    when there is no next attempt (the attempts are spent or the event is too old)."""
    if attempt >= MAX_ATTEMPTS:
        return None
    delay = scheduled_delay(attempt) * scale * (rng or random).uniform(1 - JITTER, 1 + JITTER)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, MAX_RETRY_AFTER_S))
    if age_s + delay >= TIME_TO_LIVE_S * scale:
        return None
    return delay


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """A ``Retry-After`` header in seconds (delay-seconds or an HTTP date); None if absent
    or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


NOT_RETRIED = frozenset({400, 401, 403, 413})  # dead letters at once
GONE = 410  # the subscription is paused, the event not retried


def outcome_of(status: int) -> str:
    """What an answer means: delivered, dead (never retried), gone, or retrying."""
    if 200 <= status < 300:
        return "delivered"
    if status in NOT_RETRIED:
        return "dead"
    if status == GONE:
        return "gone"
    return "retrying"  # 5xx, 408, 429, other answers; no answer at all (status 0)
