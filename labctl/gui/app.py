"""The labctl main window: bench and procedure form on the left, one live view per run in the middle, the queue
and the run browser below, the daemon's state in the status bar.

The window is a client of the store: it queues through ``labctl.queue``, starts ``labctl serve`` when asked, and
follows each run through its live feed. Runs are ``labctl run`` processes of their own, so closing the window
stops none of them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from PyQt6.QtCore import QSettings, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QCloseEvent, QResizeEvent
from PyQt6.QtWidgets import (
    QApplication,
    QDockWidget,
    QLabel,
    QMainWindow,
    QMdiArea,
    QMdiSubWindow,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from labctl.gui.alerts import Alerts
from labctl.gui.bench_panel import BenchPanel
from labctl.gui.browser import RunBrowser
from labctl.gui.channel_grid import ChannelGrid
from labctl.gui.compare import CompareWindow
from labctl.gui.daemon_status import WAITS_FOR_DAEMON, DaemonStatus
from labctl.gui.event_log import EventLog
from labctl.gui.feed_client import FeedClient
from labctl.gui.outage import riding_out
from labctl.gui.procedure_form import ProcedureForm
from labctl.gui.queue_panel import QueuePanel
from labctl.gui.run_view import RunView
from labctl.live.state import RunState
from labctl.queue.agents import Agents
from labctl.store import RunRecord, Store


class RunWindow(QMdiSubWindow):
    """The frame of one run view; says when the operator closes it (not when Qt tears the window down)."""

    closed = pyqtSignal(str)

    def __init__(self, run_id: str, view: RunView) -> None:
        super().__init__()
        self.run_id = run_id
        scroll = QScrollArea(widgetResizable=True)  # a narrow tile scrolls rather than widening the main window
        scroll.setWidget(view)
        self.setWidget(scroll)
        self.setWindowTitle(run_id)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

    def view(self) -> RunView:
        return self.widget().widget()  # type: ignore[union-attr, return-value]

    def closeEvent(self, event: QCloseEvent) -> None:
        self.closed.emit(self.run_id)
        super().closeEvent(event)


EMPTY_HINT = ("Each running run shows here, live, as it starts. To start one: choose a procedure on the left and "
              "press Queue, then Start daemon (bottom right). Finished runs open from Runs below.")


class RunArea(QMdiArea):
    """The middle of the window: run views tiled so that all show at once (re-tiled as views come, go and the area
    changes size), or as tabs."""

    def __init__(self) -> None:
        super().__init__()
        self.setTabsClosable(True)
        self._retile = QTimer(self, singleShot=True, interval=0)  # after the pending layout work
        self._retile.timeout.connect(self.tile)
        self.hint = QLabel(EMPTY_HINT, self, wordWrap=True, alignment=Qt.AlignmentFlag.AlignCenter)
        self.hint.setStyleSheet("color: #666; font-size: 14px;")

    def tile(self) -> None:
        self.hint.setVisible(not self.subWindowList())
        if self.viewMode() == QMdiArea.ViewMode.SubWindowView:
            self.tileSubWindows()

    def retile(self) -> None:
        self._retile.start()

    def set_tabbed(self, on: bool) -> None:
        self.setViewMode(QMdiArea.ViewMode.TabbedView if on else QMdiArea.ViewMode.SubWindowView)
        self.tile()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.hint.setGeometry(self.viewport().rect().adjusted(40, 40, -40, -40))
        self.retile()


class MainWindow(QMainWindow):
    """The bench window on the store at ``root``; new runs are queued on ``bench``; ``notify`` is the operator's
    alert hook command."""

    def __init__(self, root: Path, bench: str = "sim", poll_ms: int = 1000, notify: str | None = None,
                 lab: bool = True) -> None:
        """``lab``: in a lab (a shared database), show other PCs' runs with their data, copied through their agents."""
        super().__init__()
        self.setWindowTitle(f"labctl — {root}")
        self.store = Store(root, desk=lab)
        self.queue = self.store.queue
        self.views: dict[str, RunWindow] = {}
        self.feeds: dict[str, FeedClient] = {}
        self.dismissed: set[str] = set()  # running runs whose view the operator closed: not reopened
        self.compares: list[CompareWindow] = []
        self.settings = QSettings("labctl", "labctl")  # what the operator chose last time (tabs or tiles)

        self.bench_panel = BenchPanel(bench, self.queue, self.store.registry, poll_ms, live=self.live_status)
        self.form = ProcedureForm(self.queue, self.bench_panel.spec)
        self.bench_panel.changed.connect(self.form.set_bench)
        self.queue_panel = QueuePanel(root, self.queue, self.store.registry, poll_ms)
        self.queue_panel.message.connect(lambda text: self.statusBar().showMessage(text, 10000))
        self.browser = RunBrowser(self.store)
        self.browser.opened.connect(self.show_state)
        self.daemon = DaemonStatus(root, poll_ms, agents=Agents(self.store.database) if self.store.config.shared else None)
        self.daemon.state_changed.connect(self._daemon_changed)
        self.form.queued.connect(self._queued)
        self.statusBar().addPermanentWidget(self.daemon)
        self.event_log = EventLog(self.store.registry, feeds=self.feeds, poll_ms=poll_ms)
        self.event_log.run_chosen.connect(self.browser.open_run)
        self.alerts = Alerts(self.event_log, root, notify)
        self.alerts.alerted.connect(lambda text: self.statusBar().showMessage(text, 30000))

        self.channel_grid = ChannelGrid(bench, self.queue, self.store.registry, poll_ms, live=self.live_status)
        self.channel_grid.open_run.connect(self.browser.open_run)
        self.bench_panel.changed.connect(self.channel_grid.set_bench)
        self.runs = RunArea()
        self.center = QTabWidget(documentMode=True)  # every channel at a glance, and the runs' own views
        self.center.addTab(self.channel_grid, "Channels")
        self.center.addTab(self.runs, "Run views")
        self.setCentralWidget(self.center)
        left = QWidget()
        column = QVBoxLayout(left)
        column.addWidget(self.bench_panel)
        column.addWidget(self.form, stretch=1)
        form = self._dock("Bench and procedure", left, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)  # the form: full height
        queue = self._dock("Queue", self.queue_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        runs = self._dock("Runs", self.browser, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.splitDockWidget(queue, runs, Qt.Orientation.Horizontal)  # the queue and the browser side by side
        self.tabifyDockWidget(runs, self._dock("Events", self.event_log, Qt.DockWidgetArea.BottomDockWidgetArea))
        runs.raise_()
        self._menus()
        self.resize(1600, 1000)
        self.resizeDocks([form, queue, runs], [420, 700, 480], Qt.Orientation.Horizontal)
        self.resizeDocks([queue], [240], Qt.Orientation.Vertical)

        self._timer = QTimer(self, interval=poll_ms)
        self._timer.timeout.connect(self.watch_runs)
        self._timer.start()
        self.watch_runs()

    def _set_tabbed(self, on: bool) -> None:
        self.runs.set_tabbed(on)
        self.settings.setValue("tabbed", on)

    def _queued(self, _ids: list[int]) -> None:
        self.queue_panel.refresh()
        if self.daemon.pid() is None:  # a new user's queue would otherwise wait in silence
            self.form.message.setText(self.form.message.text() + WAITS_FOR_DAEMON)

    def _daemon_changed(self, running: bool) -> None:
        if running:  # the queued entries start now: the hint to start the daemon is no longer true
            self.form.message.setText(self.form.message.text().replace(WAITS_FOR_DAEMON, ""))

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _menus(self) -> None:
        view = self.menuBar().addMenu("&View")
        tile = QAction("Tile run views", self, triggered=self.runs.tile)
        tabs = QAction("Run views as tabs", self, checkable=True)
        tabs.toggled.connect(self._set_tabbed)
        tabs.setChecked(self.settings.value("tabbed", False, type=bool))  # as the operator left it
        compare = QAction("Compare selected runs", self, triggered=self.compare_selected)
        view.addActions([tile, tabs, compare])
        view.addSeparator()
        for dock in self.findChildren(QDockWidget):
            view.addAction(dock.toggleViewAction())
        daemon = self.menuBar().addMenu("&Daemon")
        daemon.addActions([self.daemon.start_action, self.daemon.stop_action])

    # -- run views -------------------------------------------------------------------------------------------

    @riding_out
    def watch_runs(self) -> None:
        """Open a live view for every run the registry shows running that has none yet."""
        for record in self.store.registry.list():
            if record.status == "running" and record.id not in self.views and record.id not in self.dismissed:
                self.follow(record)

    def follow(self, record: RunRecord) -> RunView:
        """A view of a run fed live from its process (or from its folder once it has ended)."""
        state = RunState(record.id, record.procedure)
        feed = FeedClient(record.id, Path(record.folder), state, parent=self)  # goes with the window
        feed.ended.connect(lambda status: self.statusBar().showMessage(f"Run {record.id} {status}", 10000))
        self.feeds[record.id] = feed
        self.dismissed.discard(record.id)
        return self._add_view(record.id, RunView(state))

    def show_state(self, state: RunState) -> None:
        """Show a run the operator opened (browser, channel grid, event log): one already on show comes to the front,
        a running one is followed live."""
        self.center.setCurrentWidget(self.runs)
        if state.run_id in self.views:
            self.runs.setActiveSubWindow(self.views[state.run_id])
            return
        record = self.store.registry.get(state.run_id)
        if record is not None and record.status == "running":
            self.follow(record)
            return
        self._add_view(state.run_id, RunView(state))

    def compare_selected(self) -> CompareWindow | None:
        """Overlay the runs selected in the browser (Ctrl-click several) in a window of their own."""
        ids = self.browser.selected_ids()
        if len(ids) < 2:
            self.statusBar().showMessage("Select two runs or more in Runs (Ctrl-click) to compare them", 10000)
            return None
        states = [RunState.from_folder(Path(self.store.registry.get(run_id).folder)) for run_id in ids]
        window = CompareWindow(states)
        self.compares.append(window)  # a top-level window: kept alive here
        window.show()
        return window

    def live_status(self, run_id: str) -> dict[str, Any] | None:
        """The latest live values of a run this window follows through its feed (None if it does not)."""
        feed = self.feeds.get(run_id)
        return feed.state.status_line if feed is not None and feed.live else None

    def view(self, run_id: str) -> RunView | None:
        window = self.views.get(run_id)
        return window.view() if window is not None else None

    def _add_view(self, run_id: str, view: RunView) -> RunView:
        window = RunWindow(run_id, view)
        window.setWindowTitle(view.caption())  # channel, procedure, cell, run: which tile is which at a glance
        view.caption_changed.connect(window.setWindowTitle)
        view.close_requested.connect(window.close)
        window.closed.connect(self._closed)
        self.runs.addSubWindow(window)
        self.views[run_id] = window
        window.show()
        self.runs.retile()  # once the new window has its size hints
        return view

    def _closed(self, run_id: str) -> None:
        self.views.pop(run_id, None)
        self.runs.retile()
        if (feed := self.feeds.pop(run_id, None)) is not None:
            self.dismissed.add(run_id)
            feed.close()
            feed.deleteLater()

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop watching; the runs and the daemon go on."""
        self._timer.stop()
        self.channel_grid.stop_watching()
        self.event_log.stop_watching()
        self.alerts.close()
        for feed in self.feeds.values():
            feed.close()
        self.feeds.clear()
        self.store.registry.close()  # a desk's copying of other PCs' runs
        self.bench_panel.stop_watching()
        if self.bench_panel.bench is not None:
            self.bench_panel.bench.close()
        super().closeEvent(event)


def main(root: Path, bench: str = "sim", notify: str | None = None, lab: bool = True) -> int:
    """Run the window until it is closed; the exit code of the Qt event loop."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("labctl")
    window = MainWindow(root, bench, notify=notify, lab=lab)
    window.show()
    return app.exec()
