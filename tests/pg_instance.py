"""A private PostgreSQL server for fault tests: initdb + pg_ctl on a free port.

Tests stop and start it at will; the shared server (LEDGER_TEST_PG_URL) is never
touched. Trust authentication, no fsync (nothing here needs to survive a crash of the
machine). Run as root, the server runs as the ``postgres`` user, as PostgreSQL demands.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port


def pg_binary(name: str) -> str:
    """A PostgreSQL program (initdb, pg_ctl, pg_dump, ...): the newest under
    /usr/lib/postgresql, else on PATH."""
    found = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0,
    )
    if found:
        return found[-1]
    on_path = shutil.which(name)
    if on_path is None:
        pytest.skip(f"PostgreSQL's {name} is not installed")
    return on_path


class PgInstance:
    """One PostgreSQL cluster in a directory of its own, on ``port``."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.data = root / "data"
        self.log = root / "server.log"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(root, user.pw_uid, user.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str, timeout: float = 60) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_postgres else []
        result = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {result.stdout}{result.stderr}")

    def init(self) -> None:
        self._run(
            pg_binary("initdb"),
            "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8",
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c fsync=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            pg_binary("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
            "-w", "-t", "30", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(pg_binary("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def require_password(self, password: str) -> None:
        """TCP clients must now give ``password`` (SCRAM), as in production; the socket in
        the root directory stays trusted."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"ALTER USER postgres PASSWORD '{password}'")
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
        )
        self._run(pg_binary("pg_ctl"), "-D", str(self.data), "reload")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def server_log(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@contextlib.contextmanager
def private_instance() -> Iterator[PgInstance]:
    """A private PostgreSQL on a free port, running; stopped and removed at the end
    (whatever happened). The ``pg_instance`` fixture (conftest) holds one per session."""
    root = Path(tempfile.mkdtemp(prefix="ledger-pg-"))
    instance = PgInstance(root, free_port())
    try:
        instance.init()
        instance.start()
        yield instance
    finally:
        if instance.running():
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                instance.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
