"""The ledger CLI through its real entry point."""
