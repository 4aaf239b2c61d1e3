"""Both shipped stores pass the whole adapter contract kit."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from omscore.adapters.memory import MemoryStore
from omscore.adapters.sqlite import SqliteStore
from omscore.ports import Store
from omscore.testing.contract import ProcessContract, ReferenceModelContract, StoreContract


class TestMemoryStore(StoreContract):
    """The reference store proves itself against the same kit."""

    def make_store(self, tmp_path: Path) -> Store:
        """A fresh in-memory store."""
        return MemoryStore()


class TestSqliteStore(StoreContract, ProcessContract, ReferenceModelContract):
    """The embedded store: behaviour, several processes, and the reference model."""

    interleaved_units_of_work = False

    def make_store(self, tmp_path: Path) -> Store:
        """A fresh SQLite file."""
        return SqliteStore(str(tmp_path / "shop.db"))

    def store_opener(self, tmp_path: Path) -> Callable[[], Store]:
        """Each process opens the same file."""
        return functools.partial(SqliteStore, str(tmp_path / "shared.db"))


class TestSqliteStoreCheckpointingInBackground(
    StoreContract, ProcessContract, ReferenceModelContract
):
    """The log moved back into the file by a thread of each store's own, while the kit's
    commands (and processes) go on."""

    interleaved_units_of_work = False

    def make_store(self, tmp_path: Path) -> Store:
        """A fresh SQLite file with a background checkpointer."""
        return SqliteStore(str(tmp_path / "shop.db"), checkpoint="background")

    def store_opener(self, tmp_path: Path) -> Callable[[], Store]:
        """Each process opens the same file, each with its checkpointer."""
        return functools.partial(SqliteStore, str(tmp_path / "shared.db"), checkpoint="background")


class TestSqliteStoreDecodingEveryRead(StoreContract, ReferenceModelContract):
    """With no cache of decoded aggregates every read decodes the rows the store wrote, so
    the kit and the reference model check what is on disk, not what the process kept."""

    interleaved_units_of_work = False

    def make_store(self, tmp_path: Path) -> Store:
        """A fresh SQLite file, read back on every access."""
        return SqliteStore(str(tmp_path / "shop.db"), cache_size=0)


class TestSqliteInMemory(StoreContract):
    """``:memory:`` shares one connection inside the process."""

    interleaved_units_of_work = False

    def make_store(self, tmp_path: Path) -> Store:
        """A fresh in-memory SQLite database."""
        return SqliteStore(":memory:")
