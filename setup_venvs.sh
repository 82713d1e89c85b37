#!/usr/bin/env bash
# Idempotent set-up: Python environment (uv), the frontend build, and a stamp that
# run.sh compares to decide whether set-up is needed again. Safe to run any time.
set -euo pipefail
cd "$(dirname "$0")"

say() { printf 'setup: %s\n' "$*"; }
skipped=()

# 1. uv (manages Python and the virtual environment): on PATH, in pip's user bin
#    (~/.local/bin on Linux), or as a package of python3 (`python3 -m uv`).
user_bin="$(python3 -m site --user-base 2>/dev/null || echo "$HOME/.local")/bin"
export PATH="$PATH:$user_bin:$HOME/.local/bin:$HOME/.cargo/bin"
find_uv() {
  if command -v uv >/dev/null 2>&1; then uv=(uv)
  elif python3 -m uv --version >/dev/null 2>&1; then uv=(python3 -m uv)
  else return 1
  fi
}
if ! find_uv; then
  say "installing uv from PyPI (pip install --user uv)"
  # --break-system-packages: Debian's and Homebrew's Pythons refuse --user installs
  # otherwise (PEP 668); uv is one self-contained binary and touches nothing else.
  python3 -m pip install --quiet --user uv 2>/dev/null \
    || python3 -m pip install --quiet --user --break-system-packages uv 2>/dev/null \
    || { command -v curl >/dev/null 2>&1 && say "pip failed: trying uv's installer (astral.sh)" \
         && curl -LsSf https://astral.sh/uv/install.sh | sh; } \
    || true
  if ! find_uv; then
    say "could not install uv: install it (https://docs.astral.sh/uv/) or python3-pip, then run ./run.sh again"
    exit 1
  fi
fi

# 2. Python dependencies, exactly as locked.
say "syncing the Python environment (uv sync --frozen)"
"${uv[@]}" sync --frozen --quiet

# 3. Frontend build (optional: the API works without it).
if [ -f frontend/package.json ]; then
  if command -v npm >/dev/null 2>&1; then
    (
      cd frontend
      if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
        say "installing frontend packages (npm ci)"
        npm ci --no-audit --no-fund --loglevel=error
      fi
      say "building the frontend into frontend/dist"
      npm run --silent build >/dev/null
    )
  else
    skipped+=("frontend build: npm not found (install Node.js 20+ to get the browser UI; the API works without it)")
  fi
else
  skipped+=("frontend build: frontend/package.json missing")
fi

# 4. Stamp: what this set-up was made from.
./run.sh --print-stamp > .venv/.gust-setup-stamp
for s in "${skipped[@]+"${skipped[@]}"}"; do say "skipped $s"; done
say "done"
