"""Command line: `python -m gust serve` and maintenance commands."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from gust import __version__, users_cli
from gust.config import ConfigError, load_settings
from gust.observability import setup_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gust",
        description="Gust: a self-hosted AI chat server. Configuration comes from the "
        "environment and .env (see .env.example).",
    )
    parser.add_argument("--version", action="version", version=f"gust {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser("serve", help="serve HTTP (the default command)")
    serve.add_argument("--port", type=int, help="port to listen on (default: PORT or 8100)")
    serve.add_argument("--host", help="address to bind (default: HOST or 0.0.0.0)")
    reindex = sub.add_parser(
        "reindex",
        help="repair the search index: send pending, missing or stale documents, delete orphans",
    )
    reindex.add_argument("--full", action="store_true", help="re-send every document, even current ones")
    reindex.add_argument("--wait", type=float, default=60.0, metavar="SECONDS",
                         help="wait this long for a reconcile running elsewhere (default: 60)")
    backup = sub.add_parser("backup", help="copy the embedded store, search index and key into DIR")
    backup.add_argument("dir", type=Path, metavar="DIR")
    backup.add_argument("--force", action="store_true", help="write into a non-empty DIR")
    restore = sub.add_parser("restore", help="restore a backup from DIR into an empty DATA_DIR")
    restore.add_argument("dir", type=Path, metavar="DIR")
    restore.add_argument("--force", action="store_true", help="overwrite a non-empty DATA_DIR")
    users_cli.add_parser(sub)
    return parser


def cli(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = args.command or "serve"
    overrides = {}
    if command == "serve":
        if getattr(args, "port", None) is not None:
            overrides["port"] = args.port
        if getattr(args, "host", None):
            overrides["host"] = args.host
    try:
        settings = load_settings(**overrides)
    except ConfigError as exc:
        print(f"gust: {exc}", file=sys.stderr)
        return 2
    setup_logging("DEBUG" if settings.debug else settings.log_level, settings.log_format)
    if command == "serve":
        from gust.serve import main

        try:
            asyncio.run(main(settings))
        except ConfigError as exc:
            print(f"gust: {exc}", file=sys.stderr)
            return 2
        return 0
    if command in ("backup", "restore"):
        from gust import backup

        run = backup.backup if command == "backup" else backup.restore
        return run(settings, args.dir, force=args.force)
    if command == "users":
        return asyncio.run(users_cli.run(settings, args))
    if command == "reindex":
        from gust.reindex import reindex

        return asyncio.run(reindex(settings, full=args.full, wait=args.wait))
    return 1


if __name__ == "__main__":
    sys.exit(cli())
