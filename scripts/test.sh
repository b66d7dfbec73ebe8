#!/usr/bin/env bash
# The test command (README, CI): the system packages the tests use (redis-server,
# docker-compose, chromium, wrk), the Python environment,
# then lint, type-check and the suite. Run from anywhere; it works in the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "fits needs Python 3.11 or newer (python3 is $(python3 -V 2>&1))." >&2; exit 1; }

# A real redis-server (the shared-state and fault tests start their own on a free port) and
# docker-compose (to validate deploy/compose.yaml where Docker's compose plugin is missing).
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
{ docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; } \
  || need+=(docker-compose)
# Debian's chromium for the web page's browser test (Playwright drives it; no browser download).
{ command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; } \
  || need+=(chromium)
# wrk, the load client of bench/throughput.py (its test drives it briefly).
command -v wrk >/dev/null 2>&1 || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "The tests need ${need[*]}; install it with your package manager and run this again." >&2
    exit 1
  fi
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 \
      || { echo "Installing ${need[*]} needs root (or sudo)." >&2; exit 1; }
    sudo=(sudo)
  fi
  echo "Installing ${need[*]} with apt..." >&2
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get install -y -q "${need[@]}" >/dev/null 2>&1 \
    || { "${sudo[@]}" apt-get update -q >/dev/null \
         && "${sudo[@]}" apt-get install -y -q "${need[@]}" >/dev/null; }
fi

if [ -z "${VIRTUAL_ENV:-}" ]; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  # shellcheck disable=SC1091
  . .venv/bin/activate
fi
python -m pip install -q --upgrade pip
python -m pip install -q -e ".[dev]"

ruff check . && mypy && python -m pytest -q
