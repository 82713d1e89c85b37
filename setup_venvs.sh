#!/usr/bin/env bash
# Idempotent set-up: Python environment (uv), the frontend build, and a stamp that
# run.sh compares to decide whether set-up is needed again. Safe to run any time.
set -euo pipefail
cd "$(dirname "$0")"

say() { printf 'setup: %s\n' "$*"; }
skipped=()

# 1. uv (manages Python and the virtual environment).
if ! command -v uv >/dev/null 2>&1; then
  if [ -x "$HOME/.local/bin/uv" ]; then
    export PATH="$HOME/.local/bin:$PATH"
  else
    say "installing uv from PyPI"
    python3 -m pip install --quiet --user uv 2>/dev/null \
      || python3 -m pip install --quiet --user --break-system-packages uv
    export PATH="$HOME/.local/bin:$PATH"
  fi
fi

# 2. Python dependencies, exactly as locked.
say "syncing the Python environment (uv sync --frozen)"
uv sync --frozen --quiet

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
