"""The queue panel: every queue entry (and every run started by hand that is still running), looked at again
each second: state, run, procedure, channel, cell, and a running run's progress or an ended run's result.
Waiting entries move, hold, release and cancel; a running run is aborted after a confirmation: the daemon
stops a queued run (SIGINT), a hand-started run gets SIGINT itself; either way the run rests its channel and
ends ``aborted`` with its data kept. Ended entries can be taken off the list (the queue keeps them); new ones are
scrolled into sight.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PyQt6.QtCore import QSettings, QTimer, pyqtSignal
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from labctl.gui.outage import riding_out
from labctl.lab.config import this_host
from labctl.queue.daemon import daemon_pid
from labctl.queue.db import ENDED, WAITING, Entry, QueueDB, QueueError, utc_now
from labctl.queue.view import progress_text, status_text
from labctl.store import Registry, RunRecord
from labctl.store.registry import UNREACHABLE

COLUMNS = ("#", "state", "procedure", "ch", "cell", "run", "progress or result")


@dataclass(frozen=True)
class Row:
    """A table row: a queue entry, or a run started by hand (``entry`` None)."""

    entry: Entry | None
    record: RunRecord | None
    status: str

    @property
    def key(self) -> str:
        return f"entry {self.entry.id}" if self.entry else f"run {self.record.id if self.record else ''}"

    @property
    def running(self) -> bool:
        return (self.entry.state if self.entry else self.record.status if self.record else "") in RUNNING

    def cells(self) -> list[str]:
        if self.entry is not None:
            e = self.entry
            return [str(e.id), e.state, e.procedure, str(e.channel or ""), e.params.get("cell_id", ""), e.run_id or "",
                    self.status]  # fmt: skip
        assert self.record is not None
        r = self.record
        return ["", "running (by hand)", r.procedure, "", r.cell_id or "", r.id, self.status]


RUNNING = ("running", UNREACHABLE)  # what Abort can stop (an unreachable run once its agent is back)


def rows(queue: QueueDB, registry: Registry, cleared: frozenset[int] = frozenset()) -> list[Row]:
    """The queue in order (without the ``cleared`` ended entries), then the runs running outside it."""
    entries, now = queue.entries(), utc_now()
    records = {r.id: r for r in registry.list()}
    queued_runs = {e.run_id for e in entries} | {r.id for r in records.values() if r.pid in {e.pid for e in entries}}
    result = []
    for e in entries:
        if e.id in cleared and e.state in ENDED:  # a resumed entry runs again: it shows again
            continue
        record = records.get(e.run_id or "")
        folder = Path(record.folder) if record else None
        result.append(Row(e, record, status_text(e, entries, now, folder, window=True)))
    for r in records.values():
        if r.status == "running" and r.id not in queued_runs:
            result.append(Row(None, r, progress_text(Path(r.folder))))
    return result


def abort(row: Row, queue: QueueDB, root: Path) -> str:
    """Stop a running run in order (its channel rests, it ends aborted); the message says what was done."""
    if row.entry is not None and (daemon_pid(root) is not None or row.entry.agent not in (None, this_host())):
        queue.request_stop(row.entry.id)
        return f"Entry {row.entry.id}: its agent ({row.entry.agent}) stops its run at its next look (the channel rests)"
    record = row.record
    if record is None:
        raise QueueError("this entry has no run yet; it is stopped as soon as the daemon has started it")
    if record.host != this_host():
        raise QueueError(f"run {record.id} runs on {record.host}; abort it there")
    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile: nothing to stop
        os.kill(record.pid, signal.SIGINT)
    return f"Run {record.id}: asked to stop (SIGINT; the channel rests)"


class QueuePanel(QWidget):
    """The queue as a table with its controls; refreshed every ``poll_ms``. ``message`` says what an action did."""

    message = pyqtSignal(str)

    def __init__(self, root: Path, queue: QueueDB, registry: Registry, poll_ms: int = 1000,
                 parent: QWidget | None = None) -> None:  # fmt: skip
        super().__init__(parent)
        self.root, self.queue, self.registry = root, queue, registry
        self.rows: list[Row] = []
        self.settings = QSettings("labctl", "labctl")
        self._cleared_key = f"queue/cleared-{hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]}"  # per store
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._enable)
        actions: dict[str, Callable[[], None]] = {
            "Up": lambda: self._move(-1), "Down": lambda: self._move(+1), "Hold": lambda: self._set_state("held"),
            "Release": lambda: self._set_state("queued"), "Cancel": lambda: self._set_state("cancelled"),
            "Abort…": self.abort_selected, "Clear finished": self.clear_ended,
        }  # fmt: skip
        self.buttons = {name: QPushButton(name) for name in actions}
        for name, action in actions.items():
            self.buttons[name].clicked.connect(action)
        self.buttons["Abort…"].setToolTip("Stop the selected running run: its channel rests, it ends aborted, its "
                                          "data stay")  # fmt: skip
        self.buttons["Clear finished"].setToolTip("Take every entry that has ended (finished, failed, aborted, "
                                                  "cancelled) off this list; the queue keeps their record")  # fmt: skip
        bar = QHBoxLayout()
        for name, button in self.buttons.items():
            if name == "Clear finished":
                bar.addStretch(1)  # away from the buttons that act on one entry
            bar.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addLayout(bar)
        self._newest = ""  # the key of the last new row: scrolled to once the table has laid it out
        self._scroll = QTimer(self, singleShot=True, interval=0)  # (its scroll range grows only then)
        self._scroll.timeout.connect(self._show_newest)
        self._timer = QTimer(self, interval=poll_ms)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self.refresh()

    def cleared(self) -> frozenset[int]:
        """The ended entries taken off the list (Clear finished), remembered for this store."""
        return frozenset(int(i) for i in self.settings.value(self._cleared_key, [], type=list))

    def clear_ended(self) -> None:
        """Take the ended entries off the list."""
        ended = {r.entry.id for r in self.rows if r.entry is not None and r.entry.state in ENDED}
        self.settings.setValue(self._cleared_key, sorted(self.cleared() | ended))
        self.refresh()

    @riding_out
    def refresh(self) -> None:
        """Read the queue and the registry again; keep the selection on the same entry or run, and bring the
        last new row into sight (new entries come last)."""
        selected = self.selected()
        known = {row.key for row in self.rows}
        self.rows = rows(self.queue, self.registry, self.cleared())
        self.table.setRowCount(len(self.rows))
        for n, row in enumerate(self.rows):
            for column, text in enumerate(row.cells()):
                item = self.table.item(n, column)
                if item is None:
                    self.table.setItem(n, column, QTableWidgetItem(text))
                elif item.text() != text:
                    item.setText(text)
        if selected is not None:
            self.select(selected.key)
        new = [row.key for row in self.rows if row.key not in known]
        if new:
            self._newest = new[-1]
            self._scroll.start()
        self._enable()

    def _show_newest(self) -> None:
        for n, row in enumerate(self.rows):
            if row.key == self._newest:
                self.table.scrollToItem(self.table.item(n, 0))

    def select(self, key: str) -> None:
        """Select the row of ``"entry N"`` or ``"run ID"``."""
        for n, row in enumerate(self.rows):
            if row.key == key:
                self.table.selectRow(n)
                return
        self.table.clearSelection()

    def selected(self) -> Row | None:
        indexes = self.table.selectionModel().selectedRows()
        return self.rows[indexes[0].row()] if indexes and indexes[0].row() < len(self.rows) else None

    def _enable(self) -> None:
        row = self.selected()
        state = row.entry.state if row and row.entry else None
        waiting = [r.entry.id for r in self.rows if r.entry and r.entry.state in WAITING]
        place = waiting.index(row.entry.id) if row and row.entry and row.entry.id in waiting else -1
        self.buttons["Up"].setEnabled(place > 0)
        self.buttons["Down"].setEnabled(0 <= place < len(waiting) - 1)
        self.buttons["Hold"].setEnabled(state == "queued")
        self.buttons["Release"].setEnabled(state == "held")
        self.buttons["Cancel"].setEnabled(state in WAITING)
        self.buttons["Abort…"].setEnabled(bool(row and row.running))
        self.buttons["Clear finished"].setEnabled(any(r.entry and r.entry.state in ENDED for r in self.rows))

    def _move(self, by: int) -> None:
        row = self.selected()
        if row is None or row.entry is None:
            return
        waiting = [r.entry.id for r in self.rows if r.entry and r.entry.state in WAITING]
        self._do(lambda: self.queue.move(row.entry.id, waiting.index(row.entry.id) + 1 + by))

    def _set_state(self, state: str) -> None:
        row = self.selected()
        if row is not None and row.entry is not None:
            self._do(lambda: self.queue.set_waiting_state(row.entry.id, state))

    def abort_selected(self) -> None:
        """Abort the selected running run after the operator confirms."""
        row = self.selected()
        if row is None or not row.running:
            return
        run = row.record.id if row.record else f"of entry {row.entry.id if row.entry else ''}"
        answer = QMessageBox.question(
            self, "Abort run", f"Abort run {run} ({row.cells()[2]})?\n\nThe channel is put at rest, the run ends "
            "aborted and its data are kept.", QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )  # fmt: skip
        if answer == QMessageBox.StandardButton.Yes:
            self._do(lambda: abort(row, self.queue, self.root))

    def _do(self, action: Callable[[], object]) -> None:
        """Run a queue action; show its QueueError (e.g. the entry started meanwhile) instead of raising."""
        try:
            result = action()
        except QueueError as e:
            QMessageBox.warning(self, "Queue", str(e))
            return
        if isinstance(result, str):
            self.message.emit(result)
        self.refresh()
