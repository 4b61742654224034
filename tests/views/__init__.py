"""Read models: following the log, rebuilding, crashing mid-way."""
