"""The ledger's commands and queries, grouped by the entities they act on."""
