"""The run queue: a table beside the run registry in the store's SQLite database (WAL, so the daemon and
``labctl queue`` in other shells read and write it at once).

An entry is ``queued`` or ``held`` until the daemon starts it (``running``), then ends as the run ended
(``finished``, ``failed``, ``aborted``, ``interrupted``); an entry cancelled before it started is ``cancelled``.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from labctl.request import RunRequest, Schedule
from labctl.store.sqlite import connect

WAITING = ("queued", "held")
ENDED = ("finished", "failed", "aborted", "interrupted", "cancelled")
STATES = (*WAITING, "running", *ENDED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    position INTEGER NOT NULL,
    procedure TEXT NOT NULL,
    bench TEXT NOT NULL,
    params TEXT NOT NULL,
    cell TEXT,
    seed INTEGER,
    channel INTEGER,
    claims TEXT NOT NULL,
    state TEXT NOT NULL,
    not_before TEXT,
    after INTEGER,
    rest_s REAL NOT NULL DEFAULT 0,
    run_id TEXT,
    pid INTEGER,
    added_at TEXT NOT NULL,
    started_at TEXT,
    ended_at TEXT,
    outcome TEXT,
    stop_requested INTEGER NOT NULL DEFAULT 0,
    limits TEXT
)
"""
LATER_COLUMNS = {"limits": "TEXT"}  # added to tables made before them


class QueueError(Exception):
    """A queue request that cannot be done; the message names the field (or entry) and the fix."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="seconds")


class Entry(RunRequest):
    """One queued run: its request, the instruments it holds while it runs (``claims``, e.g. ``cycler@sim#3``,
    ``impedance@GPIB0::4::INSTR``) and its place and progress in the queue."""

    claims: list[str]
    state: str = "queued"
    id: int = 0
    position: int = 0
    run_id: str | None = None
    pid: int | None = None
    added_at: str = ""
    started_at: str | None = None
    ended_at: str | None = None
    outcome: dict[str, Any] | None = None
    stop_requested: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The entry as JSON-ready data, its schedule's fields beside the others (as ``queue list --json`` has
        always shown them)."""
        data = self.model_dump(mode="json", exclude={"schedule"})
        return data | {"not_before": _iso_or_none(self.schedule.not_before), "after": self.schedule.after,
                       "rest_s": self.schedule.rest_s}  # fmt: skip


_JSON = ("params", "claims", "outcome", "limits")
_SCHEDULE = ("not_before", "after", "rest_s")


def _iso_or_none(t: datetime | None) -> str | None:
    return iso(t) if t is not None else None


def _entry(row: sqlite3.Row) -> Entry:
    data = dict(row)
    for key in _JSON:
        data[key] = json.loads(data[key]) if data[key] is not None else None
    data["stop_requested"] = bool(data["stop_requested"])
    data["limits"] = data["limits"] or {}
    data["schedule"] = Schedule(**{key: data.pop(key) for key in _SCHEDULE})
    return Entry(**data)


class QueueDB:
    """The queue table in ``<store>/registry.sqlite``."""

    def __init__(self, path: Path) -> None:
        self._db = connect(path, _SCHEMA)
        self._db.row_factory = sqlite3.Row
        self._add_later_columns()

    def add(self, entries: list[Entry]) -> list[int]:
        """Append entries at the end of the queue, all or none."""
        ids = []
        with self._transaction():
            (last,) = self._db.execute("SELECT COALESCE(MAX(position), 0) FROM queue").fetchone()
            for n, e in enumerate(entries, start=1):
                cursor = self._db.execute(
                    "INSERT INTO queue (position, procedure, bench, params, cell, seed, channel, claims, state,"
                    " not_before, after, rest_s, added_at, limits) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (last + n, e.procedure, e.bench, json.dumps(e.params), e.cell, e.seed, e.channel,
                     json.dumps(e.claims), e.state, _iso_or_none(e.schedule.not_before), e.schedule.after,
                     e.schedule.rest_s, iso(utc_now()), json.dumps(e.limits.given())),
                )  # fmt: skip
                ids.append(int(cursor.lastrowid or 0))
        return ids

    def get(self, entry_id: int) -> Entry | None:
        row = self._db.execute("SELECT * FROM queue WHERE id = ?", (entry_id,)).fetchone()
        return _entry(row) if row else None

    def entries(self) -> list[Entry]:
        return [_entry(r) for r in self._db.execute("SELECT * FROM queue ORDER BY position, id")]

    def require(self, entry_id: int) -> Entry:
        entry = self.get(entry_id)
        if entry is None:
            raise QueueError(f"no queue entry {entry_id}; `labctl queue list` shows the entries")
        return entry

    def move(self, entry_id: int, position: int) -> None:
        """Put a waiting entry at ``position`` (1 = first) among the waiting entries."""
        with self._transaction():
            entry = self.require(entry_id)
            if entry.state not in WAITING:
                raise QueueError(f"entry {entry_id} is {entry.state}; only queued or held entries can move")
            waiting = [e.id for e in self.entries() if e.state in WAITING and e.id != entry_id]
            waiting.insert(max(0, min(position - 1, len(waiting))), entry_id)
            (top,) = self._db.execute("SELECT COALESCE(MAX(position), 0) FROM queue").fetchone()
            for n, wid in enumerate(waiting, start=1):  # after everything that has started, in their new order
                self._db.execute("UPDATE queue SET position = ? WHERE id = ?", (top + n, wid))

    def set_waiting_state(self, entry_id: int, state: str) -> Entry:
        """Hold (``held``), release (``queued``) or cancel (``cancelled``) an entry that has not started."""
        with self._transaction():
            entry = self.require(entry_id)
            if entry.state not in WAITING:
                raise QueueError(f"entry {entry_id} is {entry.state}; only queued or held entries can be "
                                 f"{'cancelled' if state == 'cancelled' else 'held or released'}")
            ended = iso(utc_now()) if state == "cancelled" else None
            self._db.execute("UPDATE queue SET state = ?, ended_at = ? WHERE id = ?", (state, ended, entry_id))
        return self.require(entry_id)

    def request_stop(self, entry_id: int) -> None:
        """Ask the daemon to stop a running entry's run (it rests the channel; the run ends aborted)."""
        self._db.execute("UPDATE queue SET stop_requested = 1 WHERE id = ? AND state = 'running'", (entry_id,))

    def claim_start(self, entry_id: int, started_at: datetime) -> bool:
        """Mark a queued entry running; False if it changed meanwhile (held or cancelled from another shell)."""
        cursor = self._db.execute("UPDATE queue SET state = 'running', started_at = ? WHERE id = ? AND state = "
                                  "'queued'", (iso(started_at), entry_id))  # fmt: skip
        return cursor.rowcount == 1

    def set_process(self, entry_id: int, pid: int) -> None:
        self._db.execute("UPDATE queue SET pid = ? WHERE id = ?", (pid, entry_id))

    def set_run(self, entry_id: int, run_id: str) -> None:
        self._db.execute("UPDATE queue SET run_id = ? WHERE id = ?", (run_id, entry_id))

    def end(self, entry_id: int, state: str, outcome: dict[str, Any], ended_at: datetime) -> None:
        if state not in ENDED:
            raise ValueError(f"unknown end state {state!r}; use one of {', '.join(ENDED)}")
        self._db.execute("UPDATE queue SET state = ?, outcome = ?, ended_at = ? WHERE id = ?",
                         (state, json.dumps(outcome, default=str), iso(ended_at), entry_id))

    def run_of_process(self, pid: int, since: str) -> str | None:
        """The run a queue child registered (the registry records each run's pid)."""
        row = self._db.execute("SELECT id FROM runs WHERE pid = ? AND started_at >= ? ORDER BY started_at DESC",
                               (pid, since)).fetchone()  # fmt: skip
        return row[0] if row else None

    def close(self) -> None:
        self._db.close()

    def _add_later_columns(self) -> None:
        """Columns a queue table made by an older labctl lacks (another process may add them at the same time)."""
        have = {row["name"] for row in self._db.execute("PRAGMA table_info(queue)")}
        for name, kind in LATER_COLUMNS.items():
            if name not in have:
                try:
                    self._db.execute(f"ALTER TABLE queue ADD COLUMN {name} {kind}")
                except sqlite3.OperationalError as e:
                    if "duplicate column" not in str(e):
                        raise

    def _transaction(self) -> Any:
        return _Immediate(self._db)


class _Immediate:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): read-then-write without another writer in between."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
