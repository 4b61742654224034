"""`ledger worker`: the process that runs pipeline jobs."""

from __future__ import annotations

from ledger.bus.nats_auth import describe_nats_url
from ledger.cli.context import check_credentials, err_console, load_settings
from ledger.cli.events import run_until_signalled


def worker() -> None:
    """Run pipeline jobs: hear JobSubmitted on the bus and run each on its executor."""
    from executors.worker import Worker  # the CLI's other commands never load executors

    settings = load_settings()
    check_credentials(settings)  # wrong ones fail now, in one line
    instance = Worker(settings)
    err_console.print(
        f"Worker {instance.id}: executor {settings.executor}, store "
        f"{settings.store_location.describe()}, artifacts {settings.artifacts_location}, bus "
        f"{'NATS ' + describe_nats_url(settings.nats_url) if settings.nats_url else 'in-process'}"
    )
    run_until_signalled(instance.run)
