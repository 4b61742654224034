"""The rule engine: judges the ledger's events against the rules and acts for them."""
