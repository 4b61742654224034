"""What a user does from a fresh clone: the README, the compose file, the benchmarks."""
