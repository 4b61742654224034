# Sourced by the other scripts: create .venv and install the project into it when needed.
#   source scripts/bootstrap.sh [EXTRAS]   EXTRAS: the optional dependencies to install with
#   it (default: dev, what the tests need; the demo asks for `examples` only).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
extras="${1:-dev}"
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv" >&2
  "$PYTHON" -m venv .venv
fi
# Reinstall only when the dependency list changed (stamp = hash of pyproject.toml) or other
# extras are asked for.
hash="$(sha256sum pyproject.toml | cut -c1-16)"
stamp=".venv/.installed-$hash-$extras"
if [ ! -f "$stamp" ]; then
  echo "==> installing lifecycle-ledger[$extras] and its dependencies into .venv" >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[$extras]" >&2
  find .venv -maxdepth 1 -name '.installed-*' ! -name ".installed-$hash-*" -delete
  touch "$stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"
# The web UI's browser tests drive Debian's Chromium (Playwright downloads no browser here).
if [ "$extras" = dev ] && ! command -v chromium >/dev/null && command -v apt-get >/dev/null \
    && [ "$(id -u)" = 0 ]; then
  echo "==> installing Debian's chromium for the browser tests" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 \
    || (apt-get update -q >/dev/null 2>&1 \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1) \
    || echo "!! could not install chromium: the browser tests will be skipped" >&2
fi
# The object store tests run Azurite, the Azure Storage emulator, from npm.
AZURITE_VERSION=3.37.0
if [ "$extras" = dev ] && command -v npm >/dev/null \
    && [ ! -f ".venv/azurite/.installed-$AZURITE_VERSION" ]; then
  echo "==> installing Azurite $AZURITE_VERSION (npm) for the object store tests" >&2
  mkdir -p .venv/azurite
  if npm install --prefix .venv/azurite --no-audit --no-fund --silent \
      "azurite@$AZURITE_VERSION" >/dev/null 2>&1; then
    touch ".venv/azurite/.installed-$AZURITE_VERSION"
  else
    echo "!! could not install Azurite: the Azure Blob tests will be skipped" >&2
  fi
fi
