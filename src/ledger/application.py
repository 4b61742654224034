"""The ledger's application: runs a command and saves what it changed, atomically.

A command loads aggregates, lets them decide (raising on broken rules, before anything
is written), and saves every changed aggregate in one transaction with its metadata and
command id. A write conflict with a concurrent writer runs the command again on fresh
state (see ``LedgerApplication.execute``). It knows no entity: the command groups in
``ledger.commands`` do, and ``ledger.ledger.Ledger`` assembles them.
"""

from __future__ import annotations

import itertools
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, TypeVar

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import IntegrityError, PersistenceError, Recording

from ledger import command_ids
from ledger.artifacts.store import ArtifactStore
from ledger.chain import ChainedRecorder, VerifyReport, verify_chain
from ledger.command_context import Caller, acting_for, current_caller, running_command_id
from ledger.command_ids import CommandAlreadyCommitted
from ledger.domain import EventMeta, LedgerAggregate, acting
from ledger.errors import ConcurrencyError, NotFoundError
from ledger.history import HistoryEntry, history_entries
from ledger.logging import get_logger
from ledger.outages import STORE_UNAVAILABLE, first_line
from ledger.settings import Settings
from ledger.storage import eventsourcing_env
from ledger.storage.commands import CommandStamp, CommittedCommand
from ledger.validation import check_event_fields

A = TypeVar("A", bound=LedgerAggregate)
T = TypeVar("T")

log = get_logger(__name__)
# Backoff between attempts of a command that lost a write conflict: exponential with full
# jitter, from 1 ms up to this cap, until ``Settings.conflict_retry_s`` is spent.
MAX_CONFLICT_BACKOFF_S = 0.1


class LedgerApplication(Application[uuid.UUID]):
    """Store, artifacts and the command loop every command of the ledger runs in."""

    name = "Ledger"

    # Off only to measure what recording command ids costs (benchmarks/trust.py).
    records_command_ids: ClassVar[bool] = True

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self._default_caller = Caller(self.settings.effective_actor)
        super().__init__(eventsourcing_env(self.settings))
        self.artifacts = ArtifactStore.from_settings(self.settings)

    # -- running commands ---------------------------------------------------------

    @contextmanager
    def on_behalf_of(
        self,
        actor: str,
        *,
        correlation_id: str = "",
        causation_id: str = "",
        command_id: str = "",
    ) -> Iterator[None]:
        """Commands inside this block are recorded as done by ``actor``; with ``command_id``,
        running the same block again returns what the first run committed."""
        with acting_for(Caller(actor, correlation_id, causation_id, command_id)):
            yield

    def _meta(self, reason: str) -> EventMeta:
        caller = current_caller(self._default_caller)
        return EventMeta(
            actor=caller.actor,
            reason=reason,
            correlation_id=caller.correlation_id or uuid.uuid4().hex,
            causation_id=caller.causation_id,
        )

    def execute(self, reason: str, command: Callable[[], T]) -> T:
        """Run ``command`` (load, decide, save) and retry it when another writer won.

        Aggregates are loaded fresh on each attempt, so a retry decides again on
        the latest state: concurrent writers never collide, skip or duplicate. Every
        run carries a command id, saved with its events: when that id committed
        already (a retried request), the command's first result is returned instead.
        """
        caller = current_caller(self._default_caller)
        meta = self._meta(reason)
        command_id = caller.next_command_id()
        command_token = running_command_id.set(command_id)
        deadline = time.monotonic() + self.settings.conflict_retry_s
        try:
            # A caller's own id may name a command that committed before (a retried
            # request): its result, even where running it again would now be refused.
            if (
                caller.command_id
                and (done := command_ids.committed_now(self.recorder, command_id)) is not None
            ):
                return self._replay(meta, done, command)
            for attempt in itertools.count(1):
                try:
                    with acting(meta):
                        result = command()
                except IntegrityError:
                    if time.monotonic() >= deadline:
                        raise ConcurrencyError(
                            f"gave up after {attempt} conflicting concurrent writes in "
                            f"{self.settings.conflict_retry_s:g} s; retry later"
                        ) from None
                    log.debug("write conflict, retrying", attempt=attempt)
                    time.sleep(random.uniform(0, min(MAX_CONFLICT_BACKOFF_S, 0.001 * 2**attempt)))
                    continue
                except CommandAlreadyCommitted as done:
                    result = self._replay(meta, done.committed, command)
                log.info(
                    "command executed",
                    command=command.__qualname__.split(".<locals>")[0],
                    actor=meta.actor,
                    reason=meta.reason,
                    correlation_id=meta.correlation_id,
                    attempts=attempt,
                )
                return result
            raise AssertionError("unreachable")
        finally:
            running_command_id.reset(command_token)

    def _replay(self, meta: EventMeta, committed: CommittedCommand, command: Callable[[], T]) -> T:
        """Run ``command`` again on the state it decided on the first time, writing
        nothing: the result it returned then."""
        events = self.recorder.select_notifications(committed.first_position, committed.event_count)
        log.info("command committed before; replaying it", command_id=committed.command_id)
        with command_ids.replaying(events), acting(meta):
            return command()

    def change(self, load: Callable[[], A], change: Callable[[A], object], reason: str) -> A:
        """The common command: load one aggregate, apply ``change``, save it."""

        def command() -> A:
            aggregate = load()
            change(aggregate)
            self.save(aggregate)
            return aggregate

        return self.execute(reason, command)

    # -- loading aggregates inside a command -------------------------------------------

    def find(self, cls: type[A], aggregate_id: uuid.UUID, *, for_update: bool = False) -> A | None:
        """The aggregate, or None when it does not exist (or is of another kind).

        ``for_update``: the command saves this aggregate, so the cached instance is
        checked out of the cache and used as is (no copy, no read). If it is stale
        the save fails its version check and the command runs again on fresh
        state; if the command fails, the instance is simply not put back. Other
        reads catch up with the store.
        """
        before = command_ids.version_before_replay(aggregate_id)
        if before is not None:
            if before == 0:
                return None
            past: Any = self.repository.get(aggregate_id, version=before)
            return past if isinstance(past, cls) else None
        aggregate = self._check_out(aggregate_id) if for_update else None
        if aggregate is None:
            try:
                aggregate = self.repository.get(aggregate_id)
            except AggregateNotFoundError:
                return None
        return aggregate if isinstance(aggregate, cls) else None

    def load(self, cls: type[A], aggregate_id: uuid.UUID, description: str) -> A:
        """The aggregate; NotFoundError naming ``description`` when it does not exist."""
        aggregate = self.find(cls, aggregate_id)
        if aggregate is None:
            raise NotFoundError(f"{description} does not exist")
        return aggregate

    def exists(self, aggregate_id: uuid.UUID) -> bool:
        before = command_ids.version_before_replay(aggregate_id)
        if before is not None:
            return before > 0
        return aggregate_id in self.repository

    def _check_out(self, aggregate_id: uuid.UUID) -> Any:
        cache = self.repository.cache
        if cache is None:
            return None
        try:
            return cache.get(aggregate_id, evict=True)
        except KeyError:
            return None

    # -- saving ---------------------------------------------------------------------------

    def _record(self, processing_event: ProcessingEvent[uuid.UUID]) -> list[Recording[uuid.UUID]]:
        recordings = super()._record(processing_event)
        self._cache_saved(processing_event)
        return recordings

    def _cache_saved(self, processing_event: ProcessingEvent[uuid.UUID]) -> None:
        """Cache what was saved: the next command starts from it.

        The saved instances go into the cache as they are (commands are done with
        them), so aggregates returned by commands are read-only views.
        """
        cache = self.repository.cache
        if cache is not None:
            for aggregate_id, aggregate in processing_event.aggregates.items():
                cache.put(aggregate_id, aggregate)

    def save(self, *aggregates: Any, **kwargs: Any) -> list[Recording[uuid.UUID]]:
        """Record the new events of ``aggregates`` in one atomic transaction, with the
        running command's id.

        Same steps as ``Application.save``, for aggregates only (not loose events):
        its runtime Protocol checks cost ~20 µs per object on Python 3.11, a tenth of
        a registration. A save whose acknowledgement was lost is resent by the store
        and collides with its own first copy: the command row tells that it committed.
        """
        processing_event: ProcessingEvent[uuid.UUID] = ProcessingEvent()
        for aggregate in aggregates:
            processing_event.aggregates[aggregate.id] = aggregate
            processing_event.events.extend(aggregate.collect_events())
        for event in processing_event.events:  # refuse what the stores cannot hold
            check_event_fields(event)
        if command_ids.is_replaying():
            command_ids.check_replayed(aggregates)
            return []
        stamp = CommandStamp(running_command_id.get() or uuid.uuid4().hex)
        if self.records_command_ids:
            processing_event.saved_kwargs["command"] = stamp
        recordings = self._record_settled(processing_event, stamp, aggregates)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        return recordings

    def _record_settled(
        self,
        processing_event: ProcessingEvent[uuid.UUID],
        stamp: CommandStamp,
        aggregates: tuple[Any, ...],
    ) -> list[Recording[uuid.UUID]]:
        """Record the events; while the store is unreachable, send them again until it says
        what happened, for at most ``Settings.store_retry_s``.

        A resend takes the events table's lock first, so it waits for a first copy whose
        commit is still in flight; then it either commits or collides with that copy, and
        the command row says whether the copy was this very save (its answer was lost).
        """
        deadline = time.monotonic() + self.settings.store_retry_s
        for attempt in itertools.count(1):
            try:
                return self._record(processing_event)
            except IntegrityError:
                committed = command_ids.committed(self.recorder, stamp.command_id, deadline)
                if committed is None or committed.attempt != stamp.attempt:
                    # Another writer got there first: forget our stale copies before the retry.
                    for aggregate in aggregates:
                        self._check_out(aggregate.id)
                    if committed is not None:
                        raise CommandAlreadyCommitted(committed) from None
                    raise
                log.info("a commit whose answer was lost", command_id=stamp.command_id)
                self._cache_saved(processing_event)
                return []
            except STORE_UNAVAILABLE as error:
                if time.monotonic() >= deadline:
                    raise
                log.warning(
                    "the event store is unreachable; sending again", error=first_line(error)
                )
                time.sleep(min(1.0, 0.05 * 2**attempt))
        raise AssertionError("unreachable")

    def _take_snapshots(self, processing_event: ProcessingEvent[uuid.UUID]) -> None:
        """Snapshot each saved aggregate whose new events reach a multiple of its interval.

        The aggregate just saved *is* the recorded state, so it is snapshotted as it is
        instead of being reloaded from the store (eventsourcing's default).
        """
        if self.snapshots is None:
            return
        due: dict[uuid.UUID, Any] = {}
        for event in processing_event.events:
            aggregate = processing_event.aggregates[event.originator_id]
            interval = (self.snapshotting_intervals or {}).get(type(aggregate))
            if interval and event.originator_version % interval == 0:
                due[aggregate.id] = aggregate
        if not due:
            return
        try:
            self.snapshots.put([Snapshot.take(aggregate) for aggregate in due.values()])
        except PersistenceError as error:
            # The events are committed; a snapshot only shortens later loads (and a resent
            # one may already be there). Never turn a committed command into a failure.
            log.warning("could not store a snapshot", error=str(error))

    # -- reading the log --------------------------------------------------------------

    def events_of(self, aggregate_id: uuid.UUID) -> list[LedgerAggregate.Event]:
        return [e for e in self.events.get(aggregate_id) if isinstance(e, LedgerAggregate.Event)]

    def history_of(self, aggregate_ids: dict[uuid.UUID, str]) -> list[HistoryEntry]:
        """Every event of the given aggregates (id -> label), oldest first."""
        return history_entries(self.events_of, aggregate_ids)

    def verify(self, on_progress: Callable[[int], None] | None = None) -> VerifyReport:
        """Recompute the hash chain over the whole event log."""
        recorder: ChainedRecorder = self.recorder  # type: ignore[assignment]
        return verify_chain(recorder, on_progress)

    def event_count(self) -> int:
        return self.recorder.max_notification_id() or 0
