"""The run view draws what a run's state holds: from finished simulated runs' folders, and record by record as a live
feed would apply them."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QScrollArea

from labctl.gui.run_plots import FAILURE, LATEST, STEP
from labctl.gui.run_view import RunView
from labctl.live.state import RunState

TABS = ("V, I vs time", "Nyquist", "Bode", "Cycles", "R_tot")


def view_of(qtbot, state: RunState) -> RunView:
    view = RunView(state, refresh_ms=0)
    qtbot.addWidget(view)
    view.resize(1200, 800)
    view.show()
    return view


def shown_tabs(view: RunView) -> list[str]:
    return [view.tabs.tabText(i) for i in range(view.tabs.count()) if view.tabs.isTabVisible(i)]


def lines(plot: pg.PlotItem, pen: pg.QtGui.QPen) -> list[pg.InfiniteLine]:
    return [item for item in plot.items if isinstance(item, pg.InfiniteLine) and item.pen == pen]


def axis_labels(plot: pg.PlotItem) -> tuple[str, str]:
    return plot.getAxis("bottom").labelText, plot.getAxis("left").labelText


def test_ccd_folder_shows_v_and_i_with_step_markers_and_the_failure_annotated(qtbot, sim_runs):
    state = RunState.from_folder(sim_runs["ccd"])
    view = view_of(qtbot, state)
    assert shown_tabs(view) == ["V, I vs time"]  # no spectra, no cycle table: those tabs stay hidden
    page = view.page("V, I vs time")
    voltage, current = page.plots.values()
    assert axis_labels(voltage) == ("Test time / h", "Voltage / V")
    assert axis_labels(current) == ("Test time / h", "Current / mA")
    levels = [m for m in state.markers if m.kind == "step"]
    # density_step=0.25; the short starts at 0.6 and is confirmed in the first minute of the next level
    assert [m.label for m in levels] == ["0.1 mA/cm²", "0.35 mA/cm²", "0.6 mA/cm²", "0.85 mA/cm²"]
    steps = lines(voltage, STEP)
    assert [line.value() for line in steps] == [m.t_s for m in levels]
    assert [line.label.format for line in steps] == [m.label for m in levels]
    (failure, *_) = lines(voltage, FAILURE)
    assert "hard short" in failure.label.format and "0.6 mA/cm²" in failure.label.format
    assert failure.value() == pytest.approx(state.result["failure_time_h"] * 3600, abs=60)
    assert lines(current, STEP) and lines(current, FAILURE)  # the lines cross both plots, the text is on one
    assert "finished" in view.status.text() and state.run_id in view.title.full_text()
    assert view.headline.full_text() == state.result["headline"]
    assert "mA/cm²" in view.values.text() and " h" in view.values.text()


def test_insitu_eis_folder_has_nyquist_bode_and_r_tot(qtbot, sim_runs):
    state = RunState.from_folder(sim_runs["insitu-eis"])
    view = view_of(qtbot, state)
    assert shown_tabs(view) == ["V, I vs time", "Nyquist", "Bode", "R_tot"]
    nyquist = view.page("Nyquist")
    assert len(nyquist.items) == len(state.spectra) > 5
    assert nyquist.plot.getViewBox().state["aspectLocked"]  # equal scales: a semicircle looks round
    assert axis_labels(nyquist.plot) == ("Z′ / Ω", "−Z″ / Ω")
    (latest,) = nyquist.items[-1]
    assert latest.opts["pen"] == LATEST
    x, y = latest.getData()
    assert np.allclose(x, state.spectra[-1].z_real) and np.allclose(y, -state.spectra[-1].z_imag)
    bode = view.page("Bode")
    assert len(bode.items) == len(state.spectra)
    assert axis_labels(bode.magnitude) == ("Frequency / Hz", "|Z| / Ω")
    assert axis_labels(bode.phase) == ("Frequency / Hz", "−Phase / °")
    r_tot = view.page("R_tot")
    assert axis_labels(r_tot.plot) == ("Test time / h", "R_tot / Ω")
    hours, ohms = r_tot.curve.getData()
    assert len(hours) == len(state.r_tot) and ohms[-1] == pytest.approx(state.r_tot[-1][1])


def test_ce_folder_has_the_cycles_tab(qtbot, sim_runs):
    state = RunState.from_folder(sim_runs["ce-cycling"])
    view = view_of(qtbot, state)
    assert "Cycles" in shown_tabs(view) and "Nyquist" not in shown_tabs(view)
    cycles = view.page("Cycles")
    assert axis_labels(cycles.ce) == ("Cycle", "CE / %")
    assert axis_labels(cycles.overpotential) == ("Cycle", "Overpotential / mV")
    n, ce = cycles.ce_curve.getData()
    assert list(n) == [row["cycle"] for row in state.cycles] == [1, 2, 3]
    assert list(ce) == pytest.approx([row["ce_percent"] for row in state.cycles])
    _, plating = cycles.curves["plating_overpotential_mV"].getData()
    assert list(plating) == pytest.approx([row["plating_overpotential_mV"] for row in state.cycles])


def test_a_spectrum_only_run_opens_on_its_nyquist_tab(qtbot, sim_runs):
    view = view_of(qtbot, RunState.from_folder(sim_runs["eis"]))
    assert view.tabs.currentWidget() is view.page("Nyquist")


def test_redraws_only_when_the_state_moved_and_adds_records_as_they_come(qtbot):
    state = RunState(run_id="live-1", procedure="insitu-eis", metadata={"cell": {"area_cm2": 1.12}})
    view = view_of(qtbot, state)
    assert shown_tabs(view) == ["V, I vs time"]
    assert not view.refresh()  # nothing new: nothing redrawn
    for k in range(3):
        state.apply("sample", {"Test Time / s": 10.0 * k, "Voltage / V": 0.01, "Current / A": -2.8e-4,
                               "Step Count / 1": 1})
    state.apply("event", {"kind": "segment_started", "step": 1, "cycle": 1, "current_density_mA_cm2": -0.25})
    state.apply("status", {"test_time_s": 20.0, "voltage_V": 0.01, "current_A": -2.8e-4, "density_mA_cm2": -0.25,
                           "cycle": 1})
    assert view.refresh() and not view.refresh()
    assert [line.value() for line in lines(view.page("V, I vs time").plots["Voltage / V"], STEP)] == [0.0]
    assert "j -0.25 mA/cm²" in view.values.full_text()
    freq = np.logspace(6, 0, 13)
    nyquist = view.page("Nyquist")
    for index in (1, 2):
        z = 30 + 40 / (1 + 1j * freq / 1e4) + index
        state.apply("spectrum", {"index": index, "test_time_s": 600.0 * index, "cycle": 1, "freq_Hz": list(freq),
                                 "z_real_ohm": list(z.real), "z_imag_ohm": list(z.imag)})
        view.refresh()
        assert len(nyquist.items) == index  # spectrum by spectrum
        assert nyquist.items[-1][0].opts["pen"] == LATEST
    assert nyquist.items[0][0].opts["pen"] != LATEST  # the older one is no longer highlighted
    assert shown_tabs(view) == ["V, I vs time", "Nyquist", "Bode"]
    state.apply("event", {"kind": "contact_loss", "t_s": 25.0})
    view.refresh()
    (failure,) = lines(view.page("V, I vs time").plots["Voltage / V"], FAILURE)
    assert failure.value() == 25.0 and failure.label.format == "contact loss"


def test_an_imported_run_shows_its_data_and_no_share_of_a_planned_time(qtbot, tmp_path):
    from pathlib import Path

    from labctl.imports.eclab import read_mpt
    from labctl.imports.store import store_import
    from labctl.store import Store

    fixture = Path(__file__).parents[1] / "imports" / "fixtures" / "eclab" / "v1150_GCPL.mpt"
    stored = store_import(Store(tmp_path), read_mpt(fixture), cell_id="v1150", area_cm2=1.0)
    view = view_of(qtbot, RunState.from_folder(stored.folder))
    assert view.state.status == "imported" and shown_tabs(view)[0] == "V, I vs time"
    assert not view.progress.isVisible() and "imported" in view.status.text()


def test_a_long_headline_stays_on_one_line_and_the_plots_keep_their_room_in_a_small_tile(qtbot, sim_runs):
    # a tile of four on 1600 × 1000, in a scroll area as the window's tiles are: the headline used to wrap, and a
    # scroll area takes a wrapping label's height-for-width to mean every plot's preferred height, and scrolls
    state = RunState.from_folder(sim_runs["ccd"])
    view = RunView(state, refresh_ms=0)
    scroll = QScrollArea(widgetResizable=True)
    scroll.setWidget(view)
    qtbot.addWidget(scroll)
    scroll.resize(580, 325)
    scroll.show()
    qtbot.waitExposed(scroll)
    assert view.height() <= scroll.viewport().height() and not scroll.verticalScrollBar().isVisible()
    headline = view.headline
    assert headline.elided() and headline.text().endswith("…") and len(headline.text()) < len(headline.full_text())
    assert headline.toolTip().startswith(state.result["headline"])
    one_line = headline.height()
    qtbot.mouseClick(headline, Qt.MouseButton.LeftButton)  # opens to the whole text, wrapped
    qtbot.waitUntil(lambda: headline.height() >= 3 * headline.fontMetrics().height())  # three lines at this width
    assert headline.text() == state.result["headline"]
    qtbot.mouseClick(headline, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: headline.height() == one_line)
    for label in (view.title, view.values):
        assert not label.elided(), label.full_text()
    text = view.progress.text()
    assert text == f"{round(state.progress)} % of planned time"
    assert view.progress.fontMetrics().horizontalAdvance(text) < view.progress.contentsRect().width()


def test_the_channel_is_in_the_title_and_the_caption(qtbot, sim_runs):
    view = view_of(qtbot, RunState.from_folder(sim_runs["ccd"]))
    run_id = sim_runs["ccd"].name
    assert view.title.full_text() == f"{run_id} · ccd · cell cell-1 · channel 1"
    assert view.caption() == f"ch 1 · ccd · cell-1 · {run_id}"
    eis = view_of(qtbot, RunState.from_folder(sim_runs["eis"]))  # its bench has a cycler it does not use
    assert "channel" not in eis.title.full_text() and not eis.caption().startswith("ch ")


def test_the_caption_follows_a_live_state_and_its_channel(qtbot, sim_runs):
    state = RunState(run_id="live-1", procedure="ccd")
    view = view_of(qtbot, state)
    assert view.caption() == "ccd · live-1"
    with qtbot.waitSignal(view.caption_changed) as changed:
        state.metadata = {"cell": {"id": "LLZTO-3", "area_cm2": 0.5}, "instruments": {"cycler": {"channel": "3"}},
                          "bench": {"config": {"roles": {"cycler": {"channel": 3}}}}}  # fmt: skip
        state.version += 1
        view.refresh()
    assert changed.args == ["ch 3 · ccd · LLZTO-3 · live-1"]


def test_an_ended_view_has_a_close_button(qtbot, sim_runs):
    live = view_of(qtbot, RunState(run_id="live-1", procedure="ccd"))
    assert not live.close_button.isVisible()  # a running run's view closes from its window
    view = view_of(qtbot, RunState.from_folder(sim_runs["ce-cycling"]))
    assert view.close_button.isVisible()
    with qtbot.waitSignal(view.close_requested):
        qtbot.mouseClick(view.close_button, Qt.MouseButton.LeftButton)


def test_the_density_shown_is_the_measured_current_s_not_the_set_point_s(qtbot):
    # a run's status record carries its segment's set point; during a spectrum or after an abort no current flows
    state = RunState(run_id="live-1", procedure="insitu-eis", metadata={"cell": {"id": "c", "area_cm2": 0.5}})
    view = view_of(qtbot, state)
    state.apply("status", {"test_time_s": 60.0, "voltage_V": 0.01, "current_A": 0.0, "density_mA_cm2": 0.25, "cycle": 1})
    view.refresh()
    assert "I +0 mA" in view.values.full_text() and "j +0 mA/cm²" in view.values.full_text()
    state.apply("status", {"test_time_s": 70.0, "voltage_V": 0.01, "current_A": 1e-4, "density_mA_cm2": 0.25, "cycle": 1})
    view.refresh()
    assert "j +0.2 mA/cm²" in view.values.full_text()  # 0.1 mA on 0.5 cm²
    state.metadata = {}
    state.apply("status", {"test_time_s": 80.0, "current_A": 0.0, "density_mA_cm2": 0.25})
    view.refresh()
    assert "mA/cm²" not in view.values.full_text()  # without the area there is no measured density to show
