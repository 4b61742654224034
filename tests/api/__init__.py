"""The HTTP API, in process and as a server."""
