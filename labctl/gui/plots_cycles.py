"""Per-cycle pages of a run view, for runs whose cycles pass capacity (CE half cells, full cells, activation,
imported cycling data): capacity and CE against cycle with retention, voltage against capacity for chosen cycles,
dQ/dV, and a half cell's CE and overpotentials. The numbers come from :mod:`labctl.analysis.cycle_curves`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QPointF
from PyQt6.QtWidgets import QComboBox, QLabel, QLineEdit, QSpinBox

from labctl.analysis.cycle_curves import (
    SAMPLE_CYCLED,
    Basis,
    CycleCapacities,
    CycleRows,
    HalfCycleCurve,
    Samples,
    announces_cycling,
    capacities_from_rows,
    capacities_from_samples,
    dq_dv,
    half_cycle_curves,
    parse_cycle_choice,
    run_basis,
    values_of,
)
from labctl.bdf_columns import TIME
from labctl.gui.plots_base import (
    TRACE,
    CycleAxis,
    Page,
    axis_value,
    colour_bar,
    draw_limits,
    scale_colours,
    side_legend,
    style_axis,
)
from labctl.live.state import RunState

OVERPOTENTIALS = (("plating_overpotential_mV", "plating", "#1f77b4"), ("stripping_overpotential_mV", "stripping",
                  "#ff7f0e"), ("nucleation_overpotential_mV", "nucleation", "#2ca02c"))  # fmt: skip
STORED, RETURNED, CE = "#1f77b4", "#d62728", "#2ca02c"
MAX_POINTS = 2000  # per drawn half-cycle: more add nothing at a plot's width
TICKED_CYCLES = 12  # up to this many chosen cycles are ticked on the colour bar, one tick each
CHOICE_HELP = "Cycles to draw: numbers, ranges A-B and 'last', comma-separated; empty: the first, the last and some between"
PER_VOLT = {"mAh/g": "mAh g⁻¹ V⁻¹", "mAh/cm²": "mAh cm⁻² V⁻¹", "mAh": "mAh V⁻¹"}


def table_rows(state: RunState) -> list[dict[str, Any]]:
    """The run's per-cycle table: its ``cycle_completed`` rows as they came, else its result's."""
    return state.cycles or list((state.result or {}).get("cycles") or [])


def samples_of(state: RunState) -> Samples | None:
    series = state.samples
    if not len(series):
        return None
    return Samples.of_columns({**{c: series.column(c) for c in series.columns}, TIME: series.x})


def run_capacities(state: RunState, basis: Basis, samples: Samples | None) -> CycleCapacities | None:
    """The run's capacities per cycle: from its analysis table, or for imported and followed data from its samples."""
    capacities = capacities_from_rows(table_rows(state), basis)
    if capacities is None and state.procedure in SAMPLE_CYCLED and samples is not None:
        return capacities_from_samples(samples, basis)
    return capacities


class CycleSource:
    """What the cycle pages read of one run, brought up to date when the state moved: the basis, the per-cycle
    capacities, whether the run cycles capacity at all, and where each cycle's samples are."""

    def __init__(self) -> None:
        self.version = -1
        self.basis = Basis("mAh", None, None)
        self.capacities: CycleCapacities | None = None
        self.cycling = False
        self.samples: Samples | None = None
        self.rows = CycleRows()
        self._events = 0
        self._grown: tuple[int, int, int] | None = None  # what the capacities were computed from

    def update(self, state: RunState) -> None:
        """Bring up to date if the state moved; the capacities only when the table or the result changed (or, for
        data cycled by their samples alone, the samples grew)."""
        if state.version == self.version:
            return
        self.version = state.version
        self.samples = samples_of(state)
        grown = (len(state.cycles), id(state.result), len(state.samples) if state.procedure in SAMPLE_CYCLED else 0)
        if grown != self._grown:
            self._grown = grown
            self.basis = run_basis(state.metadata, state.result)
            self.capacities = run_capacities(state, self.basis, self.samples)
        self.cycling = self.cycling or self.capacities is not None or any(
            announces_cycling(e) for e in state.events[self._events :])
        self._events = len(state.events)
        if self.cycling and self.samples is not None:
            self.rows.update(self.samples, self.basis.rest_A)


class CapacityPage(Page):
    """Capacity per cycle (stored and returned: charge and discharge, plating and stripping) in mAh/g when the cathode
    mass is known, else mAh/cm², or the returned capacity's retention against a reference cycle; CE (%) on the right
    axis."""

    title = "Capacity"

    def __init__(self) -> None:
        super().__init__()
        self.source = CycleSource()
        self.mode = QComboBox(toolTip="Capacity per cycle, or retention of the returned capacity")
        self.mode.addItems(["capacity", "retention"])
        self.reference = QSpinBox(minimum=0, maximum=0, prefix="of cycle ", enabled=False,
                                  toolTip="The reference cycle of the retention")
        self.add_control(QLabel("Show"), self.mode, self.reference)
        self.legend = side_legend()
        self.plot = self.stack("Cycle", "Capacity / mAh/cm²", self.legend, axisItems={"bottom": CycleAxis("bottom")})
        self.ce_box = pg.ViewBox()
        self.plot.showAxis("right")
        style_axis(self.plot.getAxis("right"), "CE / %")
        self.plot.scene().addItem(self.ce_box)
        self.plot.getAxis("right").linkToView(self.ce_box)
        self.ce_box.setXLink(self.plot)
        self.plot.getViewBox().sigResized.connect(self._align_ce)
        options = {"connect": "finite", "antialias": True, "symbolSize": 6}
        self.stored = self.plot.plot(pen=pg.mkPen(STORED, width=1.5), symbol="o", symbolBrush=None,
                                     symbolPen=STORED, **options)
        self.returned = self.plot.plot(pen=pg.mkPen(RETURNED, width=1.5), symbol="o", symbolBrush=RETURNED,
                                       symbolPen=None, **options)
        self.ce = pg.PlotDataItem(pen=pg.mkPen(CE, width=1), symbol="s", symbolBrush=CE, symbolPen=None,
                                  **options | {"symbolSize": 4})
        self.ce_box.addItem(self.ce)
        self._reference_set = False
        self._drawn = -1  # the state version on screen
        self.mode.currentTextChanged.connect(self._redraw)
        self.reference.valueChanged.connect(self._set_reference)

    def has_data(self, state: RunState) -> bool:
        self.source.update(state)
        return self.source.capacities is not None

    def draw(self, state: RunState) -> None:
        self.source.update(state)
        if self._drawn == state.version:
            return
        self._drawn = state.version
        self._grow_reference(state)
        self._redraw()

    def _grow_reference(self, state: RunState) -> None:
        """The reference cycle's choice up to the run's cycles; until the operator picks one, the analysis' (a full
        cell's first after activation) or the first."""
        cycles = [int(c) for c in self.source.capacities.cycle]
        reference = (state.result or {}).get("reference_cycle")
        self.reference.blockSignals(True)
        self.reference.setRange(min(cycles), max(cycles))
        if not self._reference_set:
            self.reference.setValue(reference if reference in cycles else cycles[0])
        self.reference.blockSignals(False)

    def _set_reference(self, _value: int) -> None:
        self._reference_set = True
        self._redraw()

    def _redraw(self, *_: Any) -> None:
        c = self.source.capacities
        if c is None:
            return
        retention = self.mode.currentText() == "retention"
        self.reference.setEnabled(retention)
        ref = self.reference.value()
        self.plot.getAxis("left").setLabel(f"Retention / % of cycle {ref}" if retention else f"Capacity / {c.unit}")
        self.stored.setData(c.cycle, c.stored)
        self.stored.setVisible(not retention)
        self.returned.setData(c.cycle, c.retention(ref) if retention else c.returned)
        self.ce.setData(c.cycle, c.ce_percent)
        self.legend.clear()
        if not retention:
            self.legend.addItem(self.stored, c.names[0])
        self.legend.addItem(self.returned, f"{c.names[1]} retention" if retention else c.names[1])
        self.legend.addItem(self.ce, "CE")
        self.set_summary(*capacity_summary(c, ref))

    def _align_ce(self) -> None:
        self.ce_box.setGeometry(self.plot.getViewBox().sceneBoundingRect())

    def readout_parts(self, plot: pg.PlotItem, scene_pos: QPointF) -> list[str]:
        ce = axis_value(self.plot.getAxis("right"), self.ce_box.mapSceneToView(scene_pos).y())
        return [*super().readout_parts(plot, scene_pos), ce]


def capacity_summary(c: CycleCapacities, reference: int) -> list[str]:
    """The last cycle's returned capacity, its retention and its CE, as parts of a line."""
    done = np.flatnonzero(np.isfinite(c.returned) & (c.returned > 0))
    if not done.size:
        return []
    k = done[-1]
    parts = [f"cycle {c.cycle[k]}: {c.names[1]} {c.returned[k]:.4g} {c.unit}"]
    retention = c.retention(reference)[k]
    if np.isfinite(retention):
        parts.append(f"{retention:.4g} % of cycle {reference}")
    if np.isfinite(c.ce_percent[k]):
        parts.append(f"CE {c.ce_percent[k]:.2f} %")
    return parts


class CurvesPage(Page):
    """Curves of chosen cycles' half-cycles, coloured by cycle (a colour bar ticked at the chosen cycles): by default
    the first, the last and round numbers between; the operator names others ('1, 10-20, last')."""

    def __init__(self, x: str, y: str) -> None:
        super().__init__()
        self.source = CycleSource()
        self.choice = QLineEdit(placeholderText="first, …, last", clearButtonEnabled=True, toolTip=CHOICE_HELP)
        self.add_control(QLabel("Cycles"), self.choice)
        self.scale_bar = colour_bar("Cycle")
        self.plot = self.stack(x, y, self.scale_bar)
        self.curves: dict[int, tuple[int, list[pg.PlotDataItem]]] = {}  # cycle → (its stop row when drawn, items)
        self.chosen: list[int] = []
        self._drawn = -1  # the state version on screen
        self.choice.editingFinished.connect(self._redraw)

    def has_data(self, state: RunState) -> bool:
        self.source.update(state)
        return self.source.cycling and self.source.samples is not None and bool(self.source.rows.cycles)

    def draw(self, state: RunState) -> None:
        self.source.update(state)
        if self._drawn == state.version:
            return
        if self._drawn < 0:
            self.mark_limits(state.metadata)
        self._drawn = state.version
        self._redraw()

    def _redraw(self) -> None:
        source = self.source
        if source.samples is None:
            return
        try:
            chosen = parse_cycle_choice(self.choice.text(), source.rows.cycles)
            self.choice.setStyleSheet("")
            self.choice.setToolTip(CHOICE_HELP)
        except ValueError as e:
            self.choice.setStyleSheet("color: #d62728")
            self.choice.setToolTip(str(e))
            return
        self.label_axes(source.basis)
        for cycle in set(self.curves) - set(chosen):
            for item in self.curves.pop(cycle)[1]:
                self.plot.removeItem(item)
        for cycle in chosen:
            self._draw_cycle(cycle)
        self._colour(chosen)

    def _draw_cycle(self, cycle: int) -> None:
        rows = self.source.rows.rows(cycle)
        drawn = self.curves.get(cycle)
        if drawn and drawn[0] == rows.stop:
            return
        for item in drawn[1] if drawn else []:
            self.plot.removeItem(item)
        items = []
        for curve in half_cycle_curves(self.source.samples, rows, cycle, self.source.basis):
            x, y = self.curve_data(curve)
            if x.size:
                items.append(self.plot.plot(*thinned(x, y), antialias=True))
        self.curves[cycle] = (rows.stop, items)

    def _colour(self, chosen: list[int]) -> None:
        self.chosen = chosen
        if not chosen:
            return
        lo, hi = min(chosen), max(chosen)
        self.scale_bar.setLevels((lo, hi if hi > lo else lo + 1))
        ticks = [(c, str(c)) for c in chosen] if len(chosen) <= TICKED_CYCLES else None
        self.scale_bar.axis.setTicks([ticks] if ticks else None)
        for cycle, colour in zip(chosen, scale_colours(chosen, lo, hi), strict=True):
            for item in self.curves[cycle][1]:
                item.setPen(pg.mkPen(colour, width=1.5))
        self.set_summary(f"cycles {', '.join(map(str, chosen))}", f"{len(self.source.rows.cycles)} in the run")

    def curve_data(self, curve: HalfCycleCurve) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def label_axes(self, basis: Basis) -> None:
        raise NotImplementedError

    def mark_limits(self, metadata: dict[str, Any]) -> None:
        raise NotImplementedError


def thinned(x: np.ndarray, y: np.ndarray, limit: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most about ``limit`` evenly spaced points of a curve, its last one kept."""
    step = max(1, len(x) // limit)
    keep = np.r_[np.arange(0, len(x) - 1, step), len(x) - 1]
    return x[keep], y[keep]


class VoltageCapacityPage(CurvesPage):
    """Voltage against the capacity passed in each half-cycle of the chosen cycles, with the run's voltage limits."""

    title = "V vs capacity"

    def __init__(self) -> None:
        super().__init__("Capacity / mAh/cm²", "Voltage / V")

    def curve_data(self, curve: HalfCycleCurve) -> tuple[np.ndarray, np.ndarray]:
        return curve.capacity, curve.voltage_V

    def label_axes(self, basis: Basis) -> None:
        self.plot.getAxis("bottom").setLabel(f"Capacity / {basis.unit}")

    def mark_limits(self, metadata: dict[str, Any]) -> None:
        draw_limits(self.plot, metadata)


class DQDVPage(CurvesPage):
    """Incremental capacity dQ/dV against voltage of the chosen cycles (charge positive, discharge negative)."""

    title = "dQ/dV"

    def __init__(self) -> None:
        super().__init__("Voltage / V", "dQ/dV / mAh cm⁻² V⁻¹")

    def curve_data(self, curve: HalfCycleCurve) -> tuple[np.ndarray, np.ndarray]:
        return dq_dv(curve)

    def label_axes(self, basis: Basis) -> None:
        self.plot.getAxis("left").setLabel(f"dQ/dV / {PER_VOLT[basis.unit]}")

    def mark_limits(self, metadata: dict[str, Any]) -> None:
        draw_limits(self.plot, metadata, angle=90)


class CyclesPage(Page):
    """A half cell's per-cycle Coulombic efficiency (%) and plating, stripping and nucleation overpotentials (mV)."""

    title = "Cycles"

    def __init__(self) -> None:
        super().__init__()
        legend = side_legend()
        self.ce = self.stack("Cycle", "CE / %", axisItems={"bottom": CycleAxis("bottom")})
        self.overpotential = self.stack("Cycle", "Overpotential / mV", legend, axisItems={"bottom": CycleAxis("bottom")})
        self.ce_curve = self.ce.plot(pen=TRACE, symbol="o", symbolSize=5, symbolBrush="#1f77b4", connect="finite",
                                     antialias=True)
        self.curves = {key: self.overpotential.plot(pen=pg.mkPen(colour, width=1.5), symbol="o", symbolSize=4,
                                                    symbolBrush=colour, connect="finite", antialias=True)
                       for key, _, colour in OVERPOTENTIALS}  # fmt: skip
        for key, name, _ in OVERPOTENTIALS:
            legend.addItem(self.curves[key], name)
        self._rows = 0

    def has_data(self, state: RunState) -> bool:
        """A half cell's table (its rows have overpotentials); a full cell's CE is on the capacity page."""
        return bool(state.cycles) and OVERPOTENTIALS[0][0] in state.cycles[0]

    def draw(self, state: RunState) -> None:
        if len(state.cycles) == self._rows:
            return
        self._rows = len(state.cycles)
        cycle = values_of(state.cycles, "cycle")
        self.ce_curve.setData(cycle, values_of(state.cycles, "ce_percent"))
        for key, curve in self.curves.items():
            curve.setData(cycle, values_of(state.cycles, key))

