"""Where artifacts are kept, as a URL: ``file://`` (or a plain path), ``s3://bucket/prefix``,
``az://container/prefix`` or ``gs://bucket/prefix``."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ledger.artifacts.blobs import Blobs
from ledger.artifacts.local_blobs import LocalBlobs
from ledger.errors import InvalidInputError

OBJECT_STORE_SCHEMES = {"s3": "s3", "s3a": "s3", "az": "az", "azure": "az", "abfs": "az",
                        "gs": "gs", "gcs": "gs"}  # fmt: skip
"""The URL schemes of object stores, and the name each is shown by."""
_SCHEME_FOR_OBSTORE = {"gcs": "gs"}  # a scheme obstore does not know, and its own name
RETRY_S = 30.0
"""How long a request to an object store is retried while it cannot be reached (default)."""
CONNECT_S = 5.0  # longest wait for a connection, within that time
REQUEST_TIMEOUT = timedelta(minutes=30)
"""How long one request to an object store may take. object_store's default (30 s) bounds
each whole request, and completing a large multipart upload (the server joins its parts)
or streaming a large blob can take longer."""


def is_object_store_url(location: str) -> bool:
    """Whether ``location`` names an object store (not a local directory)."""
    return urlsplit(location).scheme.lower() in OBJECT_STORE_SCHEMES


def local_directory(location: str) -> Path:
    """The directory a local location names: a path or a ``file://`` URL."""
    parts = urlsplit(location)
    return Path(unquote(parts.path)) if parts.scheme.lower() == "file" else Path(location)


def open_blobs(location: str | Path, *, retry_s: float = RETRY_S) -> Blobs:
    """The objects at ``location``: a local directory (a path or ``file://`` URL) or an
    object store by URL, whose requests are retried for up to ``retry_s`` seconds while
    it cannot be reached. Unknown schemes and URLs without a bucket are refused."""
    if isinstance(location, Path):
        return LocalBlobs(location)
    parts = urlsplit(location)
    scheme = parts.scheme.lower()
    if scheme not in OBJECT_STORE_SCHEMES:
        if scheme not in ("", "file") and "://" in location:
            known = ", ".join(["file", *OBJECT_STORE_SCHEMES])
            raise InvalidInputError(f"unknown artifact store scheme {scheme!r} (known: {known})")
        return LocalBlobs(local_directory(location))
    if not parts.netloc:
        raise InvalidInputError(f"artifact store URL names no bucket or container: {location!r}")
    return _object_blobs(location, OBJECT_STORE_SCHEMES[scheme], retry_s)


def _object_blobs(location: str, kind: str, retry_s: float) -> Blobs:
    from obstore.store import from_url

    from ledger.artifacts.object_blobs import ObjectBlobs

    scheme, rest = location.split("://", 1)
    try:
        store = from_url(
            f"{_SCHEME_FOR_OBSTORE.get(scheme.lower(), scheme)}://{rest}",
            client_options={
                "allow_http": _plain_http_endpoint(kind),
                "connect_timeout": timedelta(seconds=min(retry_s, CONNECT_S)),
                "timeout": REQUEST_TIMEOUT,
            },
            retry_config={"retry_timeout": timedelta(seconds=retry_s)},
        )
    except Exception as error:  # obstore's configuration errors have no common base
        reason = (str(error).splitlines() or [type(error).__name__])[0]  # no debug dump
        raise InvalidInputError(f"cannot open the artifact store {location!r}: {reason}") from None
    return ObjectBlobs(store, location.rstrip("/"))


def _plain_http_endpoint(kind: str) -> bool:
    """Whether the configured endpoint is plain http (an emulator or a private server),
    which object_store refuses unless allowed."""
    variables = {
        "s3": ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"),
        "az": ("AZURITE_BLOB_STORAGE_URL", "AZURE_STORAGE_ENDPOINT"),
        "gs": ("GOOGLE_SERVICE_ENDPOINT",),
    }[kind]
    return any(os.environ.get(name, "").startswith("http://") for name in variables)
