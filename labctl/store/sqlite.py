"""The one way labctl opens the store's SQLite database (the registry and the queue share ``registry.sqlite``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

BUSY_TIMEOUT_S = 30  # a writer in another process (a run, the daemon, the GUI) holds the lock this long at most


def connect(path: Path, schema: str) -> sqlite3.Connection:
    """Open (creating) the database at ``path`` in autocommit mode with write-ahead logging, so readers in other
    processes never wait for a writer, usable from any thread, and make sure ``schema`` exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(schema)
    return db
