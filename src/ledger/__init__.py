"""Lifecycle Ledger: MLOps lifecycle management as an event-sourced ledger."""

__version__ = "0.1.0"
