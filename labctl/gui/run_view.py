"""One run on screen: a header (run, procedure, cell, channel, status, progress, latest values, result) over tabs of
plots.

The view renders a :class:`RunState` and nothing else; whoever feeds the state (a FeedClient live, or
``RunState.from_folder``) is not its concern. A timer (10 Hz) calls :meth:`RunView.refresh`, which does nothing
unless ``state.version`` moved, so an idle or finished run costs nothing. Tabs without data are hidden until data
arrives (the time tab always shows).

The header is three lines whatever it holds: its labels never wrap, they elide (the whole text in their tooltip;
the headline opens to its whole text on a click), so that a long result cannot push the plots of a small tile
under a scroll bar.
"""

from __future__ import annotations

from typing import Any

from PyQt6.QtCore import QRect, QSize, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QFont, QMouseEvent, QResizeEvent
from PyQt6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QSizePolicy,
    QStyle,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from labctl.gui.run_plots import PAGES, Page, TimePage
from labctl.live.state import RunState
from labctl.units import SECONDS_PER_HOUR

REFRESH_MS = 100
STATUS_COLOURS = {"running": "#1f77b4", "finished": "#2ca02c", "failed": "#d62728", "aborted": "#ff7f0e",
                  "interrupted": "#ff7f0e", "imported": "#9467bd", "unreachable": "#6a1b9a"}  # fmt: skip
PROGRESS_FORMAT = "%p % of planned time"


class ElidedLabel(QLabel):
    """One line of plain text, cut with "…" where it does not fit, the whole text in its tooltip. An expandable
    label shows its whole text, wrapped, after a click (another click folds it again)."""

    def __init__(self, text: str = "", expandable: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self.expandable = expandable
        self.expanded = False
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # any width: it elides
        if expandable:
            self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.set_full_text(text)

    def full_text(self) -> str:
        return self._full

    def set_full_text(self, text: str) -> None:
        if text != self._full:
            self._full = text
            self._fit()

    def elided(self) -> bool:
        return self.text() != self._full

    def hasHeightForWidth(self) -> bool:
        """No: its height is set as it resizes. A scroll area around a view with a height-for-width label gives the
        view the preferred height of every plot, and scrolls."""
        return False

    def sizeHint(self) -> QSize:
        return QSize(self.fontMetrics().horizontalAdvance(self._full) + 2, super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:
        return QSize(self.fontMetrics().horizontalAdvance("…") + 2, super().minimumSizeHint().height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if not self.expandable:
            super().mousePressEvent(event)
            return
        if self.expanded or self.elided():
            self.expanded = not self.expanded
            self._fit()
        event.accept()

    def _fit(self) -> None:
        width = self.contentsRect().width()
        self.setWordWrap(self.expanded)
        if self.expanded:
            self.setText(self._full)
            wrapped = self.fontMetrics().boundingRect(QRect(0, 0, max(width, 1), 100_000),
                                                      Qt.TextFlag.TextWordWrap, self._full)  # fmt: skip
            self.setMinimumHeight(wrapped.height() + self.height() - self.contentsRect().height())
        else:
            self.setText(self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, width))
            self.setMinimumHeight(0)
        hint = " (click for all of it)" if self.expandable and self.elided() else ""
        self.setToolTip(self._full + hint if self.elided() or self.expanded else "")


class RunView(QWidget):
    """The plots and header of one run's state; ``refresh`` redraws what changed since the last redraw.

    ``caption_changed`` carries the text for the view's window or tab (channel, procedure, cell, run) when it
    changes; ``close_requested`` the Close button of an ended run's view."""

    caption_changed = pyqtSignal(str)
    close_requested = pyqtSignal()

    def __init__(self, state: RunState, parent: QWidget | None = None, refresh_ms: int = REFRESH_MS) -> None:
        super().__init__(parent)
        self.state = state
        self._drawn = -1  # the state version on screen
        self._caption = ""
        self.title = ElidedLabel()
        bold = QFont(self.title.font())
        bold.setBold(True)
        self.title.setFont(bold)
        self.status = QLabel()
        self.progress = QProgressBar(minimum=0, maximum=100, format=PROGRESS_FORMAT)
        metrics = self.progress.fontMetrics()
        self.progress.setFixedSize(metrics.horizontalAdvance(PROGRESS_FORMAT.replace("%p", "100")) + 24,
                                   metrics.height() + 4)  # its text is drawn inside: as wide as its longest text
        self.values = ElidedLabel()
        self.headline = ElidedLabel(expandable=True)
        self.close_button = QToolButton(text="Close", toolTip="Close this view; the run's data stay in the store",
                                        autoRaise=True)  # flat: no taller than the text beside it
        self.close_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_DialogCloseButton))
        self.close_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.close_button.clicked.connect(self.close_requested)
        self.tabs = QTabWidget(documentMode=True)  # no frame: the plots get the room
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
        column = QVBoxLayout(self)
        column.setContentsMargins(2, 2, 2, 2)
        column.setSpacing(2)
        for left, right in ((self.title, self.status), (self.values, self.progress), (self.headline, self.close_button)):
            row = QHBoxLayout()  # rows of their own: a wide progress bar does not narrow the title above it
            row.setContentsMargins(4, 0, 4, 0)
            row.addWidget(left, stretch=1)
            row.addWidget(right)
            column.addLayout(row)
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

    def caption(self) -> str:
        """The view's name for its window or tab, the channel first (it tells tiles of one cycler apart)."""
        channel, cell = run_channel(self.state.metadata), run_cell(self.state.metadata)
        parts = [f"ch {channel}" if channel is not None else "", self.state.procedure, cell or "", self.state.run_id]
        return " · ".join(p for p in parts if p)

    def _draw_header(self) -> None:
        s = self.state
        self.title.set_full_text(title_text(s))
        colour = STATUS_COLOURS.get(s.status, "#444")
        self.status.setText(f"<b style='color:{colour}'>{s.status}</b>")
        self._draw_progress()
        self.values.set_full_text(status_text(s.status_line))
        self.values.setVisible(bool(self.values.full_text()))  # a run without samples (eis) has none: no empty line
        self.headline.set_full_text(s.error or s.metadata.get("error") or (s.result or {}).get("headline") or "")
        self.close_button.setVisible(s.status != "running")
        if (caption := self.caption()) != self._caption:
            self._caption = caption
            self.caption_changed.emit(caption)

    def _draw_progress(self) -> None:
        s = self.state
        self.progress.setVisible(s.planned or s.progress > 0)  # an imported or followed test has no plan to measure
        self.progress.setValue(round(s.progress))
        planned = s.metadata.get("estimated_duration_s")
        of = f" ({planned / SECONDS_PER_HOUR:.3g} h planned)" if s.planned else ""
        done = "done" if s.status == "running" else f"done when it ended ({s.status})"
        self.progress.setToolTip(f"{round(s.progress)} % of the planned test time {done}{of}")

    def _show_data_tab(self) -> None:
        """Bring forward the first tab with data when the current one has none (an EIS run has no time series)."""
        if self.tabs.currentWidget().has_data(self.state):
            return
        for i, page in enumerate(self.pages):
            if page.has_data(self.state):
                self.tabs.setCurrentIndex(i)
                return


def title_text(state: RunState) -> str:
    """Run id, procedure, cell and cycler channel, as the header and an exported picture name the run."""
    channel, cell = run_channel(state.metadata), run_cell(state.metadata)
    parts = [state.run_id, state.procedure, f"cell {cell}" if cell else "",
             f"channel {channel}" if channel is not None else ""]  # fmt: skip
    return " · ".join(p for p in parts if p)


def run_cell(metadata: dict[str, Any]) -> str | None:
    return (metadata.get("cell") or {}).get("id") or None


def run_channel(metadata: dict[str, Any]) -> int | None:
    """The cycler channel the run drives: its bench's (a queued run's bench names the entry's channel), for a run
    that uses a cycler (an ``eis`` run's bench has one it does not use); None without one (an imported test)."""
    cycler = (metadata.get("instruments") or {}).get("cycler")
    if not isinstance(cycler, dict):
        return None
    roles = ((metadata.get("bench") or {}).get("config") or {}).get("roles") or {}
    channel = (roles.get("cycler") or {}).get("channel") or cycler.get("channel")
    return int(channel) if str(channel).isdigit() else None


def status_text(line: dict[str, Any]) -> str:
    """The latest values of a run as text with units: time, voltage, current, current density, cycle."""
    parts = []
    for key, text in (("test_time_s", lambda v: f"t {v / SECONDS_PER_HOUR:.3f} h"),
                      ("voltage_V", lambda v: f"V {v:+.4f} V"), ("current_A", lambda v: f"I {1000 * v:+.4g} mA"),
                      ("density_mA_cm2", lambda v: f"j {v:+.3g} mA/cm²"), ("cycle", lambda v: f"cycle {v:.0f}")):  # fmt: skip
        if isinstance(line.get(key), int | float):
            parts.append(text(line[key]))
    return "  ".join(parts)
