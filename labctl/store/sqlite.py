"""The one way labctl opens the store's SQLite database (the registry and the queue share ``registry.sqlite``)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from labctl.store.folder import make_folder, open_private

BUSY_TIMEOUT_S = 30  # a writer in another process (a run, the daemon, the GUI) holds the lock this long at most


class StoreError(ValueError):
    """A store that cannot be opened; the message names the file and the fix."""


def check_database(path: Path) -> None:
    """Raise StoreError if ``path`` exists but is no SQLite database; creates nothing."""
    if not path.exists():
        return
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)) as db:
            db.execute("PRAGMA schema_version").fetchone()
    except sqlite3.OperationalError:
        raise  # busy or unreadable now, not corrupt: the caller's own error says more
    except sqlite3.DatabaseError as e:
        raise corrupt(path, e) from None


def corrupt(path: Path, error: Exception) -> StoreError:
    return StoreError(f"{path}: not a readable labctl registry database ({error}); move it aside (labctl then "
                      "starts an empty registry; the run folders stay) or restore it from a backup")


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating) the database at ``path`` in autocommit mode with write-ahead logging, so readers in other
    processes never wait for a writer, usable from any thread; StoreError for a corrupt database."""
    make_folder(path.parent)
    if not path.exists():
        open_private(path, "a").close()  # SQLite gives its -wal and -shm files the database's mode
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError:
        db.close()
        raise
    except sqlite3.DatabaseError as e:
        db.close()
        raise corrupt(path, e) from None
    return db
