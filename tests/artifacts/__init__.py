"""Artifact files: content-addressed storage, verified downloads, data profiles."""
