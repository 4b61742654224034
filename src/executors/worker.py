"""The worker (`ledger worker`): hears JobSubmitted on the bus and runs the job; hears
endpoint changes and applies them to Ray Serve (executors.serving.reconciler).

Each job runs on a thread of its own, so one worker runs many jobs at once
(the executor decides how many steps run in parallel). The bus only makes the
worker react at once: which jobs need running is read from the ledger, so a
worker also resumes, at start and every few seconds, the jobs of workers whose
lease expired (killed, or cut off) and submitted jobs nobody picked up.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import uuid
from collections.abc import Callable
from typing import Any

from executors import job_runner
from executors.graph import Executor
from executors.leases import WorkerLeases
from executors.plugins import load_executor
from executors.serving import reconciler as serving
from ledger.bus import Delivery, open_bus
from ledger.domain.batch_job import BatchJob
from ledger.errors import RuleViolationError
from ledger.ledger import Ledger
from ledger.logging import get_logger
from ledger.outages import first_line, is_store_unavailable
from ledger.settings import Settings
from ledger.storage.database import LedgerDatabase
from projections.job_queries import list_jobs
from projections.jobs import JobsProjection
from projections.updater import ViewUpdater
from projections.views import Views

CONSUMER = "ledger-worker"
SUBJECTS = ("ledger.job.submitted", "ledger.batch_job.requested")
RECOVERY_BATCH = 1_000
log = get_logger(__name__)


class Worker:
    """One worker process: a lease, a bus subscription, and a thread per running job."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.actor = settings.effective_actor
        self.ledger = Ledger(settings)
        self._executors: dict[str, Executor] = {}
        self._executors_lock = threading.Lock()
        self._jobs: dict[str, threading.Thread] = {}
        self._jobs_lock = threading.Lock()
        self._stopping = threading.Event()
        self._jobs_view: ViewUpdater | None = None  # read by the orphan scan only
        self._monitor_views: Views | None = None  # read by the monitors' runs only
        self._serving: serving.ServingReconciler | None = None  # while ``run`` runs

    # -- running -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set; then stop the running jobs for others to resume."""
        self.executor(self.settings.executor)  # start Ray now, not with the first job
        leases = WorkerLeases(LedgerDatabase(self.settings), self.settings.worker_lease_s)
        leases.create()
        leases.renew(self.id)
        # Two threads: a long catch-up of the jobs view must never delay the lease.
        lease_s = self.settings.worker_lease_s
        background = [
            threading.Thread(target=self._every, args=(lease_s / 3, self._renew, leases)),
            threading.Thread(target=self._every, args=(lease_s / 2, self._resume_orphans)),
            threading.Thread(
                target=self._every, args=(self.settings.monitor_check_s, self._run_monitors)
            ),
        ]
        for thread in background:
            thread.start()
        log.info("worker started", worker=self.id, executor=self.settings.executor)
        try:
            bus = open_bus(self.settings)
            # From the start of the log the first time: with "new", a job submitted between
            # the first orphan scan and the consumer's creation would wait for the next scan.
            # Finished jobs are skipped after one read.
            bus.subscribe(CONSUMER, self._on_event, subjects=SUBJECTS, start="all")
            if serving.worker_serves(self.settings):
                self._serving = serving.ServingReconciler(self.ledger)  # joins Ray when needed
                bus.subscribe(serving.CONSUMER, self._serving.on_event,
                              subjects=serving.SUBJECTS, start="all")  # fmt: skip
            await bus.run(stop)
        finally:
            self._stopping.set()
            await asyncio.to_thread(self._wind_down, background, leases)
            log.info("worker stopped", worker=self.id)

    def _wind_down(self, background: list[threading.Thread], leases: WorkerLeases) -> None:
        if self._serving is not None:
            self._serving.stop()
        for thread in [*background, *list(self._jobs.values())]:
            thread.join()
        leases.release(self.id)
        leases.db.close()
        self.close()

    def _on_event(self, delivery: Delivery) -> None:
        self.offer(delivery.event.aggregate_id)

    def _every(self, interval: float, action: Callable[..., None], *args: Any) -> None:
        """Run ``action`` now and every ``interval`` seconds until the worker stops."""
        while not self._stopping.is_set():
            try:
                action(*args)
            except Exception as error:
                if not is_store_unavailable(error):
                    log.exception("worker maintenance failed; trying again", action=action.__name__)
                else:  # a database restart: the next round resumes
                    log.warning("the event store is unavailable; trying again",
                                action=action.__name__, error=first_line(error))  # fmt: skip
            self._stopping.wait(interval)

    def _renew(self, leases: WorkerLeases) -> None:
        leases.renew(self.id)

    def _resume_orphans(self) -> None:
        """Offer the jobs nobody runs: submitted ones, and those of expired workers."""
        if self._jobs_view is None:
            self._jobs_view = ViewUpdater(self.settings, [JobsProjection()])
        self._jobs_view.catch_up()
        alive = self._alive_workers()
        for job in list_jobs(self._jobs_view.db, unfinished=True, limit=RECOVERY_BATCH):
            # Ours too: a job whose thread here failed (the store was away) runs again.
            if job["status"] == "submitted" or job["worker"] not in alive - {self.id}:
                self.offer(job["id"])

    def _run_monitors(self) -> None:
        """Judge the monitors' windows that have ended (another worker may judge some
        first: each is recorded once)."""
        from executors.monitoring.runner import MonitorRunner  # imports pyarrow, scipy

        if self._monitor_views is None:
            self._monitor_views = Views.open(self.settings, catch_up=False)
        self._monitor_views.updater.catch_up()
        judged = MonitorRunner(self.ledger, self._monitor_views).run_due()
        if judged:
            log.info("monitors judged their windows", windows=judged)

    def offer(self, job_id: str) -> None:
        """Run ``job_id`` here unless it already runs here (the ledger decides whether
        another worker has it)."""
        if self._stopping.is_set():
            return
        job_id = str(uuid.UUID(job_id))  # one spelling, however the id came
        with self._jobs_lock:
            running = self._jobs.get(job_id)
            if running is not None and running.is_alive():
                return
            thread = threading.Thread(
                target=self._run_in_background,
                args=(job_id,),
                name=f"job-{job_id[:8]}",
                daemon=True,
            )
            self._jobs[job_id] = thread
            thread.start()

    def _run_in_background(self, job_id: str) -> None:
        try:
            status = self.run_job(job_id)
            if status:
                log.info("job ended", job=job_id, status=status)
        except Exception:
            log.exception("running a job failed; it will be resumed", job=job_id)
        finally:
            with self._jobs_lock:
                if self._jobs.get(job_id) is threading.current_thread():
                    del self._jobs[job_id]

    def run_job(self, job_id: str) -> str:
        """Claim ``job_id`` (start it, or take it over from a dead worker) and run it to
        its end here; return its final status, or "" when it is not this worker's."""
        ledger = self.ledger
        batch = ledger.batch_jobs.find(job_id)
        if batch is not None:
            return self._run_batch(batch)
        job = ledger.jobs.get(job_id)
        if job.finished:
            return ""
        name = job.snapshot["executor"]
        try:
            executor = self.executor(name)
        except Exception as error:
            if job.status == "submitted":
                with ledger.on_behalf_of(self.actor, causation_id=job_id):
                    ledger.job_runs.fail(job_id, f"executor {name!r} is not available: {error}")
            return "failed"
        with ledger.on_behalf_of(self.actor, causation_id=job_id):
            if job.status == "submitted":
                try:
                    job = ledger.job_runs.start(job_id, name, worker=self.id)
                except RuleViolationError:
                    return ""  # another worker started it first
            elif job.worker != self.id:
                orphaned = ledger.job_runs.take_over(
                    job_id, self.id, may_take=lambda j: j.worker not in self._alive_workers()
                )
                if orphaned is None:
                    return ""
                job = orphaned
        return job_runner.run_job(ledger, executor, job, self.actor, self._stopping)

    def _run_batch(self, job: BatchJob) -> str:
        """Score a batch endpoint's input on Ray (started again from the top when its
        previous worker stopped)."""
        from executors.batch_scoring import run_batch_job  # imports ray
        from executors.ray_executor import connect_ray

        job_id = str(job.id)
        with self.ledger.on_behalf_of(self.actor, causation_id=job_id):
            started = self.ledger.batch_jobs.start(
                job_id, self.id, may_take=lambda j: j.worker not in self._alive_workers()
            )
            if started is None:
                return ""
            connect_ray(self.settings.ray_address, self.settings.ray_num_cpus)
            return run_batch_job(self.ledger, started, self.id, self._stopping)

    def _alive_workers(self) -> set[str]:
        # On a connection of its own: this runs on job threads and the orphan scan.
        db = LedgerDatabase(self.settings)
        try:
            return WorkerLeases(db, self.settings.worker_lease_s).alive()
        finally:
            db.close()

    # -- executors --------------------------------------------------------------------------

    def executor(self, name: str) -> Executor:
        """The executor named ``name``, created on first use and shared by the jobs."""
        with self._executors_lock:
            if name not in self._executors:
                self._executors[name] = load_executor(name, self.settings)
            return self._executors[name]

    def close(self) -> None:
        for executor in self._executors.values():
            executor.close()
        if self._jobs_view is not None:
            self._jobs_view.close()
        if self._monitor_views is not None:
            self._monitor_views.close()
        self.ledger.close()
