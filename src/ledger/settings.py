"""The one settings object, read from LEDGER_* environment variables."""

from __future__ import annotations

import getpass
import json
import os
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from ledger.artifacts.locations import RETRY_S, is_object_store_url, local_directory
from ledger.errors import InvalidInputError
from ledger.pg_parameters import parse_parameters
from ledger.secret_files import SecretFilesSource

DEFAULT_HOME = Path(".ledger")


class StoreLocation:
    """Where the event store lives: a SQLite file or a PostgreSQL database."""

    def __init__(self, url: str, home: Path, password: str = "") -> None:
        """``password`` is used when the URL has none."""
        self.url = url
        parts = urlsplit(url)
        self.kind: Literal["sqlite", "postgres"]
        if parts.scheme in ("postgres", "postgresql"):
            self.kind = "postgres"
            if not parts.hostname or not parts.path.strip("/"):
                raise ValueError(
                    f"LEDGER_STORE {url!r}: expected postgresql://user[:password]@host[:port]/db"
                )
            self.pg_host = parts.hostname
            self.pg_port = parts.port or 5432
            self.pg_user = unquote(parts.username or "") or getpass.getuser()
            self.pg_password = unquote(parts.password or "") or password
            self.pg_dbname = parts.path.strip("/")
            # libpq parameters from the query string (sslmode, connect_timeout, ...)
            self.pg_parameters: dict[str, str] = parse_parameters(parts.query)
            self.sqlite_path = Path()
        elif parts.scheme in ("", "sqlite", "file"):
            self.kind = "sqlite"
            self.pg_parameters = {}
            raw = parts.path if parts.scheme else url
            if parts.scheme == "sqlite" and raw.startswith("/./"):
                raw = raw[1:]  # sqlite:///./x.db means the relative path ./x.db
            self.sqlite_path = Path(raw) if raw else home / "ledger.db"
        else:
            raise ValueError(f"LEDGER_STORE {url!r}: use a SQLite path or a postgresql:// URL")

    def describe(self) -> str:
        """A human description without the password (nor file paths: only the sslmode of
        the query string; /health shows it to anyone)."""
        if self.kind == "postgres":
            where = f"postgresql://{self.pg_user}@{self.pg_host}:{self.pg_port}/{self.pg_dbname}"
            sslmode = self.pg_parameters.get("sslmode")
            return f"{where}?sslmode={sslmode}" if sslmode else where
        return f"sqlite:{self.sqlite_path}"


class Settings(BaseSettings):
    """All configuration of the ledger; every field maps to LEDGER_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="LEDGER_", extra="ignore", frozen=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then LEDGER_* variables, then LEDGER_*_FILE files."""
        return init_settings, env_settings, SecretFilesSource(settings_cls), dotenv_settings

    home: Path = Field(DEFAULT_HOME, description="Directory for the embedded store and artifacts")
    store: str = Field("", description="SQLite path or postgresql://user@host/db URL")
    store_password: SecretStr | None = Field(
        None, description="PostgreSQL password when LEDGER_STORE's URL has none "
        "(LEDGER_STORE_PASSWORD_FILE: read it from a file, such as a Docker secret)",
    )  # fmt: skip
    pg_schema: str = Field("public", description="PostgreSQL schema holding the ledger tables")
    sqlite_synchronous: Literal["full", "normal"] = Field(
        "full", description="SQLite event store: full syncs every commit to disk (it survives "
        "a power loss); normal skips that fsync (a power loss may drop the last commits)",
    )  # fmt: skip
    artifacts: str = Field(
        "", description="Artifact store: a directory (default HOME/artifacts) or a URL, "
        "file:///dir, s3://bucket/prefix, az://container/prefix or gs://bucket/prefix",
    )  # fmt: skip
    artifacts_retry_s: float = Field(
        RETRY_S, gt=0, description="How long a request to an object-store artifact store is "
        "retried while the store cannot be reached (then the API answers 503)",
    )  # fmt: skip
    actor: str = Field("", description="Who acts (default: the OS user)")
    cache_size: int = Field(10_000, ge=0, description="Aggregates kept in the in-memory cache")
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "WARNING"
    api_host: str = Field("127.0.0.1", description="Address `ledger serve` binds")
    api_port: int = Field(8000, ge=0, le=65535, description="Port `ledger serve` binds")
    api_auth: bool = Field(True, description="Require bearer tokens (off only on loopback)")
    api_anonymous_reads: bool = Field(False, description="Let requests without a token read")
    api_public_metrics: bool = Field(False, description="Serve /metrics without a token")
    data_roots: Annotated[list[Path | str], NoDecode] = Field(
        default_factory=list,
        description="Folders, or object store URLs (s3://bucket/prefix), whose data "
        "`POST /data/{name}/versions` may name by path or URL (comma-separated or a JSON "
        "list); empty: none, data must be uploaded",
    )
    api_max_upload_mb: int = Field(2048, ge=1, description="Largest request body accepted (MiB)")
    api_view_connections: int = Field(8, ge=1, description="Read connections the API keeps")
    store_wait_s: float = Field(
        2.0, gt=0, description="How long a view query waits for a PostgreSQL connection "
        "before failing (the API answers 503 with Retry-After)",
    )  # fmt: skip
    api_idempotency_hours: int = Field(24, ge=1, description="How long Idempotency-Keys last")
    ui_session_secret: SecretStr | None = Field(
        None, description="Key signing the web UI's sign-in cookies and CSRF tokens; unset: a "
        "new one each start (sign-ins end with the process; set it when several serve)",
    )  # fmt: skip
    ui_session_hours: float = Field(12, gt=0, description="How long a web UI sign-in lasts")
    conflict_retry_s: float = Field(
        10, gt=0, description="How long a command retries after losing write conflicts"
    )
    store_retry_s: float = Field(
        10,
        gt=0,
        description="How long a command keeps sending its events while the store is "
        "unreachable (and so learns whether a commit whose answer was lost landed)",
    )
    group_commit_max_batch: int = Field(
        64, ge=1, description="Most commands of one process committed in one transaction "
        "(group commit: commands that arrive while a commit is in flight share the next)",
    )  # fmt: skip
    group_commit_wait_s: float = Field(
        0.0, ge=0, le=1, description="How long a batch formed behind a commit in flight "
        "waits for more commands (0: it takes those queued); a lone command never waits",
    )  # fmt: skip
    nats_url: str = Field(
        "", description="NATS server(s), comma-separated; empty: the in-process bus"
    )
    nats_stream: str = Field("LEDGER", description="JetStream stream the relay publishes to")
    nats_event_format: Literal["ledger", "cloudevents"] = Field(
        "ledger", description="What the relay publishes: the ledger's envelope, or a "
        "CloudEvents 1.0 structured JSON event carrying it (consumers read both)",
    )  # fmt: skip
    event_source: str = Field(
        "urn:lifecycle-ledger", min_length=1,
        description="The CloudEvents `source` of this ledger's events (a URI reference)",
    )  # fmt: skip
    nats_subject_prefix: str = Field(
        "ledger", description="First subject token on NATS (ledger.<aggregate>.<event>)"
    )
    nats_replicas: int = Field(1, ge=1, le=5, description="Stream replicas (clustered NATS)")
    nats_user: str = Field("", description="NATS user name (with LEDGER_NATS_PASSWORD)")
    nats_password: SecretStr | None = Field(None, description="NATS password")
    nats_token: SecretStr | None = Field(None, description="NATS authentication token")
    nats_nkey_seed: Path | None = Field(
        None, description="File holding the NKey seed this ledger authenticates with"
    )
    nats_creds: Path | None = Field(
        None, description="NATS credentials file (a user JWT and its NKey seed)"
    )
    nats_tls_ca: Path | None = Field(
        None, description="CA certificate(s) NATS servers are verified against (turns on TLS)"
    )
    nats_tls_cert: Path | None = Field(
        None, description="Client certificate for NATS servers that require one (mutual TLS)"
    )
    nats_tls_key: Path | None = Field(None, description="Private key of LEDGER_NATS_TLS_CERT")
    nats_retention: Literal["limits", "interest", "workqueue"] = Field(
        "limits", description="Stream retention policy"
    )
    nats_max_age_hours: float = Field(
        24 * 7, ge=0, description="How long the stream keeps events (0: forever)"
    )
    nats_duplicate_window_s: float = Field(
        120, gt=0, description="Window in which JetStream drops a re-published event"
    )
    nats_ack_wait_s: float = Field(
        30, gt=0, description="A consumer's unacknowledged event is redelivered after this"
    )

    executor: str = Field(
        "ray", description="Executor for new jobs: ray, local, or a plug-in's entry-point name"
    )
    ray_address: str = Field(
        "", description="Ray cluster to run on (empty: RAY_ADDRESS, else a local Ray)"
    )
    ray_num_cpus: int | None = Field(
        None, ge=1, description="CPUs of the local Ray (default: all); ignored for a cluster"
    )
    runtime_env_setup_timeout_s: int = Field(
        600, ge=1, le=86_400, description="How long one try of Ray at building a step's "
        "environment (installing its packages) may take; Ray tries three times",
    )  # fmt: skip
    serve_host: str = Field(
        "127.0.0.1",
        description="Where Ray Serve's HTTP proxies listen, on every node (0.0.0.0: all "
        "interfaces); set when Serve first starts on the cluster",
    )
    serve_port: int = Field(
        8100,
        ge=1,
        le=65535,
        description="Ray Serve's HTTP proxy port on every node (/endpoints/NAME/score); not "
        "the API's 8000, which a node running both would otherwise fight over",
    )
    serve_from_worker: bool | None = Field(
        None,
        description="Whether `ledger worker` applies endpoint changes to Ray Serve (default: "
        "when it joins a shared Ray cluster, LEDGER_RAY_ADDRESS or RAY_ADDRESS; a worker on a "
        "private local Ray would serve where no API server can reach)",
    )
    serve_upscale_delay_s: float = Field(
        30.0, ge=0, le=3_600, description="Autoscaling: how long the load must call for more "
        "replicas before they start (it is averaged over this, at most 30 s)",
    )  # fmt: skip
    serve_downscale_delay_s: float = Field(
        600.0, ge=0, le=86_400, description="Autoscaling: how long the load must call for "
        "fewer replicas before some stop",
    )  # fmt: skip
    collect_flush_s: float = Field(
        10.0, gt=0, le=3_600, description="Online deployments that collect requests: how "
        "often each replica writes what it sampled (Parquet under ARTIFACTS/collected/)",
    )  # fmt: skip
    monitor_check_s: float = Field(
        60.0, gt=0, le=3_600, description="How often a worker looks for monitors' windows "
        "that have ended, and judges them",
    )  # fmt: skip
    monitor_retention: timedelta = Field(
        timedelta(days=90), gt=timedelta(0), description="How long collected requests "
        "(ARTIFACTS/collected/) are kept: `ledger gc` deletes older hours (ISO 8601, e.g. P90D)",
    )  # fmt: skip
    gc_grace: timedelta = Field(
        timedelta(days=1), gt=timedelta(0), description="`ledger gc` leaves alone what was "
        "stored more recently than this, and empties its trash this long after filling it: "
        "longer than any registration takes (ISO 8601, e.g. P1D, PT1H)",
    )  # fmt: skip
    gc_deleted_retention: timedelta = Field(
        timedelta(days=30), ge=timedelta(0), description="How long a deleted model version's "
        "files are kept before `ledger gc` may remove them (ISO 8601, e.g. P30D)",
    )  # fmt: skip
    approval_ttl_s: float = Field(
        86_400, gt=0, description="How long a rule's approval stays pending before it expires"
    )
    rule_max_chain: int = Field(
        5, ge=1, le=1_000, description="The most times one rule fires within one correlation "
        "id (a chain of rules reacting to each other's effects)",
    )  # fmt: skip
    local_workers: int = Field(4, ge=1, le=256, description="Steps the local executor runs at once")
    logs: Path | None = Field(None, description="Step logs directory (default HOME/logs)")
    worker_lease_s: float = Field(
        15, gt=0, description="A worker silent this long is presumed dead; its jobs resume"
    )
    checkpoint_key: Path | None = Field(
        None, description="Ed25519 private key (PEM) that signs checkpoints; unset: none made"
    )
    checkpoint_dir: Path | None = Field(
        None, description="Directory `ledger checkpoint` and the server publish checkpoints to"
    )
    checkpoint_every_events: int = Field(
        1000, ge=0, description="The server checkpoints after this many new events (0: never)"
    )
    checkpoint_every_s: float = Field(
        300, ge=0, description="The server checkpoints new events this often (0: never)"
    )

    webhook_timeout_s: float = Field(
        10.0, gt=0, le=120, description="How long a webhook delivery waits for an answer"
    )
    webhook_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts webhooks may be sent to, and redirected to (comma-separated or a "
        "JSON list); empty: any host (redirects only to public addresses)",
    )
    webhook_retry_scale: float = Field(
        1.0, gt=0, le=100, description="Multiplies the webhook retry schedule (10 s, 30 s, "
        "1 m ... every 12 h up to 24 h); tests shorten it",
    )  # fmt: skip

    @field_validator("executor")
    @classmethod
    def _executor_name(cls, value: str) -> str:
        if not value or not value.replace("_", "").replace("-", "").replace(".", "").isalnum():
            raise ValueError("LEDGER_EXECUTOR must be an executor name such as ray or local")
        return value

    @field_validator("data_roots", "webhook_allowed_hosts", mode="before")
    @classmethod
    def _path_list(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("data_roots")
    @classmethod
    def _data_roots(cls, value: list[Path | str]) -> list[Path | str]:
        """Object store URLs stay text (a path would fold their ``//``); the rest are paths."""
        return [
            str(root).rstrip("/") if is_object_store_url(str(root)) else Path(root)
            for root in value
        ]

    @field_validator("pg_schema")
    @classmethod
    def _schema_is_identifier(cls, value: str) -> str:
        if not value.replace("_", "").isalnum() or value[0].isdigit():
            raise ValueError("LEDGER_PG_SCHEMA must be a plain SQL identifier")
        return value

    @field_validator("nats_stream")
    @classmethod
    def _stream_name(cls, value: str) -> str:
        if not value or any(c in value for c in " .*>/\\\t"):
            raise ValueError("LEDGER_NATS_STREAM must be a name without spaces, '.', '*' or '>'")
        return value

    @field_validator("nats_subject_prefix")
    @classmethod
    def _subject_token(cls, value: str) -> str:
        if not value or any(c in value for c in " .*>\t"):
            raise ValueError("LEDGER_NATS_SUBJECT_PREFIX must be one subject token")
        return value

    @cached_property
    def store_location(self) -> StoreLocation:
        password = self.store_password.get_secret_value() if self.store_password else ""
        return StoreLocation(self.store, self.home, password)

    @field_validator("artifacts", mode="before")
    @classmethod
    def _artifacts_as_text(cls, value: object) -> object:
        """A directory may be given as a Path (Python callers)."""
        return str(value) if isinstance(value, os.PathLike) else value

    @property
    def artifacts_location(self) -> str:
        """What the artifact store opens: a directory or an object store URL."""
        return self.artifacts or str(self.home / "artifacts")

    @property
    def artifacts_dir(self) -> Path:
        """The local artifact directory; refused when artifacts are in an object store."""
        if is_object_store_url(self.artifacts_location):
            raise InvalidInputError(f"artifacts are kept at {self.artifacts}, not in a directory")
        return local_directory(self.artifacts_location)

    @property
    def logs_dir(self) -> Path:
        return self.logs if self.logs is not None else self.home / "logs"

    @property
    def shared_ray(self) -> bool:
        """Whether Ray is a cluster that outlives this process (LEDGER_RAY_ADDRESS or
        RAY_ADDRESS), not a private local Ray started here and ending with it."""
        return bool(self.ray_address or os.environ.get("RAY_ADDRESS"))

    @property
    def effective_actor(self) -> str:
        return self.actor or getpass.getuser()
