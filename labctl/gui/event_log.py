"""The event log: every run's events across the store in one table, newest first, filterable, shorts and failures
highlighted, with a row for each run's end (its status and error or result).

Newest first: the log sits in a short dock, and what a researcher looks for there is what just happened; new
rows come in at the top without scrolling the table, so reading older rows is never disturbed by new ones.

Events come from two places, merged by their index (event ``i`` of a run is line ``i`` of its ``events.jsonl``,
and of its feed's :class:`RunState`, so each is shown once): the window's live feeds, looked at every ``live_ms``,
and the run folders, polled every ``poll_ms`` for runs the registry shows running (or that just ended), reading
only what was added since the last look. Memory is bounded: the newest ``limit`` events are kept. The first look
is history; later events are also emitted as ``arrived`` (what :mod:`labctl.gui.alerts` watches).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from PyQt6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QColor
from PyQt6.QtWidgets import QAbstractItemView, QCheckBox, QHBoxLayout, QLineEdit, QTableView, QVBoxLayout, QWidget

from labctl.gui.feed_client import FeedClient
from labctl.gui.outage import riding_out
from labctl.live.state import FAILURE_KINDS
from labctl.store import Registry, RunRecord
from labctl.store.folder import EVENTS
from labctl.store.reader import RunReader

log = logging.getLogger(__name__)

COLUMNS = ("Time", "Run", "Channel", "Kind", "Message")
WIDEST = ("2026-12-31 23:59:59", "20261231-235959-insitu-eis-abcd", "Channel", "implausible reading")  # sizes columns
MAX_EVENTS = 5000
RUN_ENDED = "run_ended"  # the kind of the row the log adds when the registry shows a run ended
ENDINGS = ("finished", "failed", "aborted", "interrupted")
FAILURES = frozenset({"hard_short", "fault", "safety_limit", "test_failed", "crystal_failure", "eis_short"})
WARNINGS = FAILURE_KINDS | {"implausible_reading", "crystal_life_low", "resume_refused", "interrupted", "export_idle",
                            "spectrum_refused"}  # fmt: skip
COLOURS = {"failure": QColor(255, 200, 200), "warning": QColor(255, 234, 170)}
NOT_SHOWN = {"kind", "wall_time", "traceback"}  # the traceback is in the row's tooltip


@dataclass(frozen=True)
class LogEvent:
    run_id: str
    time: float  # Unix time
    kind: str
    channel: str
    message: str
    level: str  # "failure" (a short that ended the test, a fault, a failed run), "warning" or ""
    record: dict[str, Any]  # the event as the run wrote it (or the run's end: status and summary)

    @cached_property
    def cells(self) -> tuple[str, ...]:  # worked out once: the filter reads every row's at each key typed
        when = datetime.fromtimestamp(self.time).strftime("%Y-%m-%d %H:%M:%S")  # local time, as the lab's clocks
        return when, self.run_id, self.channel, self.kind.replace("_", " "), self.message


def level_of(record: dict[str, Any]) -> str:
    kind, status = record.get("kind"), record.get("status")
    if record.get("ends_test") is True or kind in FAILURES or (kind == RUN_ENDED and status == "failed"):
        return "failure"
    if kind in WARNINGS or (kind == RUN_ENDED and status == "interrupted"):
        return "warning"
    return ""


def message_of(record: dict[str, Any]) -> str:
    """What the run said (message, detail, label), else its other plain values in short."""
    for key in ("message", "detail", "label"):
        if record.get(key):
            return str(record[key])
    return ", ".join(f"{key} {_short(value)}" for key, value in record.items()
                     if key not in NOT_SHOWN and isinstance(value, str | int | float | bool))  # fmt: skip


def _short(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def event_of(run_id: str, channel: str, record: dict[str, Any]) -> LogEvent:
    kind = str(record.get("kind", "?"))
    when = record.get("wall_time")
    return LogEvent(run_id, float(when) if isinstance(when, int | float) else 0.0, kind, channel, message_of(record),
                    level_of(record), record)  # fmt: skip


def ended_event(record: RunRecord, channel: str, after: float) -> LogEvent:
    """The row for a run's end, from the registry: its status, and its error or its result in brief; at its end as
    the registry has it (to the second), but not before its last event ``after``."""
    summary = record.summary or {}
    said = summary.get("error") or summary.get("brief") or summary.get("headline")
    row = {**summary, "kind": RUN_ENDED, "status": record.status,
           "message": f"{record.status}: {said}" if said else record.status}  # fmt: skip
    when = _timestamp(record.ended_at)
    return LogEvent(record.id, max(when if when < math.inf else time.time(), after), RUN_ENDED, channel,
                    row["message"], level_of(row), row)  # fmt: skip


def channel_of(folder: Path) -> str | None:
    """The cycler channel a run uses, from its metadata ("" if it has none); None before the run wrote it."""
    try:
        metadata = RunReader(folder).metadata()
    except (OSError, ValueError):
        return None
    if not metadata:
        return None
    roles = ((metadata.get("bench") or {}).get("config") or {}).get("roles") or {}
    channel = (roles.get("cycler") or {}).get("channel")
    return "" if channel is None else str(channel)


def _timestamp(iso: str | None) -> float:
    """Unix time of a registry time; infinity for none (a running run: it ends after every other)."""
    try:
        return datetime.fromisoformat(iso).timestamp() if iso else math.inf
    except ValueError:
        return math.inf


@dataclass
class RunTail:
    """How far the log has read one run."""

    folder: Path
    status: str = ""  # as the registry said at the last look
    channel: str | None = None  # None until the run's metadata is there
    offset: int = 0  # bytes of events.jsonl read
    lines: int = 0  # complete lines in those bytes
    taken: int = 0  # events taken, from the file or the run's feed
    last: float = 0.0  # the time of the latest of them

    def read(self, keep: int | None = None) -> list[dict[str, Any]]:
        """The complete lines added to ``events.jsonl`` since the last read, except those already taken from the
        feed (and except all but the last ``keep``)."""
        path = self.folder / EVENTS
        try:
            size = path.stat().st_size
            if size < self.offset:  # the file was replaced: read it again, past the events taken
                self.offset = self.lines = 0
            if size == self.offset:
                return []
            with path.open("rb") as f:
                f.seek(self.offset)
                data = f.read(size - self.offset)
        except OSError:
            return []
        end = data.rfind(b"\n") + 1  # after it: a line still being written
        lines = data[:end].splitlines()
        first, self.offset, self.lines = self.lines, self.offset + end, self.lines + len(lines)
        start = max(self.taken - first, 0, len(lines) - (len(lines) if keep is None else keep))
        self.taken = max(self.taken, self.lines)
        return [record for line in lines[start:] if (record := _parse(line)) is not None]


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        log.warning("event log: skipping a line that is not JSON: %.80r", line)
        return None
    return record if isinstance(record, dict) else None


class EventModel(QAbstractTableModel):
    """At most ``limit`` events, the newest in row 0."""

    def __init__(self, limit: int = MAX_EVENTS) -> None:
        super().__init__()
        self.limit = limit
        self._events: list[LogEvent] = []  # oldest first: new events are appended, the oldest dropped from the front

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(self._events)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def at(self, row: int) -> LogEvent:
        return self._events[len(self._events) - 1 - row]

    def events(self) -> list[LogEvent]:
        """Newest first, as shown."""
        return self._events[::-1]

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        event = self.at(index.row())
        if role == Qt.ItemDataRole.DisplayRole:
            return event.cells[index.column()]
        if role == Qt.ItemDataRole.BackgroundRole and event.level:
            return COLOURS[event.level]
        if role == Qt.ItemDataRole.ForegroundRole and event.level:
            return QColor(Qt.GlobalColor.black)  # readable on the highlight in a dark theme too
        if role == Qt.ItemDataRole.ToolTipRole:
            return json.dumps(event.record, indent=1, ensure_ascii=False, default=str)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def reset(self, events: list[LogEvent]) -> None:
        self.beginResetModel()
        self._events = sorted(events, key=_time)[-self.limit :]
        self.endResetModel()

    def add(self, events: list[LogEvent]) -> None:
        """Events in order of time: those newer than all shown go on top at once, late ones (a run polled after
        another's live events) where their time puts them."""
        newest = self._events[-1].time if self._events else -math.inf
        for event in sorted((e for e in events if e.time < newest), key=_time):
            self._insert(event)
        if top := sorted((e for e in events if e.time >= newest), key=_time):
            self.beginInsertRows(QModelIndex(), 0, len(top) - 1)
            self._events += top
            self.endInsertRows()
        self._trim()

    def _insert(self, event: LogEvent) -> None:
        i = next((i for i in range(len(self._events), 0, -1) if self._events[i - 1].time <= event.time), 0)
        row = len(self._events) - i
        self.beginInsertRows(QModelIndex(), row, row)
        self._events.insert(i, event)
        self.endInsertRows()

    def _trim(self) -> None:
        if (excess := len(self._events) - self.limit) > 0:
            self.beginRemoveRows(QModelIndex(), self.limit, len(self._events) - 1)
            del self._events[:excess]
            self.endRemoveRows()


def _time(event: LogEvent) -> float:
    return event.time


class EventFilter(QSortFilterProxyModel):
    """The rows whose text holds the filter's, and with ``problems_only`` only the highlighted ones."""

    def __init__(self, model: EventModel) -> None:
        super().__init__(filterKeyColumn=-1, filterCaseSensitivity=Qt.CaseSensitivity.CaseInsensitive)
        self.setSourceModel(model)
        self.model = model
        self.problems_only = False

    def set_problems_only(self, on: bool) -> None:
        self.beginFilterChange()
        self.problems_only = on
        self.endFilterChange()

    def filterAcceptsRow(self, row: int, parent: QModelIndex) -> bool:
        if self.problems_only and not self.model.at(row).level:
            return False
        return super().filterAcceptsRow(row, parent)


class EventLog(QWidget):
    """The events of every run in ``registry``'s store; ``feeds`` is the window's run id → live feed (read, never
    changed: runs come and go there as the window follows them)."""

    arrived = pyqtSignal(list)  # LogEvents new since the last look (never those of the first look: history)
    run_chosen = pyqtSignal(str)  # the run of a row double-clicked

    def __init__(self, registry: Registry, feeds: Mapping[str, FeedClient] | None = None, poll_ms: int = 2000,
                 live_ms: int = 250, limit: int = MAX_EVENTS, parent: QWidget | None = None) -> None:  # fmt: skip
        super().__init__(parent)
        self.registry = registry
        self.feeds: Mapping[str, FeedClient] = feeds if feeds is not None else {}
        self.runs: dict[str, RunTail] = {}
        self.model = EventModel(limit)
        self.proxy = EventFilter(self.model)
        self.filter = QLineEdit(placeholderText="Filter: run, channel, kind or text", clearButtonEnabled=True)
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        self.problems = QCheckBox("Problems only", toolTip="Shorts, contact losses, faults, failed runs and other "
                                  "warnings (the highlighted rows)")  # fmt: skip
        self.problems.toggled.connect(self.proxy.set_problems_only)
        self.table = self._table()
        self._layout()
        self._first_look()
        self._timers = [self._every(poll_ms, self.poll), self._every(live_ms, self.take_feeds)]

    def _table(self) -> QTableView:
        table = QTableView()
        table.setModel(self.proxy)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.verticalHeader().setVisible(False)
        for column, text in enumerate(WIDEST):  # fixed: fitting thousands of rows to their contents is slow
            table.setColumnWidth(column, table.fontMetrics().horizontalAdvance(text) + 24)
        table.horizontalHeader().setStretchLastSection(True)
        table.doubleClicked.connect(lambda index: self.run_chosen.emit(self.proxy.index(index.row(), 1).data()))
        return table

    def _layout(self) -> None:
        bar = QHBoxLayout()
        bar.addWidget(self.filter, stretch=1)
        bar.addWidget(self.problems)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.table)

    def _every(self, ms: int, slot: Any) -> QTimer:
        timer = QTimer(self, interval=ms)
        timer.timeout.connect(slot)
        timer.start()
        return timer

    def stop_watching(self) -> None:
        for timer in self._timers:
            timer.stop()

    def events(self) -> list[LogEvent]:
        """Every event held, newest first (filtered or not)."""
        return self.model.events()

    def _first_look(self) -> None:
        """Read the store's history, the most recent runs first; once ``limit`` events are in, the files of runs that
        ended before the oldest of them are only counted, not parsed (none of theirs would be kept)."""
        records = sorted(self.registry.list(), key=lambda r: _timestamp(r.ended_at), reverse=True)
        events: list[LogEvent] = []
        oldest = math.inf
        for record in records:
            if len(events) >= self.model.limit and _timestamp(record.ended_at) < oldest:
                self._count(record)
                continue
            new = self._look(record, keep=self.model.limit)
            events += new
            oldest = min([oldest, *(e.time for e in new)])
        self.model.reset(events)

    def _count(self, record: RunRecord) -> None:
        """Take a run's events as read without parsing them: a feed of it (resumed) then goes on from there."""
        tail = self.runs[record.id] = RunTail(Path(record.folder), record.status)
        tail.read(keep=0)

    @riding_out
    def poll(self) -> None:
        """Read what runs added to their folders since the last look, and their ends."""
        events = [e for record in self.registry.list() for e in self._look(record)]
        self._add(events)

    def take_feeds(self) -> None:
        """Take the events the window's feeds received since the last look."""
        events = []
        for run_id, feed in self.feeds.items():
            tail, received = self.runs.get(run_id), feed.state.events
            if tail is not None and len(received) > tail.taken:
                events += [self._event(run_id, tail, record) for record in received[tail.taken :]]
                tail.taken = len(received)
        self._add(events)

    def _look(self, record: RunRecord, keep: int | None = None) -> list[LogEvent]:
        tail = self.runs.setdefault(record.id, RunTail(Path(record.folder)))
        if record.status == tail.status and record.status != "running":
            return []  # ended at an earlier look: nothing more comes
        events = [self._event(record.id, tail, r) for r in tail.read(keep)]
        if record.status != tail.status and record.status in ENDINGS:
            events.append(ended_event(record, self._channel(tail), tail.last))
        tail.status = record.status
        return events

    def _event(self, run_id: str, tail: RunTail, record: dict[str, Any]) -> LogEvent:
        event = event_of(run_id, self._channel(tail), record)
        tail.last = max(tail.last, event.time)
        return event

    def _channel(self, tail: RunTail) -> str:
        if tail.channel is None:
            tail.channel = channel_of(tail.folder)
        return tail.channel or ""

    def _add(self, events: list[LogEvent]) -> None:
        if events:
            self.model.add(events)
            self.arrived.emit(events)
