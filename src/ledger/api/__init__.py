"""The HTTP API (FastAPI): thin queries over the views, and commands on the ledger."""

from ledger.api.app import create_app

__all__ = ["create_app"]
