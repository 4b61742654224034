"""Garbage collection of the artifact store (`ledger gc`): the mark (``references``), the
trash, the run (``collector``) and its report."""
