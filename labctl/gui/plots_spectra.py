"""Impedance spectra of a run: Nyquist and Bode pages.

Every spectrum is drawn, coloured on a scale of its test time or its cycle (a colour bar beside the plot says which);
a spin box and a slider step through them, the chosen one highlighted with its points and, when the run fitted it,
the fitted circuit's curve dashed over it. The chosen spectrum follows the latest until the operator picks another.
With many spectra, every N-th is shown (N chosen so that about :data:`SHOWN` are, until the operator sets it).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QPointF, Qt
from PyQt6.QtWidgets import QComboBox, QLabel, QSlider, QSpinBox

from labctl.analysis.circuits import parse_circuit
from labctl.bdf_columns import FREQUENCY
from labctl.gui.plots_base import (
    FIT,
    LATEST,
    LogAxis,
    Page,
    colour_bar,
    format_frequency,
    frequency_axis,
    scale_colours,
)
from labctl.live.state import RunState, Spectrum
from labctl.units import SECONDS_PER_HOUR

SHOWN = 30  # spectra drawn at once by default; more become a tangle
FIT_POINTS_PER_DECADE = 20
COLOUR_BY = {"time": "Test time / h", "cycle": "Cycle"}


def colour_value(spectrum: Spectrum, by: str) -> float:
    return spectrum.test_time_s / SECONDS_PER_HOUR if by == "time" else float(spectrum.cycle)


def fitted_curve(fit: dict[str, Any], freq: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Frequencies spanning ``freq`` densely and the fitted circuit's impedance there; None if the fit cannot be
    evaluated (a circuit or parameter this version does not know)."""
    try:
        circuit = parse_circuit(fit["circuit"])
        parameters = [float(fit["parameters"][key]) for key in circuit.keys]
    except (KeyError, TypeError, ValueError):
        return None
    lo, hi = np.log10(np.min(freq)), np.log10(np.max(freq))
    dense = np.logspace(lo, hi, max(2, math.ceil((hi - lo) * FIT_POINTS_PER_DECADE) + 1))
    return dense, circuit.impedance(dense, parameters)


class SpectraPage(Page):
    """Pages that draw every spectrum (``items``: per spectrum, its items on this page's plots), coloured by time or
    cycle, with one chosen to step through."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[list[pg.PlotDataItem]] = []
        self.fits: dict[int, dict[str, Any]] = {}  # spectrum index → the run's fit of it
        self.fit_items: list[tuple[pg.PlotItem, pg.PlotDataItem]] = []
        self._events = 0
        self._spectra: list[Spectrum] = []
        self._follow = True  # the chosen spectrum is the latest
        self._every_set = False  # the operator set every-N
        self.colour_by = QComboBox()
        self.colour_by.addItems(list(COLOUR_BY))
        self.colour_by.setToolTip("Colour the spectra by their test time or their cycle")
        self.slider = QSlider(Qt.Orientation.Horizontal, minimum=1, maximum=1)
        self.slider.setMinimumWidth(60)
        self.chosen = QSpinBox(minimum=1, maximum=1, prefix="#", toolTip="The spectrum drawn highlighted, with its fit")
        self.every = QSpinBox(minimum=1, maximum=1, prefix="every ", toolTip="Show every N-th spectrum")
        self.slider.setToolTip("Step through the spectra")
        self.add_control(QLabel("Colour by"), self.colour_by, self.slider, self.chosen, self.every)
        self.colour_by.currentTextChanged.connect(self._recolour)
        self.slider.valueChanged.connect(self.chosen.setValue)
        self.chosen.valueChanged.connect(self._choose)
        self.every.valueChanged.connect(self._set_every)

    def has_data(self, state: RunState) -> bool:
        return bool(state.spectra)

    def draw(self, state: RunState) -> None:
        fitted = self._read_fits(state)
        new = state.spectra[len(self.items) :]
        for spectrum in new:
            self.items.append(self.add_spectrum(spectrum))
        if new:
            self._spectra = list(state.spectra)
            self._grow()
        if new or fitted:
            self._recolour()

    def _grow(self) -> None:
        """Controls up to the number of spectra; the chosen one still the latest if it was."""
        n = len(self.items)
        every = self.every.value() if self._every_set else max(1, math.ceil(n / SHOWN))
        chosen = n if self._follow else self.chosen.value()
        for control, value in ((self.slider, chosen), (self.chosen, chosen), (self.every, every)):
            control.blockSignals(True)
            control.setMaximum(n)
            control.setValue(value)
            control.blockSignals(False)

    def _read_fits(self, state: RunState) -> bool:
        """Take the fits the run reported since the last draw (per spectrum in its ``spectrum`` events, or the one
        spectrum's in the result); True if there were any."""
        before = len(self.fits)
        for event in state.events[self._events :]:
            if event.get("kind") == "spectrum" and isinstance(event.get("fit"), dict) and "index" in event:
                self.fits[int(event["index"])] = event["fit"]
        self._events = len(state.events)
        fit = (state.result or {}).get("fit")
        if isinstance(fit, dict) and len(state.spectra) == 1:
            self.fits.setdefault(state.spectra[0].index, fit)
        return len(self.fits) != before

    def shown(self) -> list[int]:
        """Positions of the spectra on show: every N-th from the first, the last and the chosen one."""
        n, every, chosen = len(self.items), self.every.value(), self.chosen.value() - 1
        return sorted({*range(0, n, every), n - 1, chosen} & set(range(n)))

    def _choose(self, value: int) -> None:
        self._follow = value == len(self.items)
        self.slider.blockSignals(True)
        self.slider.setValue(value)
        self.slider.blockSignals(False)
        self._recolour()

    def _set_every(self, _value: int) -> None:
        self._every_set = True
        self._recolour()

    def _recolour(self) -> None:
        if not self.items:
            return
        by = self.colour_by.currentText()
        values = [colour_value(s, by) for s in self._spectra]
        lo, hi = min(values), max(values)
        self.scale_bar.setLevels((lo, hi if hi > lo else lo + 1))
        self.scale_bar.axis.setLabel(COLOUR_BY[by])
        shown, chosen = set(self.shown()), self.chosen.value() - 1
        for k, (items, colour) in enumerate(zip(self.items, scale_colours(values, lo, hi), strict=True)):
            for item in items:
                item.setVisible(k in shown)
                if k == chosen:
                    item.setPen(LATEST)
                    item.setSymbol("o")
                    item.setSymbolSize(5)
                    item.setSymbolBrush("#d62728")
                    item.setSymbolPen(None)
                    item.setZValue(2)
                else:
                    item.setPen(pg.mkPen(colour, width=1))
                    item.setSymbol(None)
                    item.setZValue(0)
        self._draw_fit(self._spectra[chosen])
        self._describe(self._spectra[chosen])

    def _draw_fit(self, spectrum: Spectrum) -> None:
        for plot, item in self.fit_items:
            plot.removeItem(item)
        fit = self.fits.get(spectrum.index)
        curve = fitted_curve(fit, spectrum.freq) if fit else None
        self.fit_items = self.add_fit(*curve) if curve else []
        for _, item in self.fit_items:
            item.setZValue(3)

    def _describe(self, spectrum: Spectrum) -> None:
        fit = self.fits.get(spectrum.index)
        self.set_summary(f"spectrum {spectrum.index}", f"{spectrum.test_time_s / SECONDS_PER_HOUR:.3g} h",
                         f"cycle {spectrum.cycle}", f"{format_frequency(float(np.max(spectrum.freq)))} – "
                         f"{format_frequency(float(np.min(spectrum.freq)))}",
                         *([f"fit {fit.get('circuit', '')} dashed"] if fit else []))

    def add_spectrum(self, spectrum: Spectrum) -> list[pg.PlotDataItem]:
        raise NotImplementedError

    def add_fit(self, freq: np.ndarray, z: np.ndarray) -> list[tuple[pg.PlotItem, pg.PlotDataItem]]:
        raise NotImplementedError

    def chosen_spectrum(self) -> Spectrum:
        return self._spectra[self.chosen.value() - 1]


class NyquistPage(SpectraPage):
    """Z' against −Z'' in Ω, equal scales on both axes (a semicircle looks round); the read-out names the frequency
    of the chosen spectrum's point nearest the mouse."""

    title = "Nyquist"

    def __init__(self) -> None:
        super().__init__()
        self.scale_bar = colour_bar(COLOUR_BY["time"])
        self.plot = self.stack("Z′ / Ω", "−Z″ / Ω", self.scale_bar)
        self.plot.setAspectLocked(True)

    def add_spectrum(self, spectrum: Spectrum) -> list[pg.PlotDataItem]:
        return [self.plot.plot(spectrum.z_real, -spectrum.z_imag, antialias=True)]

    def add_fit(self, freq: np.ndarray, z: np.ndarray) -> list[tuple[pg.PlotItem, pg.PlotDataItem]]:
        return [(self.plot, self.plot.plot(z.real, -z.imag, pen=FIT, antialias=True))]

    def readout_parts(self, plot: pg.PlotItem, scene_pos: QPointF) -> list[str]:
        parts = super().readout_parts(plot, scene_pos)
        if not self.items:
            return parts
        spectrum = self.chosen_spectrum()
        point = plot.getViewBox().mapSceneToView(scene_pos)
        k = int(np.argmin(np.hypot(spectrum.z_real - point.x(), -spectrum.z_imag - point.y())))
        return [*parts, f"nearest point {format_frequency(float(spectrum.freq[k]))}"]


class BodePage(SpectraPage):
    """|Z| in Ω (log) and −phase in degrees against frequency (log, labelled at decades with SI prefixes)."""

    title = "Bode"

    def __init__(self) -> None:
        super().__init__()
        self.magnitude = self.stack(FREQUENCY, "|Z| / Ω", axisItems={"bottom": frequency_axis(),
                                                                       "left": LogAxis("left")})
        self.phase = self.stack(FREQUENCY, "−Phase / °", axisItems={"bottom": frequency_axis()})
        self.magnitude.setLogMode(x=True, y=True)
        self.phase.setLogMode(x=True, y=False)
        self.scale_bar = colour_bar(COLOUR_BY["time"])
        self.add_side(self.scale_bar, 0, rowspan=2)

    def add_spectrum(self, spectrum: Spectrum) -> list[pg.PlotDataItem]:
        z = spectrum.z_real + 1j * spectrum.z_imag
        return [self.magnitude.plot(spectrum.freq, np.abs(z), antialias=True),
                self.phase.plot(spectrum.freq, -np.degrees(np.angle(z)), antialias=True)]

    def add_fit(self, freq: np.ndarray, z: np.ndarray) -> list[tuple[pg.PlotItem, pg.PlotDataItem]]:
        return [(self.magnitude, self.magnitude.plot(freq, np.abs(z), pen=FIT, antialias=True)),
                (self.phase, self.phase.plot(freq, -np.degrees(np.angle(z)), pen=FIT, antialias=True))]
