"""Every store port at once: what each store adapter implements.

The composition root builds the store as an `AppStore` (gust/wiring.py `make_store`), so
mypy checks there that the SQLite and MongoDB adapters conform to every narrow port; each
service is then handed the narrow port it needs, without a cast.
"""

from __future__ import annotations

from typing import Protocol

from gust.ports.accounts_store import AccountsStore
from gust.ports.extras_store import ExtrasStore
from gust.ports.files_store import FilesStore
from gust.ports.search_store import SearchStore
from gust.ports.shares_store import SharesStore
from gust.ports.usage_store import UsageStore


class AppStore(AccountsStore, SearchStore, UsageStore, ExtrasStore, SharesStore, FilesStore, Protocol):
    """The store port of the whole application (the core Store and every mixin's methods)."""
