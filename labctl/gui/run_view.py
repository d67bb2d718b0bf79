"""One run on screen: a header (run, procedure, cell, status, progress, latest values, result) over tabs of plots.

The view renders a :class:`RunState` and nothing else; whoever feeds the state (a FeedClient live, or
``RunState.from_folder``) is not its concern. A timer (10 Hz) calls :meth:`RunView.refresh`, which does nothing
unless ``state.version`` moved, so an idle or finished run costs nothing. Tabs without data are hidden until data
arrives (the time tab always shows).
"""

from __future__ import annotations

from typing import Any

from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QGridLayout, QLabel, QProgressBar, QTabWidget, QVBoxLayout, QWidget

from labctl.gui.run_plots import PAGES, Page, TimePage
from labctl.live.state import RunState
from labctl.units import SECONDS_PER_HOUR

REFRESH_MS = 100
STATUS_COLOURS = {"running": "#1f77b4", "finished": "#2ca02c", "failed": "#d62728", "aborted": "#ff7f0e",
                  "interrupted": "#ff7f0e", "imported": "#9467bd"}  # fmt: skip


class RunView(QWidget):
    """The plots and header of one run's state; ``refresh`` redraws what changed since the last redraw."""

    def __init__(self, state: RunState, parent: QWidget | None = None, refresh_ms: int = REFRESH_MS) -> None:
        super().__init__(parent)
        self.state = state
        self._drawn = -1  # the state version on screen
        self.title = QLabel()
        self.status = QLabel()
        self.progress = QProgressBar(minimum=0, maximum=100, format="%p %")
        self.values = QLabel()
        self.headline = QLabel(wordWrap=True)
        self.tabs = QTabWidget()
        self.pages: list[Page] = [page() for page in PAGES]
        for page in self.pages:
            self.tabs.addTab(page, page.title)
        self._layout()
        self._timer = QTimer(self, interval=refresh_ms)
        self._timer.timeout.connect(self.refresh)
        if refresh_ms:  # 0: the owner calls refresh (a still picture, e.g. for export)
            self._timer.start()
        self.refresh()

    def _layout(self) -> None:
        header = QGridLayout()
        header.addWidget(self.title, 0, 0, 1, 2)
        header.addWidget(self.status, 0, 2)
        header.addWidget(self.values, 1, 0)
        header.addWidget(self.progress, 1, 1, 1, 2)
        header.addWidget(self.headline, 2, 0, 1, 3)
        header.setColumnStretch(0, 3)
        header.setColumnStretch(1, 2)
        column = QVBoxLayout(self)
        column.addLayout(header)
        column.addWidget(self.tabs, stretch=1)

    def refresh(self) -> bool:
        """Redraw if the state changed since the last redraw; True if it did."""
        version = self.state.version
        if version == self._drawn:
            return False
        self._drawn = version
        self._draw_header()
        for i, page in enumerate(self.pages):
            shown = page.has_data(self.state)
            if shown:
                page.draw(self.state)
            self.tabs.setTabVisible(i, shown or isinstance(page, TimePage))
        self._show_data_tab()
        return True

    def page(self, title: str) -> Page:
        """The tab called ``title`` ("V, I vs time", "Nyquist", "Bode", "Cycles", "R_tot")."""
        return next(p for p in self.pages if p.title == title)

    def pages_with_data(self) -> dict[str, Page]:
        """Title → page of every tab that has something to show (what a PNG export saves)."""
        return {page.title: page for page in self.pages if page.has_data(self.state)}

    def _draw_header(self) -> None:
        s = self.state
        cell = (s.metadata.get("cell") or {}).get("id")
        self.title.setText(f"<b>{s.run_id}</b> &nbsp; {s.procedure}" + (f" &nbsp; cell {cell}" if cell else ""))
        colour = STATUS_COLOURS.get(s.status, "#444")
        self.status.setText(f"<b style='color:{colour}'>{s.status}</b>")
        self.progress.setVisible(s.planned or s.progress > 0)  # an imported or followed test has no plan to measure
        self.progress.setValue(round(s.progress))
        self.progress.setFormat("%p %" if s.status == "running" else "ended at %p % of the planned time")
        self.values.setText(status_text(s.status_line))
        self.headline.setText(s.error or s.metadata.get("error") or (s.result or {}).get("headline") or "")

    def _show_data_tab(self) -> None:
        """Bring forward the first tab with data when the current one has none (an EIS run has no time series)."""
        if self.tabs.currentWidget().has_data(self.state):
            return
        for i, page in enumerate(self.pages):
            if page.has_data(self.state):
                self.tabs.setCurrentIndex(i)
                return


def status_text(line: dict[str, Any]) -> str:
    """The latest values of a run as text with units: time, voltage, current, current density, cycle."""
    parts = []
    for key, text in (("test_time_s", lambda v: f"t {v / SECONDS_PER_HOUR:.3f} h"),
                      ("voltage_V", lambda v: f"V {v:+.4f} V"), ("current_A", lambda v: f"I {1000 * v:+.4g} mA"),
                      ("density_mA_cm2", lambda v: f"j {v:+.3g} mA/cm²"), ("cycle", lambda v: f"cycle {v:.0f}")):  # fmt: skip
        if isinstance(line.get(key), int | float):
            parts.append(text(line[key]))
    return "   ".join(parts)
