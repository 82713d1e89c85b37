"""docs/deploy.md stays true to the code: its commands and settings exist."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from gust.__main__ import build_parser
from gust.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "docs" / "deploy.md"
# Names that belong to other programs (gunicorn, Meilisearch, Docker).
NOT_GUST = {"WEB_CONCURRENCY", "MEILI_MASTER_KEY", "HEALTHCHECK"}


def commands() -> set[str]:
    parser = build_parser()
    for action in parser._actions:  # argparse keeps subcommands only here
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    raise AssertionError("the CLI has no subcommands")


def test_deploy_doc_uses_only_real_commands_and_flags() -> None:
    text = DEPLOY.read_text()
    used = set(re.findall(r"python -m gust ([a-z]+)", text))
    assert used and used <= commands(), f"unknown commands: {used - commands()}"
    assert "reindex --full" in text
    build_parser().parse_args(["reindex", "--full"])
    build_parser().parse_args(["restore", "DIR", "--force"])


def test_deploy_doc_names_only_real_settings() -> None:
    names = set(re.findall(r"`\$?([A-Z][A-Z0-9_]{2,})(?:=[^`]*)?`", DEPLOY.read_text()))
    settings = {name.upper() for name in Settings.model_fields}
    assert names - settings - NOT_GUST == set(), "deploy.md names settings config.py does not read"
    assert {"AUTH_SECRET_KEY", "GUST_ENV", "REDIS_URL", "TRUSTED_PROXIES", "MONGODB_URI"} <= names


def test_readme_links_the_deploy_guide_and_the_nginx_example() -> None:
    readme = (ROOT / "README.md").read_text()
    for target in ("docs/deploy.md", "docs/nginx.conf"):
        assert f"]({target})" in readme and (ROOT / target).exists()
    nginx = (ROOT / "docs" / "nginx.conf").read_text()
    for directive in ("proxy_buffering off;", "proxy_read_timeout", "X-Forwarded-Proto", "ssl_certificate"):
        assert directive in nginx
