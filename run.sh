#!/usr/bin/env bash
# ./run.sh            serve Gust on port 8100 (PORT) with embedded defaults
# ./run.sh test [...] run the whole test suite (extra arguments go to pytest)
# Both run ./setup_venvs.sh first when anything is missing or stale.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$HOME/.local/bin:$PATH"

existing() { local p; for p in "$@"; do if [ -e "$p" ]; then printf '%s\n' "$p"; fi; done; }

stamp() {
  # Inputs of the set-up; a change in any of them makes set-up run again. Only the paths
  # that exist: a fresh clone has no frontend/public, an early one no frontend at all.
  local files sources
  mapfile -t files < <(existing uv.lock pyproject.toml frontend/package-lock.json frontend/package.json)
  cat "${files[@]}" | cksum
  mapfile -t sources < <(existing frontend/src frontend/public frontend/index.html frontend/vite.config.ts \
    frontend/svelte.config.js frontend/tsconfig.json frontend/tsconfig.app.json frontend/tsconfig.node.json)
  if [ ${#sources[@]} -gt 0 ]; then
    find "${sources[@]}" -type f -printf '%p %T@\n' | LC_ALL=C sort | cksum
  fi
}

if [ "${1:-}" = "--print-stamp" ]; then stamp; exit 0; fi

needs_setup() {
  [ -x .venv/bin/python ] || return 0
  [ -f .venv/.gust-setup-stamp ] || return 0
  [ "$(stamp)" = "$(cat .venv/.gust-setup-stamp)" ] || return 0
  if [ -f frontend/package.json ] && command -v npm >/dev/null 2>&1 && [ ! -f frontend/dist/index.html ]; then
    return 0
  fi
  return 1
}

if needs_setup; then ./setup_venvs.sh; fi
export PYTHONPATH="$PWD/backend${PYTHONPATH:+:$PYTHONPATH}"

case "${1:-serve}" in
  serve)
    [ $# -gt 0 ] && shift
    exec .venv/bin/python -m gust serve "$@"
    ;;
  test)
    shift
    status=0
    echo "== ruff"; .venv/bin/ruff check backend tests bench || status=1
    echo "== mypy"; .venv/bin/mypy || status=1
    if [ -f frontend/package.json ] && [ -d frontend/node_modules ]; then
      echo "== frontend unit tests"; (cd frontend && npm run --silent test) || status=1
    fi
    echo "== pytest"
    set +e
    .venv/bin/python -m pytest "$@"
    rc=$?
    set -e
    if [ $rc -eq 5 ]; then echo "pytest collected no tests: that is a failure"; rc=1; fi
    [ $rc -ne 0 ] && status=$rc
    exit $status
    ;;
  *)
    exec .venv/bin/python -m gust "$@"
    ;;
esac
