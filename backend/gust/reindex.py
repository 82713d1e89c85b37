"""`python -m gust reindex`: one reconcile of the search index with the store."""

from __future__ import annotations

import dataclasses
import json
import logging

from gust.config import Settings
from gust.ports.search import SearchIndexError
from gust.services.reconcile import Reconciler
from gust.wiring import make_indexer, make_search_index, make_store

log = logging.getLogger(__name__)


async def reindex(settings: Settings, *, full: bool, wait: float) -> int:
    """One reconcile; prints its report as JSON; 0 when done."""
    store = make_store(settings)
    await store.start()
    index = make_search_index(settings)
    try:
        indexer = make_indexer(settings, store, index, None)
        indexer.index_started = False
        report = await Reconciler(indexer, full=full).run(wait_for_lock=wait)
    except SearchIndexError as exc:
        log.error("reindex failed: %s", exc)
        return 1
    finally:
        await index.close()
        await store.close()
    if report is None:
        log.error("another process is reconciling the search index; try again later")
        return 3
    print(json.dumps(dataclasses.asdict(report)))  # the command's output, for scripts
    return 0
