"""The plot pages of a run view. Each page draws one part of a :class:`RunState` and, on ``draw``, only what arrived
since it last drew: new markers, new spectra, the cycle table or R_tot when they grew. Long traces go through
:class:`DecimatedCurve`, so a redraw costs the same on a week-long run as on a minute-long one.

Axes carry ``Quantity / unit`` labels, as the run's files do; data stay in the files' units (s, A) and the axes
scale them for display (h, mA).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt

from labctl.bdf_columns import CURRENT, FREQUENCY, TIME, VOLTAGE
from labctl.gui.curves import DecimatedCurve
from labctl.live.state import Marker, RunState, Spectrum
from labctl.units import SECONDS_PER_HOUR

BACKGROUND, FOREGROUND = "w", "k"
TRACE = pg.mkPen("#1f77b4", width=1)
LATEST = pg.mkPen("#d62728", width=2.5)
STEP = pg.mkPen((110, 110, 110), width=1, style=Qt.PenStyle.DashLine)
FAILURE = pg.mkPen("#d62728", width=2)
OLDER = pg.colormap.get("viridis")  # older spectra coloured by their order, first dark ...
OLDEST_TO_NEWEST = 0.85  # ... up to this point of the map (its last, pale yellow, is lost on white)
MAX_STEP_LABELS = 60  # more step markers than this are drawn without text (it would be unreadable)
OVERPOTENTIALS = (("plating_overpotential_mV", "plating", "#1f77b4"), ("stripping_overpotential_mV", "stripping",
                  "#ff7f0e"), ("nucleation_overpotential_mV", "nucleation", "#2ca02c"))  # fmt: skip


def labelled(plot: pg.PlotItem, x: str, y: str) -> pg.PlotItem:
    """``plot`` with axis labels as given (units in the text, never an automatic SI prefix), a grid, dark ink."""
    for side, text in (("bottom", x), ("left", y)):
        axis = plot.getAxis(side)
        axis.enableAutoSIPrefix(False)
        axis.setLabel(text)
        axis.setPen(FOREGROUND)
        axis.setTextPen(FOREGROUND)
        axis.setStyle(maxTickLevel=1)  # major and minor grid lines only: the third level doubled a redraw's cost
    plot.showGrid(x=True, y=True, alpha=0.2)
    return plot


class Page(pg.GraphicsLayoutWidget):
    """A tab of the run view."""

    title = ""

    def __init__(self) -> None:
        super().__init__()
        self.setBackground(BACKGROUND)

    def has_data(self, state: RunState) -> bool:
        raise NotImplementedError

    def draw(self, state: RunState) -> None:
        raise NotImplementedError


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
        plot = labelled(self.addPlot(row=len(self.plots), col=0), "Test time / h", _axis_label(column))
        plot.getAxis("bottom").setScale(1 / SECONDS_PER_HOUR)  # data in s, as stored; read in h
        if column == CURRENT:
            plot.getAxis("left").setScale(1000)  # A → mA
        if self.plots:
            plot.setXLink(next(iter(self.plots.values())))
        for above in self.plots.values():
            above.getAxis("bottom").showLabel(False)  # one time label, under the lowest plot
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


class SpectraPage(Page):
    """Pages that draw every spectrum, the latest one highlighted, the older ones coloured by their order."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[list[pg.PlotDataItem]] = []  # per spectrum, its items on this page's plots

    def has_data(self, state: RunState) -> bool:
        return bool(state.spectra)

    def draw(self, state: RunState) -> None:
        new = state.spectra[len(self.items) :]
        if not new:
            return
        for spectrum in new:
            self.items.append(self.add_spectrum(spectrum))
        n = len(self.items)
        for k, items in enumerate(self.items[:-1]):
            for item in items:
                item.setPen(pg.mkPen(OLDER.map(OLDEST_TO_NEWEST * k / max(1, n - 2), mode="qcolor"), width=1))
                item.setSymbol(None)
        for item in self.items[-1]:
            item.setPen(LATEST)
            item.setSymbol("o")
            item.setSymbolSize(5)
            item.setSymbolBrush("#d62728")
            item.setSymbolPen(None)
        latest = state.spectra[-1]
        self.title_plot.setTitle(f"latest: spectrum {latest.index} at {latest.test_time_s / SECONDS_PER_HOUR:.3g} h"
                                 f", cycle {latest.cycle}", color=FOREGROUND, size="9pt")

    def add_spectrum(self, spectrum: Spectrum) -> list[pg.PlotDataItem]:
        raise NotImplementedError

    @property
    def title_plot(self) -> pg.PlotItem:
        raise NotImplementedError


class NyquistPage(SpectraPage):
    """Z' against −Z'' in Ω, equal scales on both axes (a semicircle looks round)."""

    title = "Nyquist"

    def __init__(self) -> None:
        super().__init__()
        self.plot = labelled(self.addPlot(), "Z′ / Ω", "−Z″ / Ω")
        self.plot.setAspectLocked(True)

    @property
    def title_plot(self) -> pg.PlotItem:
        return self.plot

    def add_spectrum(self, spectrum: Spectrum) -> list[pg.PlotDataItem]:
        return [self.plot.plot(spectrum.z_real, -spectrum.z_imag, antialias=True)]


class BodePage(SpectraPage):
    """|Z| in Ω and −phase in degrees against frequency, log frequency axis (log |Z| too)."""

    title = "Bode"

    def __init__(self) -> None:
        super().__init__()
        self.magnitude = labelled(self.addPlot(row=0, col=0), FREQUENCY, "|Z| / Ω")
        self.phase = labelled(self.addPlot(row=1, col=0), FREQUENCY, "−Phase / °")
        self.magnitude.setLogMode(x=True, y=True)
        self.phase.setLogMode(x=True, y=False)
        self.phase.setXLink(self.magnitude)

    @property
    def title_plot(self) -> pg.PlotItem:
        return self.magnitude

    def add_spectrum(self, spectrum: Spectrum) -> list[pg.PlotDataItem]:
        z = spectrum.z_real + 1j * spectrum.z_imag
        return [self.magnitude.plot(spectrum.freq, np.abs(z), antialias=True),
                self.phase.plot(spectrum.freq, -np.degrees(np.angle(z)), antialias=True)]


class CyclesPage(Page):
    """Per-cycle Coulombic efficiency (%) and plating, stripping and nucleation overpotentials (mV)."""

    title = "Cycles"

    def __init__(self) -> None:
        super().__init__()
        self.ce = labelled(self.addPlot(row=0, col=0), "Cycle", "CE / %")
        self.overpotential = labelled(self.addPlot(row=1, col=0), "Cycle", "Overpotential / mV")
        self.overpotential.setXLink(self.ce)
        self.overpotential.addLegend(offset=(-10, 10), labelTextColor=FOREGROUND)
        self.ce_curve = self.ce.plot(pen=TRACE, symbol="o", symbolSize=5, symbolBrush="#1f77b4", connect="finite",
                                     antialias=True)
        self.curves = {key: self.overpotential.plot(pen=pg.mkPen(colour, width=1.5), symbol="o", symbolSize=4,
                                                    symbolBrush=colour, name=name, connect="finite", antialias=True)
                       for key, name, colour in OVERPOTENTIALS}  # fmt: skip
        self._rows = 0

    def has_data(self, state: RunState) -> bool:
        return bool(state.cycles)

    def draw(self, state: RunState) -> None:
        if len(state.cycles) == self._rows:
            return
        self._rows = len(state.cycles)
        cycle = _values(state.cycles, "cycle")
        self.ce_curve.setData(cycle, _values(state.cycles, "ce_percent"))
        for key, curve in self.curves.items():
            curve.setData(cycle, _values(state.cycles, key))


def _values(rows: list[dict], key: str) -> np.ndarray:
    """``key`` of every row as floats, NaN where a row has none (the curve breaks there)."""
    return np.array([np.nan if r.get(key) is None else float(r[key]) for r in rows])


class RtotPage(Page):
    """R_tot (Ω) of every fitted spectrum against test time (h)."""

    title = "R_tot"

    def __init__(self) -> None:
        super().__init__()
        self.plot = labelled(self.addPlot(), "Test time / h", "R_tot / Ω")
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


PAGES: tuple[type[Page], ...] = (TimePage, NyquistPage, BodePage, CyclesPage, RtotPage)  # a run view's tabs, in order
