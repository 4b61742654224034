"""The write side on both stores: commands, command ids, durability, outages, checkpoints."""
