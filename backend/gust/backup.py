"""`python -m gust backup DIR` / `restore DIR` for the embedded default (SQLite files).

A backup directory holds consistent copies of DATA_DIR's store (gust.db) and search index
(search.db), made with SQLite's online backup API while Gust may be running, the signing
key file when there is one, and manifest.json naming each file with its size and SHA-256.
MongoDB and Meilisearch have their own tools (docs/deploy.md).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from gust import __version__
from gust.config import SECRET_FILE, Settings

MANIFEST = "manifest.json"
FORMAT = "gust.backup"
STORE_FILE = "gust.db"
SEARCH_FILE = "search.db"

MONGO_PROCEDURE = """\
gust: MONGODB_URI is set, so the store lives in MongoDB; `gust backup` copies only the
embedded SQLite files. Back up MongoDB with its own tools instead:

  mongodump --uri "$MONGODB_URI" --db "$MONGODB_DB_NAME" --archive=gust-$(date +%F).archive --gzip
  mongorestore --uri "$MONGODB_URI" --archive=gust-YYYY-MM-DD.archive --gzip --drop

Meilisearch (MEILISEARCH_HOST): create a dump with
  curl -X POST "$MEILISEARCH_HOST/dumps" -H "Authorization: Bearer $MEILISEARCH_API_KEY"
or skip it and rebuild the index from the store after a restore:
  python -m gust reindex --full
Keep AUTH_SECRET_KEY with your secrets. See docs/deploy.md.
"""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite database (the online backup API, page by page)."""
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target, timeout=30)
    try:
        with dst:
            src.backup(dst, pages=1024)
    finally:
        dst.close()
        src.close()


def _is_empty(directory: Path) -> bool:
    return not directory.exists() or not any(directory.iterdir())


def backup(settings: Settings, target: Path, *, force: bool = False) -> int:
    """Copy the store, the search index and the key file into `target`; 0 when done."""
    if settings.mongodb_uri:
        print(MONGO_PROCEDURE, file=sys.stderr)
        return 2
    if not settings.sqlite_path.exists():
        print(f"gust: no store at {settings.sqlite_path}: check DATA_DIR", file=sys.stderr)
        return 1
    if not _is_empty(target) and not force:
        print(f"gust: {target} is not empty; choose a new directory (or --force to overwrite)",
              file=sys.stderr)
        return 1
    target.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict[str, Any]] = {}
    sources = [(settings.sqlite_path, STORE_FILE)]
    if settings.meilisearch_host:
        print("gust: the search index is in Meilisearch: not copied (dump it, or run "
              "`python -m gust reindex --full` after a restore)", file=sys.stderr)
    elif settings.search_path.exists():
        sources.append((settings.search_path, SEARCH_FILE))
    for source, name in sources:
        _copy_sqlite(source, target / name)
    key_file = settings.data_dir / SECRET_FILE
    if key_file.exists():
        shutil.copy2(key_file, target / SECRET_FILE)
        (target / SECRET_FILE).chmod(0o600)
    for name in (STORE_FILE, SEARCH_FILE, SECRET_FILE):
        path = target / name
        if path.exists():
            files[name] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
    manifest = {"format": FORMAT, "version": 1, "gust_version": __version__,
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "data_dir": str(settings.data_dir.resolve()), "files": files}
    (target / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    print(json.dumps({"backup": str(target), "files": sorted(files)}))
    return 0


def restore(settings: Settings, source: Path, *, force: bool = False) -> int:
    """Put a backup made by `backup` into DATA_DIR (empty unless --force); 0 when done."""
    if settings.mongodb_uri:
        print(MONGO_PROCEDURE, file=sys.stderr)
        return 2
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except (OSError, ValueError):
        print(f"gust: {source} holds no readable {MANIFEST}: not a Gust backup", file=sys.stderr)
        return 1
    files: dict[str, dict[str, Any]] = manifest.get("files", {}) if manifest.get("format") == FORMAT else {}
    if STORE_FILE not in files:
        print(f"gust: {source} is not a Gust backup (no {STORE_FILE} in its manifest)", file=sys.stderr)
        return 1
    for name, meta in files.items():
        path = source / name
        if not path.exists() or _sha256(path) != meta.get("sha256"):
            print(f"gust: {path} is missing or does not match the manifest; nothing restored",
                  file=sys.stderr)
            return 1
    data_dir = settings.data_dir
    if not _is_empty(data_dir) and not force:
        print(f"gust: DATA_DIR {data_dir} is not empty; restore into an empty directory, or pass "
              "--force to overwrite it (stop Gust first)", file=sys.stderr)
        return 1
    data_dir.mkdir(parents=True, exist_ok=True)
    targets = {STORE_FILE: settings.sqlite_path, SEARCH_FILE: settings.search_path}
    for name, target in targets.items():
        if name in files:
            for suffix in ("-wal", "-shm", "-journal"):  # left from an overwritten database
                target.with_name(target.name + suffix).unlink(missing_ok=True)
            target.unlink(missing_ok=True)
            _copy_sqlite(source / name, target)
    if SECRET_FILE in files:
        key = data_dir / SECRET_FILE
        key.unlink(missing_ok=True)
        shutil.copy2(source / SECRET_FILE, key)
        key.chmod(0o600)
    print(json.dumps({"restored": str(data_dir), "files": sorted(files)}))
    if SEARCH_FILE not in files or settings.meilisearch_host:
        print("gust: the backup has no search index: run `python -m gust reindex --full` to "
              "rebuild it from the store", file=sys.stderr)
    return 0
