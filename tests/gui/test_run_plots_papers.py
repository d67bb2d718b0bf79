"""The plots papers read, in a run's view: capacity and CE per cycle with retention, voltage against capacity, dQ/dV,
Nyquist with a colour scale, stepping and the fit, cursor read-outs, safety limits, frequencies with SI prefixes,
the compare window; checked against numbers computed here from the runs' stored files, and at the size of a run
view tiled four to a 1600 × 1000 screen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyqtgraph as pg
import pytest
from PyQt6.QtCore import QPointF
from PyQt6.QtWidgets import QApplication, QScrollArea
from typer.testing import CliRunner

from labctl.analysis.ce_results import headline
from labctl.analysis.circuits import parse_circuit
from labctl.bdf_columns import CHARGE_CAPACITY, CYCLE, DISCHARGE_CAPACITY
from labctl.cli import app
from labctl.gui.compare import CompareWindow
from labctl.gui.plots_base import LATEST, LIMIT, ROW_PX, format_frequency, scale_colours
from labctl.gui.run_view import RunView
from labctl.live.state import RunState

TIME = "V, I vs time"
TILE = (580, 325)  # a run view's tile, four of them in the main window's run area on a 1600 × 1000 screen
MIN_PLOT_PX = 120
MASS_MG = 5.655


@pytest.fixture(scope="module")
def fullcell(tmp_path_factory) -> Path:
    """A finished full cell run: one activation cycle, three cycles, the cathode mass known, voltage limits set."""
    root = tmp_path_factory.mktemp("fullcell-store")
    result = CliRunner().invoke(app, ["run", "fullcell", "-p", f"cathode_mass={MASS_MG}", "-p", "cycles=3", "-p",
                                      "activation_cycles=1", "--limit", "voltage_max_V=4.4", "--limit",
                                      "voltage_min_V=0.5", "--bench", "sim", "--store", str(root)])  # fmt: skip
    assert result.exit_code == 0, result.output
    return next((root / "runs").iterdir())


@pytest.fixture(scope="module")
def runs(sim_runs, fullcell) -> dict[str, Path]:
    return {**sim_runs, "fullcell": fullcell}


def view_of(qtbot, folder: Path, size: tuple[int, int] = (1200, 800)) -> RunView:
    view = RunView(RunState.from_folder(folder), refresh_ms=0)
    qtbot.addWidget(view)
    view.resize(*size)
    view.show()
    qtbot.waitExposed(view)
    return view


def shown(view: RunView, title: str):
    """The page ``title`` of ``view``, brought forward and laid out."""
    page = view.page(title)
    view.tabs.setCurrentWidget(page)
    QApplication.processEvents()
    return page


def stored_capacities_Ah(folder: Path) -> pd.DataFrame:
    """Per Cycle Count: what the charge and discharge counters of the stored rows rose by over the cycle."""
    rows = pd.read_csv(folder / "timeseries.bdf.csv")
    ends = rows.groupby(CYCLE)[[CHARGE_CAPACITY, DISCHARGE_CAPACITY]].last()
    return ends.diff().fillna(ends)  # the counters start at zero with the test


def tabs(view: RunView) -> list[str]:
    return [view.tabs.tabText(i) for i in range(view.tabs.count()) if view.tabs.isTabVisible(i)]


def test_each_page_shows_for_the_runs_it_is_for(qtbot, runs):
    expected = {"ccd": [TIME], "insitu-eis": [TIME, "Nyquist", "Bode", "R_tot"], "eis": [TIME, "Nyquist", "Bode"],
                "ce-cycling": [TIME, "Capacity", "V vs capacity", "dQ/dV", "Cycles"],
                "fullcell": [TIME, "Capacity", "V vs capacity", "dQ/dV"]}  # fmt: skip
    assert {name: tabs(view_of(qtbot, folder)) for name, folder in runs.items()} == expected


def test_capacity_and_ce_per_cycle_are_the_stored_rows(qtbot, runs):
    # a half cell plates (the discharge counter) and strips (the charge counter); a full cell in mAh/g of cathode
    for name, stored, returned, per in (("ce-cycling", DISCHARGE_CAPACITY, CHARGE_CAPACITY, "cm²"),
                                        ("fullcell", CHARGE_CAPACITY, DISCHARGE_CAPACITY, "g")):  # fmt: skip
        view = view_of(qtbot, runs[name])
        page = shown(view, "Capacity")
        expected = stored_capacities_Ah(runs[name])
        scale = 1e6 / MASS_MG if per == "g" else 1000 / view.state.metadata["cell"]["area_cm2"]
        cycles, q_in = page.stored.getData()
        assert list(cycles) == list(expected.index)
        assert q_in == pytest.approx(expected[stored] * scale, rel=2e-3)
        assert page.returned.getData()[1] == pytest.approx(expected[returned] * scale, rel=2e-3)
        assert page.ce.getData()[1] == pytest.approx(100 * expected[returned] / expected[stored], rel=2e-3)
        axes = page.plot.getAxis("bottom"), page.plot.getAxis("left"), page.plot.getAxis("right")
        assert [a.labelText for a in axes] == ["Cycle", f"Capacity / mAh/{per}", "CE / %"]
        assert [label.text for _, label in page.legend.items][-1] == "CE"


def test_retention_is_against_the_reference_cycle(qtbot, runs):
    view = view_of(qtbot, runs["fullcell"])
    page = shown(view, "Capacity")
    discharge = stored_capacities_Ah(runs["fullcell"])[DISCHARGE_CAPACITY].to_numpy()
    assert page.reference.value() == view.state.result["reference_cycle"] == 2  # the first after activation
    page.mode.setCurrentText("retention")
    assert not page.stored.isVisible() and page.plot.getAxis("left").labelText == "Retention / % of cycle 2"
    assert page.returned.getData()[1] == pytest.approx(100 * discharge / discharge[1], rel=1e-3)
    assert page.returned.getData()[1][-1] == pytest.approx(view.state.result["retention_percent"], rel=1e-3)
    page.reference.setValue(3)
    assert page.returned.getData()[1] == pytest.approx(100 * discharge / discharge[2], rel=1e-3)
    assert any("% of cycle 3" in part for part in page.summary)


def test_v_against_capacity_of_chosen_cycles_coloured_by_cycle(qtbot, runs):
    view = view_of(qtbot, runs["ce-cycling"])
    page = shown(view, "V vs capacity")
    expected = stored_capacities_Ah(runs["ce-cycling"]) * 1000 / view.state.metadata["cell"]["area_cm2"]
    assert page.chosen == [1, 2, 3] and sorted(page.curves) == [1, 2, 3]
    plating, stripping = page.curves[2][1]
    assert plating.getData()[0][-1] == pytest.approx(expected[DISCHARGE_CAPACITY][2], rel=1e-3)
    assert stripping.getData()[0][-1] == pytest.approx(expected[CHARGE_CAPACITY][2], rel=1e-3)
    assert np.all(plating.getData()[1] < 0) and np.all(stripping.getData()[1] > 0)  # plating below 0 V on Cu
    page.choice.setText("1, last")
    page.choice.editingFinished.emit()
    assert page.chosen == [1, 3] and sorted(page.curves) == [1, 3]
    colours = [page.curves[c][1][0].opts["pen"].color().name() for c in (1, 3)]
    assert colours == [c.name() for c in scale_colours([1, 3], 1, 3)]
    assert tuple(page.scale_bar.levels()) == (1, 3) and page.scale_bar.axis.labelText == "Cycle"
    page.choice.setText("first")
    page.choice.editingFinished.emit()
    assert page.chosen == [1, 3] and "d62728" in page.choice.styleSheet()  # refused, in red; the plot stays
    assert [page.plot.getAxis(s).labelText for s in ("bottom", "left")] == ["Capacity / mAh/cm²", "Voltage / V"]


def test_dq_dv_of_a_full_cell_and_the_safety_limits_on_its_voltage_plots(qtbot, runs):
    view = view_of(qtbot, runs["fullcell"])
    dqdv = shown(view, "dQ/dV")
    assert dqdv.plot.getAxis("left").labelText == "dQ/dV / mAh g⁻¹ V⁻¹"
    charge, discharge = dqdv.curves[dqdv.chosen[-1]][1]
    assert charge.getData()[1].max() > 0 >= charge.getData()[1].min() - 1e-9  # charge up, discharge down
    assert discharge.getData()[1].min() < 0 <= discharge.getData()[1].max() + 1e-9
    volts, per_volt = charge.getData()
    assert np.sum(per_volt) * (volts[1] - volts[0]) == pytest.approx(
        view.page("V vs capacity").curves[dqdv.chosen[-1]][1][0].getData()[0][-1], rel=0.02)
    for page, plot, angle in ((view.page(TIME), view.page(TIME).plots["Voltage / V"], 0),
                              (view.page("V vs capacity"), view.page("V vs capacity").plot, 0),
                              (dqdv, dqdv.plot, 90)):  # fmt: skip
        shown(view, page.title)
        limits = [item for item in plot.items if isinstance(item, pg.InfiniteLine)
                  and (item.pen.color(), item.pen.style()) == (LIMIT.color(), LIMIT.style())]
        assert sorted((line.value(), line.angle) for line in limits) == [(0.5, angle), (4.4, angle)]
        assert "V max 4.4 V" in [line.label.format for line in limits]


def spectrum_colours(page) -> list[str]:
    return [items[0].opts["pen"].color().name() for items in page.items]


def test_nyquist_colour_scale_stepping_every_nth_and_the_fit(qtbot, runs):
    view = view_of(qtbot, runs["insitu-eis"])
    page = shown(view, "Nyquist")
    spectra = view.state.spectra
    hours = [s.test_time_s / 3600 for s in spectra]
    assert tuple(page.scale_bar.levels()) == pytest.approx((min(hours), max(hours)))
    assert page.scale_bar.axis.labelText == "Test time / h"
    assert page.items[-1][0].opts["pen"] == LATEST  # the latest is chosen, the others on the scale
    assert spectrum_colours(page)[:-1] == [c.name() for c in scale_colours(hours, min(hours), max(hours))][:-1]
    page.colour_by.setCurrentText("cycle")
    cycles = [s.cycle for s in spectra]
    assert page.scale_bar.axis.labelText == "Cycle" and tuple(page.scale_bar.levels()) == (0, 1)
    assert spectrum_colours(page)[:-1] == [c.name() for c in scale_colours(cycles, 0, 1)][:-1]
    page.chosen.setValue(3)
    assert page.items[2][0].opts["pen"] == LATEST and page.items[-1][0].opts["pen"] != LATEST
    assert page.slider.value() == 3 and page.summary[0] == f"spectrum {spectra[2].index}"
    page.every.setValue(4)
    assert [k for k, items in enumerate(page.items) if items[0].isVisible()] == [0, 2, 4, 8, len(spectra) - 1]
    fit = page.fits[spectra[2].index]
    ((nyquist_plot, fitted),) = page.fit_items
    assert nyquist_plot is page.plot
    circuit = parse_circuit(fit["circuit"])
    parameters = [fit["parameters"][k] for k in circuit.keys]
    x, y = fitted.getData()
    dense = np.logspace(np.log10(spectra[2].freq.min()), np.log10(spectra[2].freq.max()), len(x))
    z = circuit.impedance(dense, parameters)
    assert x == pytest.approx(z.real) and y == pytest.approx(-z.imag)
    data = spectra[2].z_real + 1j * spectra[2].z_imag
    assert np.abs(circuit.impedance(spectra[2].freq, parameters) - data).max() < 0.02 * np.abs(data).max()


def test_the_chosen_spectrum_follows_the_latest_until_another_is_chosen(qtbot):
    state = RunState(run_id="live-1", procedure="insitu-eis")
    view = RunView(state, refresh_ms=0)
    qtbot.addWidget(view)
    freq = np.logspace(6, 0, 13)
    page = view.page("Nyquist")

    def spectrum(index: int) -> None:
        z = 30 + 40 / (1 + 1j * freq / 1e4) + index
        state.apply("spectrum", {"index": index, "test_time_s": 600.0 * index, "cycle": 1, "freq_Hz": list(freq),
                                 "z_real_ohm": list(z.real), "z_imag_ohm": list(z.imag)})
        view.refresh()

    for index in (1, 2, 3):
        spectrum(index)
        assert page.chosen.value() == index and page.items[-1][0].opts["pen"] == LATEST
    page.chosen.setValue(1)
    spectrum(4)
    assert page.chosen.value() == 1 and page.chosen.maximum() == 4 and page.items[0][0].opts["pen"] == LATEST
    assert not page.fit_items  # no fit reported, none drawn


def test_frequencies_with_si_prefixes_and_bode_axes_labelled_at_decades(qtbot, runs):
    assert [format_frequency(f) for f in (2e6, 1e5, 10, 0.1, 999.96, 1584.89, 0.0316)] == [
        "2 MHz", "100 kHz", "10 Hz", "100 mHz", "1 kHz", "1.58 kHz", "31.6 mHz"]
    view = view_of(qtbot, runs["insitu-eis"])
    bode = shown(view, "Bode")
    frequency = bode.phase.getAxis("bottom")
    (_, decades), (_, minor) = frequency.tickValues(-1.2, 6.3, 500)
    assert decades == [-1, 0, 1, 2, 3, 4, 5, 6] and len(minor) == 8 * 7 + 3  # 2…9 of each decade in view
    assert frequency.tickStrings(decades, 1, 1) == ["100 mHz", "1 Hz", "10 Hz", "100 Hz", "1 kHz", "10 kHz",
                                                    "100 kHz", "1 MHz"]  # fmt: skip
    assert set(frequency.tickStrings(minor, 1, 1)) == {""}
    magnitude = bode.magnitude.getAxis("left")
    (_, labelled), _ = magnitude.tickValues(1, 4, 300)
    assert magnitude.tickStrings(labelled, 1, 1) == ["10", "100", "1000", "10⁴"]
    (_, labelled), _ = magnitude.tickValues(np.log10(35), np.log10(81), 300)  # less than a decade of |Z|
    assert magnitude.tickStrings(labelled, 1, 1) == ["40", "50", "60", "70", "80"]


def mouse_at(page, plot: pg.PlotItem, x: float, y: float) -> list[str]:
    page._moved(plot.getViewBox().mapViewToScene(QPointF(x, y)))
    return page.readout.parts


def test_cursor_read_outs_give_values_in_the_axes_units(qtbot, runs):
    views = [view_of(qtbot, runs[name]) for name in ("ccd", "insitu-eis", "fullcell")]
    time = shown(views[0], TIME)
    assert mouse_at(time, time.plots["Voltage / V"], 5400.0, 0.0125) == ["Test time = 1.5 h", "Voltage = 0.0125 V"]
    assert mouse_at(time, time.plots["Current / A"], 3600.0, 2e-4) == ["Test time = 1 h", "Current = 0.2 mA"]
    nyquist = shown(views[1], "Nyquist")
    spectrum = nyquist.chosen_spectrum()
    k = len(spectrum.freq) // 2
    parts = mouse_at(nyquist, nyquist.plot, spectrum.z_real[k], -spectrum.z_imag[k])
    assert parts[0].startswith("Z′ = ") and parts[0].endswith(" Ω") and parts[1].startswith("−Z″ = ")
    assert parts[2] == f"nearest point {format_frequency(spectrum.freq[k])}"
    capacity = shown(views[2], "Capacity")
    parts = mouse_at(capacity, capacity.plot, 2.0, 150.0)
    assert parts[:2] == ["Cycle = 2", "Capacity = 150 mAh/g"] and parts[2].startswith("CE = ") and "%" in parts[2]
    label = capacity.readout
    assert label.fontMetrics().horizontalAdvance(label.text()) <= label.contentsRect().width()


def test_a_ce_short_is_marked_with_the_word_of_its_headline():
    short = {"kind": "hard_short", "t_s": 208553.0, "cycle": 30, "step": 59, "detail": "|V| fell", "ends_test": True,
             "criterion": "collapse", "row": None}
    state = RunState()
    state.apply("event", short)
    (marker,) = state.markers
    assert marker.label == "short (collapse) at cycle 30" and marker.kind == "failure"
    assert headline({"protocol": "cycling", "short": short, "cycles": []}).startswith("Short at cycle 30 (collapse")


def plot_heights(page) -> list[int]:
    return [round(plot.getViewBox().height()) for plot in page.plot_items()]


def test_every_page_keeps_its_plots_readable_in_a_tile_of_four(qtbot, runs):
    for name, folder in runs.items():
        view = RunView(RunState.from_folder(folder), refresh_ms=0)
        scroll = QScrollArea(widgetResizable=True)
        scroll.setWidget(view)
        qtbot.addWidget(scroll)
        scroll.resize(*TILE)
        scroll.show()
        qtbot.waitExposed(scroll)
        for title, page in view.pages_with_data().items():
            view.tabs.setCurrentWidget(page)
            qtbot.waitUntil(lambda page=page: page.graphics.height() > 0)
            qtbot.wait(20)
            heights = plot_heights(page)
            assert heights and min(heights) >= MIN_PLOT_PX, f"{name} {title}: {heights} px"
            assert not scroll.verticalScrollBar().isVisible(), f"{name} {title} scrolls"
            for legend in page.findChildren(pg.GraphicsView)[0].items():
                if isinstance(legend, pg.LegendItem) and legend.isVisible():
                    width = legend.boundingRect().width()
                    assert all(label.boundingRect().width() < width for _, label in legend.items), f"{name} {title}"


def test_a_tall_page_stacks_its_plots_and_a_low_one_shows_the_chosen_one(qtbot, runs):
    view = view_of(qtbot, runs["ccd"], (1200, 800))
    page = shown(view, TIME)
    qtbot.waitUntil(lambda: page.graphics.height() >= 2 * ROW_PX)
    assert len(plot_heights(page)) == 2 and not page.row_choice.isVisible()
    view.resize(*TILE)
    qtbot.waitUntil(lambda: page.row_choice.isVisible())
    assert [page.row_choice.itemText(i) for i in range(2)] == ["Voltage", "Current"]
    assert page.plot_items() == [page.plots["Voltage / V"]]
    page.row_choice.setCurrentIndex(1)
    (current,) = page.plot_items()
    assert current is page.plots["Current / A"] and current.getAxis("bottom").style["showValues"]
    x0, x1 = current.getViewBox().viewRange()[0]  # the plot on show still ranges over the whole run
    assert x0 <= view.state.samples.x[0] and x1 >= view.state.samples.x[-1]
    eis = view_of(qtbot, runs["insitu-eis"], TILE)
    bode = shown(eis, "Bode")
    qtbot.waitUntil(lambda: bode.row_choice.isVisible())
    assert bode.plot_items() == [bode.magnitude]  # |Z|, which followed the phase plot's x range when stacked
    freq = eis.state.spectra[-1].freq
    x0, x1 = bode.magnitude.getViewBox().viewRange()[0]
    assert x0 <= np.log10(freq.min()) and x1 >= np.log10(freq.max())


def test_compare_window_overlays_the_chosen_runs(qtbot, runs):
    states = [RunState.from_folder(runs[name]) for name in ("ce-cycling", "fullcell", "insitu-eis")]
    window = CompareWindow(states)
    qtbot.addWidget(window)
    window.show()
    modes = [window.mode.itemText(i) for i in range(window.mode.count())]
    assert modes == ["V vs time", "capacity vs cycle", "retention vs cycle", "CE vs cycle", "Nyquist"]
    assert len(window.curves) == 3  # V vs time: every run
    window.mode.setCurrentText("capacity vs cycle")
    left = window.plot.getAxis("left").labelText
    assert left == "Stripping, discharge capacity / mAh/cm²"  # a half cell and a full cell: per area, both
    curves = [item for item in window.plot.listDataItems()]
    assert len(curves) == 2
    full = states[1].result["cycles"]
    assert curves[1].getData()[1] == pytest.approx([row["discharge_mAh_cm2"] for row in full])
    assert [label.text for _, label in window.legend.items] == [
        f"cell-1 Mg-Cu ({states[0].run_id[-4:]})", f"cell-1 NMC|Mg/W-Cu ({states[1].run_id[-4:]})"]
    window.mode.setCurrentText("retention vs cycle")
    assert window.plot.listDataItems()[1].getData()[1][1] == pytest.approx(100.0)  # cycle 2: its reference
    window.mode.setCurrentText("Nyquist")
    (spectrum,) = window.plot.listDataItems()
    assert spectrum.getData()[0] == pytest.approx(states[2].spectra[-1].z_real)
    window.spectrum.setCurrentText("first")
    assert window.plot.listDataItems()[0].getData()[0] == pytest.approx(states[2].spectra[0].z_real)
