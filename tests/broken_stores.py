"""Stores with one bug each, of the kinds store adapters are written with.

Each is the reference ``MemoryStore`` with one rule broken; ``test_contract_kit_catches``
runs the adapter contract kit on each and checks that the kit fails it, by name.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from omscore.adapters.memory import MemoryStore, MemoryUnitOfWork


class _Deaf(dict[Any, Any]):
    """A dict that ignores writes."""

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Ignore the update."""


class _Dropping(list[Any]):
    """A list that ignores what is appended in bulk."""

    def extend(self, values: Iterable[Any]) -> None:
        """Drop ``values``."""


class _Doubling(list[Any]):
    """A list that appends everything twice."""

    def extend(self, values: Iterable[Any]) -> None:
        """Append ``values``, then append them again."""
        values = list(values)
        super().extend(values + values)


class _WriteThrough(dict[Any, Any]):
    """Staged rows that land in the table at once, before any commit."""

    def __init__(self, table: dict[Any, Any]) -> None:
        super().__init__()
        self.table = table

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        self.table[key] = value


class _NoCheckUnitOfWork(MemoryUnitOfWork):
    def _opened(self, repo: Any) -> Any:
        repo.conflicts = list  # no optimistic concurrency: every write wins
        return super()._opened(repo)


class _EagerUnitOfWork(MemoryUnitOfWork):
    def _opened(self, repo: Any) -> Any:
        repo.staged = _WriteThrough(repo._table.rows)  # writes visible before the commit
        return super()._opened(repo)


class _Unseen(dict[Any, Any]):
    """Staged rows that reads do not find (``key in staged`` is always false)."""

    def __contains__(self, key: object) -> bool:
        return False


class _CommittedReadsUnitOfWork(MemoryUnitOfWork):
    def _opened(self, repo: Any) -> Any:
        repo.staged = _Unseen()  # a get finds the committed row, not the one just put
        return super()._opened(repo)


class LastWriteWinsStore(MemoryStore):
    """Never checks versions: a write over a newer row (or an existing id) goes through."""

    def unit_of_work(self, *, write: bool = True) -> MemoryUnitOfWork:
        """A unit of work that commits without a version check."""
        return _NoCheckUnitOfWork(self)


class EagerStore(MemoryStore):
    """Writes each aggregate when it is put, not at commit: no rollback."""

    def unit_of_work(self, *, write: bool = True) -> MemoryUnitOfWork:
        """A unit of work whose writes land at once."""
        return _EagerUnitOfWork(self)


class CommittedReadsStore(MemoryStore):
    """Reads committed rows only: a unit of work does not see what it has just put."""

    def unit_of_work(self, *, write: bool = True) -> MemoryUnitOfWork:
        """A unit of work whose reads skip its own staged writes."""
        return _CommittedReadsUnitOfWork(self)


class DoubledOutboxStore(MemoryStore):
    """Writes every event of a commit into the outbox twice."""

    def __init__(self) -> None:
        super().__init__()
        self.events = _Doubling()


class LedgerlessStore(MemoryStore):
    """Stores the stock levels but drops their ledger movements."""

    def __init__(self) -> None:
        super().__init__()
        self.ledger = _Dropping()


class ForgetfulStore(MemoryStore):
    """Never keeps an idempotency record: a repeated command runs again."""

    def __init__(self) -> None:
        super().__init__()
        self.idempotency = _Deaf()


class NoExpiryIndexStore(MemoryStore):
    """Never notes when reservations expire, so none are ever found expiring."""

    def __init__(self) -> None:
        super().__init__()
        self.expiry_index = _Deaf()


class _InsertOnly(dict[Any, Any]):
    """Rows that take new keys and ignore changes to existing ones."""

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Add the rows not there yet."""
        for key, value in dict(*args, **kwargs).items():
            self.setdefault(key, value)


class FrozenReturnsStore(MemoryStore):
    """Stores a return when it is requested and never again: its later steps are lost."""

    def __init__(self) -> None:
        super().__init__()
        self.returns.rows = _InsertOnly()
