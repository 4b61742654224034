"""Executors that react to ledger events: pipelines, batch scoring, online inference."""
