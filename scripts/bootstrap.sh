#!/usr/bin/env bash
# Installs what `make run` and `make test` need on a fresh machine: uv, a Python 3.13 for the
# workspace, the locked dependencies, nginx (the API gateway in process mode) and Node.js with
# npm (for the locked socket.io-client bundle the web client is served with), each from
# Debian's packages when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[bootstrap] %s\n' "$*"; }

if ! command -v uv >/dev/null 2>&1; then
  say "uv: installing with pip"
  python3 -m pip install --quiet uv || { echo "[bootstrap] could not install uv: run 'pip install uv'" >&2; exit 1; }
fi

is_313() { [ -x "$1" ] && "$1" -c 'import sys; raise SystemExit(sys.version_info[:2] != (3, 13))' 2>/dev/null; }

find_python() {
  local candidate
  for candidate in "${UV_PYTHON:-}" "$(uv python find 3.13 2>/dev/null || true)" \
      "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.13*/bin/python3.13 \
      /usr/local/bin/python3.13 /usr/bin/python3.13; do
    if [ -n "$candidate" ] && is_313 "$candidate"; then echo "$candidate"; return 0; fi
  done
  return 1
}

if ! PYTHON=$(find_python); then
  echo "[bootstrap] no Python 3.13 found: install one (pyenv install 3.13, or apt-get install python3.13)" >&2
  exit 1
fi
export UV_PYTHON="$PYTHON"

if [ ! -x .venv/bin/python ] || ! is_313 .venv/bin/python; then
  say "virtualenv: creating with $PYTHON"
  uv venv --quiet --allow-existing --python "$PYTHON" .venv
fi
say "dependencies: uv sync (locked)"
uv sync --quiet --locked --all-packages --python "$PYTHON"

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "nginx: installing from Debian's packages"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
  else
    echo "[bootstrap] nginx is missing: install it (apt-get install nginx-light)" >&2
    exit 1
  fi
fi
# The official socket.io-client, locked: for the web client nginx serves at / (clients/web) and
# for the e2e suite's Node client (tests/e2e/tests/test_e2e_node_client.py). Node.js only runs
# `npm ci` and that client, so Debian's own (18) is enough.
if ! command -v npm >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "Node.js: installing from Debian's packages"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "[bootstrap] Node.js is missing: install Node.js 18 or newer with npm (apt-get install nodejs npm)" >&2
    exit 1
  fi
fi
for node_dir in clients/web tests/e2e/node; do
  if ! cmp -s "$node_dir/package-lock.json" "$node_dir/node_modules/.bootstrap-lock.json"; then
    say "node packages: npm ci in $node_dir (locked)"
    (cd "$node_dir" && npm ci --silent --no-audit --no-fund)
    cp "$node_dir/package-lock.json" "$node_dir/node_modules/.bootstrap-lock.json"
  fi
done
say "ready"
