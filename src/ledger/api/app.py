"""The FastAPI application: routes over the views and the ledger, auth, errors, metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from ledger import __version__
from ledger.api.docs import install_docs
from ledger.api.idempotency import Idempotency, create_idempotency_table
from ledger.api.middleware import BodyLimit, LoopbackOnly, RequestMetrics, is_loopback
from ledger.api.mlflow import mlflow_routers
from ledger.api.openapi import install_openapi
from ledger.api.problems import install_problem_handlers
from ledger.api.routes import (
    assets,
    checkpoints,
    endpoints,
    events,
    gc,
    history,
    models,
    monitors,
    operations,
    rules,
    webhooks,
)
from ledger.api.routes.operations import LedgerCollector
from ledger.api.services import ApiServices
from ledger.api.ui import install_ui
from ledger.api.views_lag import ViewsLagHeader
from ledger.checkpoint_service import CheckpointThread
from ledger.errors import InvalidInputError
from ledger.settings import Settings
from ledger.storage.decoding import EventDecoder

DESCRIPTION = """
The Lifecycle Ledger's HTTP API. Reads come from the read-side views; every write is
a command on the ledger, recorded as events whose actor is the calling token's name.

Authenticate with `Authorization: Bearer <token>` (`ledger token create`). Roles:
reader < contributor (models, environments, data, pipelines, jobs) < deployer
(endpoints, deployments, traffic) < admin (tokens). Errors are problem details
(`application/problem+json`). Send an `Idempotency-Key` header to make a write safe
to retry.
"""


# The route modules, in the order of the API's documentation.
ROUTES = (models, endpoints, assets, monitors, webhooks, rules, history, events, operations,
          checkpoints, gc)  # fmt: skip


def create_app(settings: Settings, *, relay: bool = False, host: str | None = None) -> FastAPI:
    """The API over the store ``settings`` name; the views follow the log while it runs,
    and with ``relay`` the NATS relay publishes it.

    ``host``: the address it will be bound to (default LEDGER_API_HOST). With auth off
    it must be a loopback one, and requests from other machines are refused (403).
    """
    bind = settings.api_host if host is None else host
    if not settings.api_auth and not is_loopback(bind):
        raise InvalidInputError(
            f"refusing to serve on {bind} with LEDGER_API_AUTH off: anyone could write; "
            "bind 127.0.0.1 or turn auth on"
        )

    # Signs checkpoints every N events or T seconds while the server runs (with a key).
    checkpointer = CheckpointThread(settings) if CheckpointThread.wanted(settings) else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services.start()
        if checkpointer is not None:
            checkpointer.start()
        yield
        if checkpointer is not None:
            checkpointer.stop()
        services.close()

    services = ApiServices(settings, relay=relay)
    create_idempotency_table(services)
    app = FastAPI(
        title="Lifecycle Ledger",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served from local files by install_docs, not from a CDN
        redoc_url=None,
    )
    app.state.services = services
    app.state.checkpointer = checkpointer
    app.state.decoder = EventDecoder()
    registry = CollectorRegistry()
    registry.register(LedgerCollector(services))
    app.state.metrics_registry = registry
    for module in ROUTES:
        app.include_router(module.router)
    for router in mlflow_routers():
        app.include_router(router)
    install_ui(app, settings)
    install_problem_handlers(app)
    install_openapi(app)
    install_docs(app)
    # Each middleware added wraps the ones before: metrics (outermost) see every response,
    # and the body limit applies before an idempotent replay.
    app.add_middleware(ViewsLagHeader)  # innermost: routes note a write whose views lag
    app.add_middleware(Idempotency, services=services)
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_upload_mb * 1024 * 1024)
    app.add_middleware(RequestMetrics, registry=registry)
    if not settings.api_auth:
        app.add_middleware(LoopbackOnly)  # outermost: a remote client reaches nothing
    return app
