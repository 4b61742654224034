"""Content-addressed artifact storage: files kept once, named by their sha256 digest.

``store`` holds the store itself, ``paths`` what its files are called (entries, digests,
safe relative paths, file URIs) and ``files`` reading files in chunks (hashing, scanning).
"""
