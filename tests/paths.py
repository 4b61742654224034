"""Where the repository's parts are, for tests that read files of the tree."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src"
BENCHMARKS = REPO / "benchmarks"
