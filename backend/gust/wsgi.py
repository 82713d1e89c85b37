"""gunicorn entry point: `gunicorn -k tornado -w 2 -c backend/gust/gunicorn_conf.py gust.wsgi:application`.

Each worker imports this module after the fork and gets its own application; its
services (database clients bound to an event loop) are built on that worker's loop
on the first request, never at import time.
"""

from __future__ import annotations

import sys

from gust.app import make_app
from gust.config import ConfigError, load_settings
from gust.observability import setup_logging

try:
    _settings = load_settings()
except ConfigError as exc:  # gunicorn shows this and stops the worker
    print(f"gust: {exc}", file=sys.stderr)
    raise SystemExit(2) from None
setup_logging(_settings.log_level, _settings.log_format)

application = make_app(_settings, None)
