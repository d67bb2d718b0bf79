"""The store's database: one small interface over SQLite (one PC, a file in the store) and PostgreSQL (a lab of
several PCs, ``LABCTL_DB=postgresql://…``), so the queue and the registry hold their SQL once.

SQL is written with ``?`` placeholders and the common subset of both dialects; what differs is a property here:
``skip_locked`` (a row another agent is claiming is passed over, not waited for), ``now_s`` (the database's clock
in epoch seconds, so leases never depend on a PC's clock), ``integrity_errors`` and notifications (PostgreSQL's
LISTEN/NOTIFY wakes an agent at once; on SQLite a waiter simply polls). Rows come back as dicts.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from labctl.store.sqlite import StoreError, connect

QUEUE_CHANNEL = "labctl_queue"  # notified when an entry may have become due (added, released, moved, ended)


class Database:
    """What the queue and the registry ask of a database."""

    dialect: str
    url: str  # for messages and for opening the same database again (a listener, another thread)
    skip_locked: str
    now_s: str
    integrity_errors: tuple[type[Exception], ...]
    unavailable_errors: tuple[type[Exception], ...]  # the database cannot answer now (locked, down, unreachable)

    @property
    def lapsed(self) -> str:
        """SQL that is true for a row whose lease (``lease_until``, on the database's clock) has lapsed."""
        return f"(lease_until IS NOT NULL AND lease_until < {self.now_s})"

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        """Run one statement; the cursor has ``fetchone``, ``fetchall`` (dict rows) and ``rowcount``."""
        raise NotImplementedError

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """A read-then-write transaction no other writer interleaves with; rolled back on an exception."""
        raise NotImplementedError

    def notify(self, channel: str = QUEUE_CHANNEL) -> None:
        """Wake whoever waits on ``channel`` (delivered when the current transaction commits)."""

    def waiter(self, channel: str = QUEUE_CHANNEL) -> Waiter:
        return Waiter()

    def close(self) -> None:
        raise NotImplementedError


class Waiter:
    """Blocks until notified or a timeout; this one (SQLite's) knows of no notification and just waits."""

    def __init__(self) -> None:
        self._closed = threading.Event()

    def wait(self, timeout_s: float) -> bool:
        """Whether a notification came before ``timeout_s``."""
        self._closed.wait(timeout_s)
        return False

    def close(self) -> None:
        self._closed.set()


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {column[0]: value for column, value in zip(cursor.description, row, strict=True)}


class SQLiteDatabase(Database):
    dialect = "sqlite"
    skip_locked = ""  # BEGIN IMMEDIATE already admits one writer at a time
    now_s = "((julianday('now') - 2440587.5) * 86400.0)"
    integrity_errors = (sqlite3.IntegrityError,)
    unavailable_errors = (sqlite3.OperationalError,)

    def __init__(self, path: Path) -> None:
        self.url = str(path)
        self._db = connect(path)
        self._db.row_factory = _dict_row

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        return self._db.execute(sql, params)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()


class PostgresDatabase(Database):
    dialect = "postgresql"
    skip_locked = " FOR UPDATE SKIP LOCKED"
    now_s = "EXTRACT(EPOCH FROM clock_timestamp())::double precision"

    def __init__(self, url: str) -> None:
        import psycopg  # here: a one-PC store never loads it

        self.url = url
        self._psycopg = psycopg
        self.integrity_errors = (psycopg.IntegrityError,)
        self.unavailable_errors = (psycopg.OperationalError, StoreError)
        self._lock = threading.RLock()  # one statement or transaction at a time on the shared connection
        self._conn = self._connect()

    def _connect(self) -> Any:
        from psycopg.rows import dict_row

        try:
            return self._psycopg.connect(self.url, autocommit=True, row_factory=dict_row, connect_timeout=10)
        except self._psycopg.OperationalError as e:
            raise StoreError(f"cannot reach the lab database {_safe(self.url)}: {_first_line(e)}; check LABCTL_DB "
                             "(or lab.toml's [database] url) and that PostgreSQL runs there") from None

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        sql = sql.replace("%", "%%").replace("?", "%s")
        with self._lock:
            if self._conn.closed or self._conn.broken:
                self._conn = self._connect()  # the server restarted or the network dropped: one new try
            return self._conn.execute(sql, params)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock, self._conn.transaction():
            yield

    def notify(self, channel: str = QUEUE_CHANNEL) -> None:
        self.execute("SELECT pg_notify(?, '')", (channel,))

    def waiter(self, channel: str = QUEUE_CHANNEL) -> Waiter:
        return _PostgresWaiter(self, channel)

    def close(self) -> None:
        self._conn.close()


class _PostgresWaiter(Waiter):
    """A connection of its own that LISTENs on ``channel``."""

    def __init__(self, db: PostgresDatabase, channel: str) -> None:
        super().__init__()
        self._conn = db._connect()
        self._conn.execute(f"LISTEN {channel}")

    def wait(self, timeout_s: float) -> bool:
        if self._closed.is_set():
            return False
        try:
            return any(True for _ in self._conn.notifies(timeout=timeout_s, stop_after=1))
        except Exception:  # the connection dropped: the caller looks at the queue anyway, as after a timeout
            self._closed.wait(timeout_s)
            return False

    def close(self) -> None:
        super().close()
        self._conn.close()


def unavailable(error: BaseException) -> bool:
    """Whether ``error`` says a database cannot answer now (locked, restarted, unreachable), not that a request was
    wrong: what a client that looks again later may ride out."""
    if isinstance(error, sqlite3.OperationalError | StoreError):
        return True
    psycopg = sys.modules.get("psycopg")  # loaded if a lab database was ever opened here
    return psycopg is not None and isinstance(error, psycopg.OperationalError)


def open_database(url: str | Path) -> Database:
    """The database at ``url``: a ``postgresql://`` URL, else an SQLite file's path. StoreError if it cannot open."""
    text = str(url)
    if text.startswith(("postgresql://", "postgres://")):
        return PostgresDatabase(text)
    if "://" in text:
        raise StoreError(f"{_safe(text)}: unknown database; give a postgresql:// URL (LABCTL_DB) or leave it unset for "
                         "the store's own SQLite file")
    return SQLiteDatabase(Path(text))


def _safe(url: str) -> str:
    """A URL without its password, for messages and logs."""
    head, at, tail = url.rpartition("@")
    if not at or "://" not in head:
        return url
    scheme, _, credentials = head.partition("://")
    return f"{scheme}://{credentials.partition(':')[0]}@{tail}"


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
