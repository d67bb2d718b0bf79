"""The plot pages of a run view, ``PAGES``: each draws one part of a :class:`RunState` and, on ``draw``, only what
arrived since it last drew. Long traces go through :class:`DecimatedCurve`, so a redraw costs the same on a
week-long run as on a minute-long one.

Axes carry ``Quantity / unit`` labels, as the run's files do; data stay in the files' units (s, A) and the axes
scale them for display (h, mA). The time and R_tot pages are here; the spectra pages in
:mod:`labctl.gui.plots_spectra`, the per-cycle pages in :mod:`labctl.gui.plots_cycles`, what they share in
:mod:`labctl.gui.plots_base`.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from labctl.bdf_columns import CURRENT, TIME, VOLTAGE
from labctl.gui.curves import DecimatedCurve
from labctl.gui.plots_base import FAILURE, LATEST, STEP, TRACE, Page, draw_limits
from labctl.gui.plots_cycles import CapacityPage, CyclesPage, DQDVPage, VoltageCapacityPage
from labctl.gui.plots_spectra import BodePage, NyquistPage
from labctl.live.state import Marker, RunState
from labctl.units import SECONDS_PER_HOUR

MAX_STEP_LABELS = 60  # more step markers than this are drawn without text (it would be unreadable)
__all__ = ["FAILURE", "LATEST", "PAGES", "STEP", "Page"]  # the pens the run view's tests look for


class TimePage(Page):
    """Voltage and current against test time (any other time series, e.g. a deposition log, one row per quantity),
    x linked, with step markers (dashed, labelled with the current density) and failures (red, annotated)."""

    title = "V, I vs time"

    def __init__(self) -> None:
        super().__init__()
        self.plots: dict[str, pg.PlotItem] = {}
        self.curves: dict[str, DecimatedCurve] = {}
        self._markers = 0

    def has_data(self, state: RunState) -> bool:
        return len(state.samples) > 0

    def draw(self, state: RunState) -> None:
        for column in plotted_columns(state.samples.columns):
            if column not in self.curves:
                self._add_trace(state, column)
        for curve in self.curves.values():
            curve.refresh()
        if not self.plots:
            return  # markers wait for the first sample: they are drawn on its plots
        new = state.markers[self._markers :]
        if not new:
            return
        with_text = sum(m.kind == "step" for m in state.markers) <= MAX_STEP_LABELS
        for marker in new:
            self._add_marker(marker, with_text)
        self._markers = len(state.markers)

    def _add_trace(self, state: RunState, column: str) -> None:
        plot = self.stack("Test time / h", _axis_label(column))
        plot.getAxis("bottom").setScale(1 / SECONDS_PER_HOUR)  # data in s, as stored; read in h
        if column == CURRENT:
            plot.getAxis("left").setScale(1000)  # A → mA
        if column == VOLTAGE:
            draw_limits(plot, state.metadata)
        self.plots[column] = plot
        self.curves[column] = DecimatedCurve(plot, state.samples, column, pen=TRACE)

    def _add_marker(self, marker: Marker, with_text: bool) -> None:
        failure = marker.kind == "failure"
        pen = FAILURE if failure else STEP
        for i, plot in enumerate(self.plots.values()):
            text = marker.label if i == 0 and (failure or with_text) else None
            line = pg.InfiniteLine(marker.t_s, pen=pen, label=text, labelOpts=_label_options(failure))
            line.setToolTip(f"{marker.label} at {marker.t_s / SECONDS_PER_HOUR:.4g} h")
            plot.addItem(line)


def plotted_columns(columns: tuple[str, ...]) -> list[str]:
    """Voltage and current when the series has them; otherwise every quantity that is not a counter (``/ 1``)."""
    if VOLTAGE in columns:
        return [c for c in (VOLTAGE, CURRENT) if c in columns]
    return [c for c in columns if c != TIME and not c.endswith("/ 1")]


def _axis_label(column: str) -> str:
    return "Current / mA" if column == CURRENT else column


def _label_options(failure: bool) -> dict:
    if failure:
        # text left of the line: a failure usually ends the run, at the right edge of the plot
        return {"position": 0.9, "color": "#d62728", "fill": (255, 255, 255, 220), "anchors": [(1, 0.5), (1, 0.5)]}
    return {"position": 0.08, "color": (90, 90, 90), "rotateAxis": (1, 0), "anchors": [(0, 1), (0, 1)]}


class RtotPage(Page):
    """R_tot (Ω) of every fitted spectrum against test time (h)."""

    title = "R_tot"

    def __init__(self) -> None:
        super().__init__()
        self.plot = self.stack("Test time / h", "R_tot / Ω")
        self.curve = self.plot.plot(pen=TRACE, symbol="o", symbolSize=5, symbolBrush="#1f77b4", antialias=True)
        self._points = 0

    def has_data(self, state: RunState) -> bool:
        return bool(state.r_tot)

    def draw(self, state: RunState) -> None:
        if len(state.r_tot) == self._points:
            return
        self._points = len(state.r_tot)
        hours, ohms = np.array(state.r_tot, dtype=float).T
        self.curve.setData(hours, ohms)


PAGES: tuple[type[Page], ...] = (TimePage, CapacityPage, VoltageCapacityPage, DQDVPage, CyclesPage, NyquistPage,
                                 BodePage, RtotPage)  # a run view's tabs, in order
