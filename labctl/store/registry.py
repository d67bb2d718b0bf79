"""The run registry: an SQLite table of every run, its folder and its status.

A run is registered as ``running`` before its first sample and marked ``finished``, ``failed`` or
``aborted`` only when it ends. A run still marked ``running`` whose process is gone is reported (and
recorded) as ``interrupted``, so a crash never leaves a run looking finished.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from labctl.store.folder import METADATA, read_json, write_json_atomic
from labctl.store.sqlite import connect

STATUSES = ("running", "finished", "failed", "aborted", "interrupted", "imported")  # imported: another instrument's file

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    procedure TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    bench TEXT NOT NULL,
    cell_id TEXT,
    folder TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    summary TEXT
)
"""


@dataclass(frozen=True)
class RunRecord:
    id: str
    procedure: str
    status: str
    started_at: str
    ended_at: str | None
    bench: str
    cell_id: str | None
    folder: str
    host: str
    pid: int
    summary: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Registry:
    def __init__(self, path: Path) -> None:
        self._db = connect(path, _SCHEMA)

    def add(self, run_id: str, *, procedure: str, bench: str, cell_id: str | None, folder: Path,
            status: str = "running") -> None:
        self._db.execute(
            "INSERT INTO runs (id, procedure, status, started_at, bench, cell_id, folder, host, pid)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, procedure, status, now_iso(), bench, cell_id, str(folder), socket.gethostname(), os.getpid()),
        )

    def forget(self, run_id: str) -> None:
        """Remove a run's row (one whose folder could not be written)."""
        self._db.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    def finish(self, run_id: str, status: str, summary: dict[str, Any] | None = None) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown run status {status!r}; use one of {', '.join(STATUSES)}")
        self._db.execute(
            "UPDATE runs SET status = ?, ended_at = ?, summary = ? WHERE id = ?",
            (status, now_iso(), json.dumps(summary, default=str) if summary is not None else None, run_id),
        )

    def reclaim(self, run_id: str) -> bool:
        """Mark an ``interrupted`` run ``running`` again, by this process (it is resumed); False if it is not
        interrupted (another process resumed it first, or it ended)."""
        return bool(self._db.execute(
            "UPDATE runs SET status = 'running', ended_at = NULL, summary = NULL, host = ?, pid = ?"
            " WHERE id = ? AND status = 'interrupted'", (socket.gethostname(), os.getpid(), run_id)).rowcount)

    def get(self, run_id: str) -> RunRecord | None:
        self.mark_interrupted()
        row = self._db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return _record(row) if row else None

    def list(self) -> list[RunRecord]:
        self.mark_interrupted()
        rows = self._db.execute("SELECT * FROM runs ORDER BY started_at, id").fetchall()
        return [_record(r) for r in rows]

    def mark_interrupted(self) -> list[str]:
        """Record as ``interrupted`` every run of this host still ``running`` whose process is gone."""
        host = socket.gethostname()
        rows = self._db.execute("SELECT id, pid FROM runs WHERE status = 'running' AND host = ?", (host,))
        dead = [run_id for run_id, pid in rows.fetchall() if not process_alive(pid)]
        for run_id in dead:
            ended_at = now_iso()
            marked = self._db.execute(
                "UPDATE runs SET status = 'interrupted', ended_at = ? WHERE id = ? AND status = 'running'",
                (ended_at, run_id),
            ).rowcount
            if marked:  # only the process that recorded it: the folder then tells the same as the registry
                folder = self._db.execute("SELECT folder FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
                _mark_folder_interrupted(Path(folder), ended_at)
        return dead

    def close(self) -> None:
        self._db.close()


def _mark_folder_interrupted(folder: Path, ended_at: str) -> None:
    """A dead run's ``metadata.json`` still says ``running``: make it say ``interrupted``, as the registry does."""
    path = folder / METADATA
    try:
        metadata = read_json(path)
    except (OSError, ValueError):
        return  # no metadata yet (the run died before writing it) or unreadable: nothing claims it is running
    if metadata.get("status") == "running":
        write_json_atomic(path, metadata | {"status": "interrupted", "ended_at": ended_at})


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """A process that has ended but was never reaped (an orphan where init does not reap, as in some containers)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] == "Z"


def _record(row: tuple[Any, ...]) -> RunRecord:
    *head, summary = row
    return RunRecord(*head, summary=json.loads(summary) if summary else None)
