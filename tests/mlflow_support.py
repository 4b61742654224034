"""A real MLflow registry for the tests: the benchmarks' `mlflow server` and backend store
(benchmarks/_mlflow.py), shared rather than copied."""

from __future__ import annotations

import sys

from tests.paths import BENCHMARKS

# Appended, not prepended: benchmarks/projections.py must not shadow the package.
if str(BENCHMARKS) not in sys.path:
    sys.path.append(str(BENCHMARKS))

from _mlflow import mlflow_database, mlflow_server

__all__ = ["mlflow_database", "mlflow_server"]
