# gunicorn reads this file from its working directory: `gunicorn gust.wsgi:application`
# run from the repository root gets Gust's settings and hooks (backend/gust/gunicorn_conf.py).
import sys
from pathlib import Path

_backend = str(Path(__file__).resolve().parent / "backend")
if _backend not in sys.path:
    sys.path.insert(0, _backend)

from gust.gunicorn_conf import (  # noqa: E402
    accesslog,
    bind,
    graceful_timeout,
    on_starting,
    post_worker_init,
    worker_class,
    worker_exit,
)

__all__ = [
    "accesslog",
    "bind",
    "graceful_timeout",
    "on_starting",
    "post_worker_init",
    "worker_class",
    "worker_exit",
]
