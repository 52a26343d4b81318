#!/usr/bin/env bash
# Debian's Chromium for the browser tests (tests/e2e/tests/test_e2e_web_client.py): Playwright
# drives it as it is, so no browser is downloaded.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "[browser] chromium: installing from Debian's packages"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "[browser] Chromium is missing: install it (apt-get install chromium)" >&2
  exit 1
fi
