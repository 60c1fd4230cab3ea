#!/usr/bin/env bash
# Runs the Python client's tests against the real pentascope binary.
#
#   clients/python/run-tests.sh [--venv PATH] [PYTEST ARGS...]
#
# Creates (or reuses) a virtualenv, default <repo>/.venv-client (or
# $PENTASCOPE_CLIENT_VENV), installs the package with the extras
# [celery,test] and runs pytest. The binary is $PENTASCOPE_BIN (default
# <repo>/target/debug/pentascope), the fixtures $PENTASCOPE_FIXTURES (default
# <repo>/../shared/fixtures); the Celery tests need Redis (see tests/conftest.py).
# Exits non-zero when a test fails or none is collected.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${PENTASCOPE_CLIENT_VENV:-$repo/.venv-client}"
if [ "${1:-}" = "--venv" ]; then
    venv="${2:?--venv needs a path}"
    shift 2
fi

if [ ! -x "$venv/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
# Always reinstall the package itself, so the tests run the current sources.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$here[celery,test]"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$here"

cd "$here"
# pytest exits 5 when no test is collected, 1 when one fails.
exec "$venv/bin/python" -m pytest "$@"
