"""The run browser: every run in the store's registry, filterable; open one, re-run its analysis, export it.

Opening a run builds its :class:`RunState` from its folder and emits ``opened`` (the main window shows it in a
:class:`RunView`). Re-running the analysis calls the functions ``labctl analyze ccd|ce|eis`` use, with the run's
own settings (:mod:`labctl.engine.reanalysis`). Exports write the time series as BDF parquet, each spectrum as a ZView
``.z`` file and the run view's plots as PNG (:mod:`labctl.gui.export`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from PyQt6.QtCore import QSortFilterProxyModel, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QStandardItem, QStandardItemModel, QTextDocument
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QMenu,
    QPushButton,
    QTableView,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from labctl.engine.reanalysis import Reanalysis, reanalyze
from labctl.gui import export
from labctl.gui.outage import riding_out
from labctl.gui.run_view import RunView
from labctl.gui.worker import Worker
from labctl.live.state import RunState
from labctl.store import RunRecord, Store

COLUMNS = ("Run", "Procedure", "Cell", "Status", "Started (UTC)", "Result")
MESSAGE_LINES = 3  # the message area's height: it never changes, so nothing moves when a message comes


class RunBrowser(QWidget):
    """The registry's runs in a table; the selected run can be opened, re-analysed and exported."""

    opened = pyqtSignal(object)  # RunState of the run opened

    def __init__(self, store: Store | Path | None = None, parent: QWidget | None = None, poll_ms: int = 2000) -> None:
        super().__init__(parent)
        self.store = store if isinstance(store, Store) else Store(store)
        self.records: dict[str, RunRecord] = {}
        self.model = QStandardItemModel(0, len(COLUMNS))
        self.model.setHorizontalHeaderLabels(COLUMNS)
        self.proxy = QSortFilterProxyModel(filterKeyColumn=-1, filterCaseSensitivity=Qt.CaseSensitivity.CaseInsensitive)
        self.proxy.setSourceModel(self.model)
        self.filter = QLineEdit(placeholderText="Filter", clearButtonEnabled=True,
                                toolTip="Keep the rows with this text in any column: run, procedure, cell, status, "
                                        "start or result")  # fmt: skip
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        self.table = self._table()
        self.buttons: dict[str, QPushButton] = {}
        self.exports: dict[str, QAction] = {}  # "parquet", "z", "png": the Export menu's entries
        self.message = _message_area()
        self._layout()
        self.refresh()
        if poll_ms:
            self._timer = QTimer(self, interval=poll_ms)
            self._timer.timeout.connect(self.refresh)
            self._timer.start()

    def _table(self) -> QTableView:
        table = QTableView()
        table.setModel(self.proxy)
        table.setSortingEnabled(True)
        table.sortByColumn(COLUMNS.index("Started (UTC)"), Qt.SortOrder.DescendingOrder)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)  # several: to compare them
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        table.horizontalHeader().setStretchLastSection(True)
        table.verticalHeader().hide()
        table.doubleClicked.connect(lambda _: self.open_run())
        return table

    def _layout(self) -> None:
        bar = QHBoxLayout()  # the filter and the buttons in one row: the table keeps the rest
        bar.addWidget(self.filter, stretch=1)
        for text, slot, tip in (
            ("Open", self.open_run, "Plot the selected run (double-click a row does the same)"),
            ("Re-run analysis", self.reanalyze_in_background, "Analyse the stored data again, as `labctl analyze` does"),
        ):  # fmt: skip
            button = self.buttons[text] = QPushButton(text, toolTip=tip)
            button.clicked.connect(lambda _=False, slot=slot: slot())
            bar.addWidget(button)
        export = self.buttons["Export"] = QPushButton("Export", toolTip="Write the selected run's data for other programs")
        export.setMenu(QMenu(export))
        for kind, text, action in (("parquet", "Time series as BDF parquet…", self.export_parquet),
                                   ("z", "Each spectrum as a ZView .z file…", self.export_z),
                                   ("png", "Each plot as a PNG picture…", self.export_png)):  # fmt: skip
            self.exports[kind] = export.menu().addAction(text)
            self.exports[kind].triggered.connect(lambda _=False, k=kind, a=action: self._export_to(a, k))
        bar.addWidget(export)
        column = QVBoxLayout(self)
        column.addLayout(bar)
        column.addWidget(self.table, stretch=1)
        column.addWidget(self.message)

    # -- the table

    @riding_out
    def refresh(self) -> None:
        """Reload the registry; the table is rebuilt only when a run was added or changed."""
        records = {r.id: r for r in self.store.registry.list()}
        if records == self.records:
            return
        chosen = self.selected_id()
        self.records = records
        self.model.setRowCount(0)
        for r in records.values():
            summary = r.summary or {}
            cells = (r.id, r.procedure, r.cell_id or "", r.status, r.started_at.replace("T", " ")[:19],
                     summary.get("brief") or summary.get("error") or "")  # fmt: skip
            items = [QStandardItem(text) for text in cells]
            items[-1].setToolTip(summary.get("headline") or summary.get("error") or "")
            self.model.appendRow(items)
        if chosen:
            self.select(chosen)

    def visible_ids(self) -> list[str]:
        """Run ids of the rows the filter lets through, in table order."""
        return [self.proxy.index(row, 0).data() for row in range(self.proxy.rowCount())]

    def select(self, run_id: str) -> None:
        for row in range(self.proxy.rowCount()):
            if self.proxy.index(row, 0).data() == run_id:
                self.table.selectRow(row)
                return
        raise KeyError(f"run {run_id!r} is not in the table; clear the filter or refresh")

    def selected_id(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].data() if rows else None

    def selected_ids(self) -> list[str]:
        """The selected runs, in the table's order (Ctrl- or Shift-click selects several)."""
        return [index.data() for index in sorted(self.table.selectionModel().selectedRows(), key=lambda i: i.row())]

    def _folder(self, run_id: str | None) -> Path:
        run_id = run_id or self.selected_id()
        if run_id is None:
            raise ValueError("no run selected; click a run in the table first")
        return Path(self.records[run_id].folder)

    # -- actions

    def open_run(self, run_id: str | None = None) -> RunState | None:
        """Build the run's state from its folder and emit ``opened``; None (with a message) if no run is chosen."""
        try:
            state = RunState.from_folder(self._folder(run_id))
        except (ValueError, OSError) as e:
            self._say(str(e), error=True)
            return None
        self.opened.emit(state)
        return state

    def reanalyze(self, run_id: str | None = None) -> Reanalysis | None:
        """Analyse the run's files again, here and now, and show the headline beside the one the run stored."""
        try:
            redone = reanalyze(self._folder(run_id))
        except (ValueError, OSError) as e:
            self._reanalysis_failed(str(e))
            return None
        self._show_reanalysis(redone)
        return redone

    def reanalyze_in_background(self) -> None:
        """The button's action: a long run's analysis takes about a second, so it runs in a worker thread."""
        try:
            folder = self._folder(None)
        except ValueError as e:
            self._reanalysis_failed(str(e))
            return
        self._say(f"Re-running the analysis of {folder.name}…")
        Worker.run(lambda: reanalyze(folder), self._show_reanalysis, self._reanalysis_failed)

    def _show_reanalysis(self, redone: Reanalysis) -> None:
        same = redone.stored_headline == redone.result["headline"]
        stored = "" if redone.stored_headline is None else (
            "<br>(as stored)" if same else f"<br>stored: {redone.stored_headline}")
        self._say(f"<b>{redone.result['headline']}</b>{stored}<br><small>{redone.command}</small>")

    def _reanalysis_failed(self, message: str) -> None:
        self._say(f"Re-run analysis: {message}", error=True)

    def export_parquet(self, dest: Path, run_id: str | None = None) -> list[Path]:
        return [export.export_parquet(self._folder(run_id), dest)]

    def export_z(self, dest: Path, run_id: str | None = None) -> list[Path]:
        return export.export_z(self._folder(run_id), dest)

    def export_png(self, dest: Path, run_id: str | None = None) -> list[Path]:
        """The run's plots, drawn at a fixed size off screen, one PNG per tab with data."""
        view = RunView(RunState.from_folder(self._folder(run_id)), refresh_ms=0)
        view.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen)  # laid out and drawn, never on the screen
        view.resize(*export.PNG_SIZE)
        view.show()
        try:
            return export.export_png(view, dest)
        finally:
            view.close()
            view.deleteLater()

    def _export_to(self, action: Callable[[Path], list[Path]], kind: str) -> None:
        """Ask for a folder and export to it; first say so if the run has nothing to export."""
        try:
            problem = export.missing(self._folder(None), kind)
        except ValueError as e:
            problem = str(e)
        if problem:
            self._say(f"Export: {problem}", error=True)
            return
        chosen = QFileDialog.getExistingDirectory(self, "Export to folder")
        if not chosen:
            return
        try:
            paths = action(Path(chosen))
        except (ValueError, OSError) as e:
            self._say(f"Export: {e}", error=True)
            return
        self._say(f"Wrote {written(paths)} to {chosen}")

    def _say(self, text: str, error: bool = False) -> None:
        self.message.setHtml(f"<span style='color:#d62728'>{text}</span>" if error else text)


def written(paths: list[Path]) -> str:
    """What an export wrote, in brief: "RUN.bdf.parquet", "12 files (RUN-spectrum-001.z … RUN-spectrum-012.z)"."""
    if len(paths) == 1:
        return paths[0].name
    names = ", ".join(p.name for p in paths) if len(paths) == 2 else f"{paths[0].name} … {paths[-1].name}"
    return f"{len(paths)} files ({names})"


def _message_area() -> QTextBrowser:
    """Read-only text under the table, always ``MESSAGE_LINES`` high: a long message scrolls inside it rather than
    taking the table's rows."""
    area = QTextBrowser(frameShape=QFrame.Shape.NoFrame, openLinks=False)
    area.viewport().setAutoFillBackground(False)
    lines = QTextDocument("\n".join("X" * MESSAGE_LINES))  # whole lines: no sliver of a next one shows
    lines.setDefaultFont(area.font())
    lines.setDocumentMargin(area.document().documentMargin())
    area.setFixedHeight(math.ceil(lines.size().height() - lines.documentMargin()))  # the margin above, none below
    return area
