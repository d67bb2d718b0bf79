"""A window overlaying chosen runs to compare them (interlayers, cells, conditions): voltage against test time,
capacity, retention or CE against cycle, or one impedance spectrum of each run (its first or its last) in a Nyquist
plot. One colour per run; the legend names each run by its cell and interlayer and the end of its id.

Open it with the runs' states: ``CompareWindow([RunState.from_folder(f) for f in folders]).show()``. It draws what
the states hold when built; ``redraw`` draws them again (after live states moved).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PyQt6.QtWidgets import QComboBox, QLabel, QWidget

from labctl.analysis.cycle_curves import Basis, CycleCapacities, capacity_basis, run_basis
from labctl.bdf_columns import VOLTAGE
from labctl.gui.curves import DecimatedCurve
from labctl.gui.plots_base import CycleAxis, PlotPanel, draw_limits, side_legend
from labctl.gui.plots_cycles import run_capacities, samples_of
from labctl.live.state import RunState
from labctl.units import SECONDS_PER_HOUR

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")  # fmt: skip
SPECTRUM = {"last": -1, "first": 0}


def run_label(state: RunState) -> str:
    """'cell-7 Mg-Cu (8d98)': the cell, its interlayer (a simulated bench's cell preset when none is given) and the
    end of the run id (two runs of one cell differ)."""
    cell = state.metadata.get("cell") or {}
    preset = (((state.metadata.get("bench") or {}).get("config") or {}).get("sim") or {}).get("cell")
    name = " ".join(str(p) for p in (cell.get("id"), cell.get("interlayer") or preset) if p) or state.procedure
    return f"{name} ({state.run_id[-4:]})"


def common_bases(states: list[RunState]) -> list[Basis]:
    """Each run's capacity basis, per area for all when the runs do not share one (mAh/g beside mAh/cm²)."""
    bases = [run_basis(s.metadata, s.result) for s in states]
    if len({b.unit for b in bases}) > 1:
        return [capacity_basis(b.area_cm2, None) for b in bases]
    return bases


class CompareWindow(PlotPanel):
    """Chosen runs overlaid, one plot at a time (module docstring)."""

    def __init__(self, states: list[RunState], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.states = states
        self.setWindowTitle(f"Compare {len(states)} runs")
        self.resize(1000, 600)
        self.capacities = self._capacities()
        self.modes: dict[str, Callable[[], None]] = {
            "V vs time": self._voltage, "capacity vs cycle": self._capacity,
            "retention vs cycle": self._retention, "CE vs cycle": self._ce, "Nyquist": self._nyquist,
        }  # fmt: skip
        self.mode = QComboBox(toolTip="What to overlay")
        self.mode.addItems([name for name in self.modes if self._available(name)])
        self.spectrum = QComboBox(toolTip="Which spectrum of each run")
        self.spectrum.addItems(list(SPECTRUM))
        self.add_control(QLabel("Overlay"), self.mode, self.spectrum)
        self.plot: pg.PlotItem | None = None
        self.legend: pg.LegendItem | None = None
        self.curves: list[DecimatedCurve] = []  # V vs time: redrawn with the view
        self.mode.currentTextChanged.connect(self.redraw)
        self.spectrum.currentTextChanged.connect(self.redraw)
        self.redraw()

    def _available(self, mode: str) -> bool:
        if mode == "V vs time":
            return any(VOLTAGE in s.samples.columns for s in self.states)
        if mode == "Nyquist":
            return any(s.spectra for s in self.states)
        return any(c is not None for c in self.capacities)

    def _capacities(self) -> list[CycleCapacities | None]:
        bases = common_bases(self.states)
        return [run_capacities(s, b, samples_of(s)) for s, b in zip(self.states, bases, strict=True)]

    def redraw(self) -> None:
        self.capacities = self._capacities()
        self.clear_plots()
        self.curves = []
        mode = self.mode.currentText()
        self.spectrum.setVisible(mode == "Nyquist")
        self.set_summary(f"{len(self.states)} runs" if mode else "the runs have nothing in common to overlay")
        if mode:
            self.modes[mode]()

    def _new_plot(self, x: str, y: str, cycles: bool = False) -> pg.PlotItem:
        axes = {"bottom": CycleAxis("bottom")} if cycles else {}
        self.legend = side_legend()
        self.plot = self.stack(x, y, self.legend, axisItems=axes)
        return self.plot

    def _pens(self) -> list[pg.QtGui.QPen]:
        return [pg.mkPen(COLOURS[k % len(COLOURS)], width=1.5) for k in range(len(self.states))]

    def _voltage(self) -> None:
        plot = self._new_plot("Test time / h", "Voltage / V")
        plot.getAxis("bottom").setScale(1 / SECONDS_PER_HOUR)
        for state, pen in zip(self.states, self._pens(), strict=True):
            if VOLTAGE in state.samples.columns:
                curve = DecimatedCurve(plot, state.samples, VOLTAGE, pen=pen)
                curve.refresh()
                self.curves.append(curve)
                self.legend.addItem(curve.item, run_label(state))
        if len(self.states) == 1:
            draw_limits(plot, self.states[0].metadata)  # one run's limits; several runs' would be a tangle

    def _per_cycle(self, y: str, values: Callable[[RunState, CycleCapacities], np.ndarray]) -> None:
        plot = self._new_plot("Cycle", y, cycles=True)
        for state, capacities, pen in zip(self.states, self.capacities, self._pens(), strict=True):
            if capacities is not None:
                item = plot.plot(capacities.cycle, values(state, capacities), pen=pen, symbol="o", symbolSize=5,
                                 symbolBrush=pen.color(), symbolPen=None, connect="finite", antialias=True)
                self.legend.addItem(item, run_label(state))

    def _capacity(self) -> None:
        shown = [c for c in self.capacities if c is not None]
        names = ", ".join(dict.fromkeys(c.names[1] for c in shown))  # 'discharge, stripping' for mixed cells
        self._per_cycle(f"{names.capitalize()} capacity / {shown[0].unit}", lambda _, c: c.returned)

    def _retention(self) -> None:
        """Each run against its analysis' reference cycle (a full cell's first after activation), else its first."""
        def retention(state: RunState, c: CycleCapacities) -> np.ndarray:
            return c.retention((state.result or {}).get("reference_cycle") or int(c.cycle[0]))

        self._per_cycle("Retention / % of the reference cycle", retention)

    def _ce(self) -> None:
        self._per_cycle("CE / %", lambda _, c: c.ce_percent)

    def _nyquist(self) -> None:
        plot = self._new_plot("Z′ / Ω", "−Z″ / Ω")
        plot.setAspectLocked(True)
        which = SPECTRUM[self.spectrum.currentText()]
        for state, pen in zip(self.states, self._pens(), strict=True):
            if state.spectra:
                spectrum = state.spectra[which]
                item = plot.plot(spectrum.z_real, -spectrum.z_imag, pen=pen, symbol="o", symbolSize=4,
                                 symbolBrush=pen.color(), symbolPen=None, antialias=True)
                self.legend.addItem(item, f"{run_label(state)} #{spectrum.index}")
