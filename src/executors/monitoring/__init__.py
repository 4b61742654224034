"""Monitoring online deployments: collecting sampled requests (more to come: sketches, drift)."""
