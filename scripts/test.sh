#!/usr/bin/env bash
# Set everything up and run the whole test suite: lint, format, types, then pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh -k verify).
source "$(dirname "$0")/bootstrap.sh" dev  # the project and its test tools
bash scripts/services.sh
echo "==> ruff check" >&2
ruff check src tests benchmarks examples
echo "==> ruff format --check" >&2
ruff format --check src tests benchmarks examples
echo "==> mypy src" >&2
mypy src
echo "==> pytest" >&2
exec python -m pytest "$@"
