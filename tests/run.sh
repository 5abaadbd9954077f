#!/usr/bin/env bash
# The project's test command (README). Runs the whole suite headless:
# - Qt offscreen; the real OS keyring through gnome-keyring inside a private D-Bus session when available.
set -euo pipefail
cd "$(dirname "$0")/.."
export QT_QPA_PLATFORM=offscreen
# Local chain, compiler and protocol packages for the on-chain tests (npm registry; no-op when
# installed and no older than the lock file, which npm copies to node_modules/.package-lock.json).
peers=tests/integration/peers
if [ -f "$peers/package.json" ] && command -v npm >/dev/null \
   && { [ ! -d "$peers/node_modules" ] || [ "$peers/package-lock.json" -nt "$peers/node_modules/.package-lock.json" ]; }; then
    npm ci --prefix "$peers" --no-audit --no-fund --loglevel=error >/dev/null 2>&1 \
        || echo "warning: npm could not install $peers (anvil/solc tests will skip)" >&2
fi
export PYTHONHASHSEED=0
if command -v dbus-run-session >/dev/null && command -v gnome-keyring-daemon >/dev/null \
   && [ -z "${BASIS_IN_KEYRING_SESSION:-}" ]; then
    export BASIS_IN_KEYRING_SESSION=1
    exec dbus-run-session -- bash "$0" "$@"
fi
if [ -n "${BASIS_IN_KEYRING_SESSION:-}" ]; then
    # A throwaway keyring: its own data/runtime dirs, unlocked with a throwaway password.
    tmp=$(mktemp -d)
    export XDG_DATA_HOME="$tmp/data" XDG_RUNTIME_DIR="$tmp/run"
    mkdir -p "$XDG_DATA_HOME" "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
    eval "$(printf 'ci-keyring-pw' | gnome-keyring-daemon --unlock --components=secrets)"
    export GNOME_KEYRING_CONTROL
fi
# The GUI tests run on a qasync loop that stays "running" for the rest of their process
# (docs/ARCHITECTURE.md, Testing), which pytest-asyncio's own loops cannot share: they get a process of their own. Arguments
# naming test paths run just those, in one process.
# Each process is bounded from outside too (pytest-timeout bounds each test, tests/conftest.py the exit).
pytest=(timeout --kill-after=30 1500 python -m pytest -q -p no:cacheprovider)
for arg in "$@"; do
    case "$arg" in tests*|*/tests/*) exec "${pytest[@]}" "$@" ;; esac
done
status=0
# Static types of the engine and the venue adapters (configured in pyproject.toml's [tool.mypy]).
echo "mypy: engine/ venues/"
python -m mypy || status=$?
"${pytest[@]}" --ignore=tests/gui "$@" tests || status=$?
"${pytest[@]}" "$@" tests/gui || status=$?
exit $status
