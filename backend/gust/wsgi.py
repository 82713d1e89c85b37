"""gunicorn entry point: `gunicorn -c backend/gust/gunicorn_conf.py -w 2 gust.wsgi:application`.

Each worker imports this module after the fork and gets its own application; its
services (database clients bound to an event loop) are built on that worker's loop by
the post_worker_init hook of gunicorn_conf.py (without it: on the first request), never
at import time.
"""

from __future__ import annotations

import sys

from gust.app import make_app
from gust.config import ConfigError, load_settings
from gust.observability import setup_logging

try:
    _settings = load_settings()
except ConfigError as exc:
    print(f"gust: {exc}", file=sys.stderr)
    # 4 is gunicorn's "App failed to load": the master stops instead of respawning workers.
    raise SystemExit(4) from None
setup_logging("DEBUG" if _settings.debug else _settings.log_level, _settings.log_format)

application = make_app(_settings)
