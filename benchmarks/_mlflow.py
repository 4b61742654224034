"""MLflow as the benchmarks' comparison: its model-registry store and its tracking server.

MLflow comes with the ``bench`` extra (``.venv/bin/pip install -e ".[dev,bench]"``); the
benchmarks import this module only when they measure it, and report a missing MLflow as
a row that was not run.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from _common import free_port, scratch_database, unique_name, wait_until_up


def sqlalchemy_url(url: str) -> str:
    """SQLAlchemy spelling of a postgresql:// URL, using psycopg 3 (the ledger's driver)."""
    return urlunsplit(urlsplit(url)._replace(scheme="postgresql+psycopg"))


def quiet_migrations() -> None:
    for name in ("mlflow", "alembic"):  # schema migrations log at INFO
        logging.getLogger(name).setLevel(logging.WARNING)


@contextmanager
def mlflow_database(kind: str, pg_url: str) -> Iterator[str]:
    """A fresh MLflow backend store URI (SQLite file or PostgreSQL database), then removed."""
    if kind == "postgres":
        with scratch_database(pg_url, unique_name("bench_mlflow")) as url:
            yield sqlalchemy_url(url)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-mlflow-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'mlflow.db'}"


def fill_registry(uri: str, models: Iterable[tuple[str, list[dict[str, str]]]]) -> None:
    """Models, versions and version tags written straight into MLflow's own tables.

    MLflow creates its schema (``SqlAlchemyStore``, all migrations); the rows then go
    in with bulk INSERTs, since registering 100,000 versions through MLflow's API one
    at a time would take the better part of an hour.
    """
    from mlflow.store.model_registry.dbmodels.models import (
        SqlModelVersion,
        SqlModelVersionTag,
        SqlRegisteredModel,
    )
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

    quiet_migrations()
    store = SqlAlchemyStore(uri)
    now = int(time.time() * 1000)
    try:
        with store.engine.begin() as conn:
            for name, version_tags in models:
                conn.execute(
                    SqlRegisteredModel.__table__.insert(),
                    [{"name": name, "creation_time": now, "last_updated_time": now}],
                )
                versions, tags = [], []
                for number, version_tag in enumerate(version_tags, start=1):
                    now += 1
                    versions.append(
                        {
                            "name": name,
                            "version": number,
                            "creation_time": now,
                            "last_updated_time": now,
                            "source": f"file:///models/{name}/{number}",
                            "current_stage": "None",
                            "status": "READY",
                        }
                    )
                    tags += [
                        {"name": name, "version": number, "key": key, "value": value}
                        for key, value in version_tag.items()
                    ]
                conn.execute(SqlModelVersion.__table__.insert(), versions)
                conn.execute(SqlModelVersionTag.__table__.insert(), tags)
        if store.engine.dialect.name == "postgresql":
            with store.engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")  # fresh statistics, as the ledger's views get
    finally:
        store.engine.dispose()


@contextmanager
def mlflow_server(uri: str) -> Iterator[str]:
    """``mlflow server`` on ``uri`` with one worker process, like ``ledger serve``; new
    experiments keep their files behind its artifact proxy, in a temporary directory."""
    port = free_port()
    mlflow_bin = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or "mlflow"
    with tempfile.TemporaryDirectory(prefix="bench-mlflow-artifacts-") as artifacts:
        # Its job runner (GenAI jobs, six huey consumers) has nothing to do with the registry.
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        server = subprocess.Popen(
            [mlflow_bin, "server", "--backend-store-uri", uri, "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1", "--artifacts-destination", artifacts],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(f"{url}/health", server, "`mlflow server`")
            yield url
        finally:
            os.killpg(server.pid, 15)  # its workers too
            server.wait(timeout=30)
