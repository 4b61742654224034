"""Rules and algorithms on their own: aggregates, the chain, settings, the code's shape."""
