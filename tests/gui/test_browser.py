"""The run browser lists the registry's runs, opens one as a RunState, re-runs its analysis as `labctl analyze` does,
and exports files other programs read back."""

from __future__ import annotations

import bdf
import numpy as np
import pandas as pd
import pytest
from PyQt6.QtGui import QColor, QImage
from PyQt6.QtWidgets import QFileDialog

from labctl.analysis.zview import read_z
from labctl.gui import export as export_module
from labctl.gui.browser import RunBrowser
from labctl.gui.export import PNG_SIZE
from labctl.live.state import RunState
from labctl.store.folder import RESULTS, SPECTRA, TIMESERIES, read_json


@pytest.fixture
def browser(qtbot, sim_store):
    widget = RunBrowser(sim_store, poll_ms=0)
    qtbot.addWidget(widget)
    return widget


def test_lists_every_run_and_filters_them(browser, sim_runs):
    assert sorted(browser.visible_ids()) == sorted(folder.name for folder in sim_runs.values())
    browser.filter.setText("INSITU")  # any column, any case
    assert browser.visible_ids() == [sim_runs["insitu-eis"].name]
    browser.filter.setText("hard short")  # the result column: the CCD's brief
    assert browser.visible_ids() == [sim_runs["ccd"].name]


def test_opening_a_run_emits_its_state(qtbot, browser, sim_runs):
    browser.select(sim_runs["ccd"].name)
    with qtbot.waitSignal(browser.opened) as opened:
        browser.open_run()
    state = opened.args[0]
    assert isinstance(state, RunState)
    assert state.run_id == sim_runs["ccd"].name and state.status == "finished" and len(state.samples) > 100


def test_without_a_selection_actions_say_what_to_do(browser):
    assert browser.open_run() is None and browser.reanalyze() is None
    assert "click a run" in browser.message.toPlainText()


@pytest.mark.parametrize("procedure", ["ccd", "ce-cycling", "eis"])
def test_rerun_analysis_gives_the_stored_headline(browser, sim_runs, procedure):
    browser.select(sim_runs[procedure].name)
    redone = browser.reanalyze()
    stored = read_json(sim_runs[procedure] / RESULTS)["headline"]
    assert redone.result["headline"] == redone.stored_headline == stored
    assert stored in browser.message.toPlainText() and "(as stored)" in browser.message.toPlainText()
    assert redone.command.startswith(f"labctl analyze {redone.analysis} ")


def test_the_rerun_button_analyses_in_the_background_and_shows_the_headline(qtbot, browser, sim_runs):
    browser.select(sim_runs["ce-cycling"].name)
    browser.buttons["Re-run analysis"].click()
    assert "Re-running the analysis" in browser.message.toPlainText()  # the window goes on while it works
    stored = read_json(sim_runs["ce-cycling"] / RESULTS)["headline"]
    qtbot.waitUntil(lambda: "(as stored)" in browser.message.toPlainText(), timeout=60_000)
    assert stored in browser.message.toPlainText()


def test_rerun_analysis_of_insitu_eis_fits_the_last_spectrum_as_the_run_did(browser, sim_runs):
    redone = browser.reanalyze(sim_runs["insitu-eis"].name)
    last = RunState.from_folder(sim_runs["insitu-eis"]).r_tot[-1][1]
    assert redone.analysis == "eis" and redone.result["R_tot_ohm"] == pytest.approx(last, rel=1e-6)


def test_exports_read_back(browser, sim_runs, tmp_path):
    insitu = sim_runs["insitu-eis"].name
    (parquet,) = browser.export_parquet(tmp_path, insitu)
    table, csv = pd.read_parquet(parquet), pd.read_csv(sim_runs["insitu-eis"] / TIMESERIES)
    assert parquet.name == f"{insitu}.bdf.parquet" and list(table.columns) == list(csv.columns)
    pd.testing.assert_frame_equal(table, csv)
    assert bdf.validate(parquet)["ok"]

    spectra = pd.read_csv(sim_runs["insitu-eis"] / SPECTRA)
    paths = browser.export_z(tmp_path, insitu)
    assert len(paths) == spectra["Spectrum Index / 1"].nunique() > 5
    last = spectra[spectra["Spectrum Index / 1"] == spectra["Spectrum Index / 1"].max()]
    z = read_z(paths[-1])
    assert paths[-1].name == f"{insitu}-spectrum-{len(paths):03d}.z"
    for column in ("Frequency / Hz", "Real Impedance / ohm", "Imaginary Impedance / ohm"):
        assert np.allclose(z[column], last[column], rtol=1e-6)

    pngs = browser.export_png(tmp_path, insitu)
    assert [p.name for p in pngs] == [f"{insitu}-{tab}.png" for tab in ("v-i-vs-time", "nyquist", "bode", "r-tot")]
    for png in pngs:
        image = QImage(str(png))
        assert (image.width(), image.height()) == PNG_SIZE  # as docs/gui.md says
        assert inked_rows(image, 0, 40) and inked_rows(image, 40, PNG_SIZE[1])  # a title over the plots


def inked_rows(image: QImage, top: int, bottom: int) -> int:
    """How many rows in [top, bottom) of the left half of ``image`` have dark pixels (text, axes, traces)."""
    return sum(any(QColor(image.pixel(x, y)).lightness() < 100 for x in range(0, image.width() // 2, 2))
               for y in range(top, bottom))  # fmt: skip


def test_a_png_is_titled_with_the_run_cell_and_channel(qtbot, browser, sim_runs, tmp_path, monkeypatch):
    titles, picture = [], export_module.picture
    monkeypatch.setattr(export_module, "picture", lambda page, title, size: titles.append(title) or picture(page, title,
                                                                                                            size))
    browser.export_png(tmp_path, sim_runs["ccd"].name)
    assert titles == [f"{sim_runs['ccd'].name} · ccd · cell cell-1 · channel 1 — V, I vs time"]


def test_exports_ask_for_a_folder_and_say_in_brief_what_they_wrote(qtbot, browser, sim_runs, tmp_path, monkeypatch):
    asked = []
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args: asked.append(1) or str(tmp_path))
    browser.resize(480, 200)
    browser.show()
    qtbot.waitExposed(browser)
    button = browser.buttons["Open"]
    where, rows = button.mapTo(browser, button.rect().topLeft()), browser.table.height()
    browser.select(sim_runs["eis"].name)
    browser.exports["z"].trigger()
    assert (tmp_path / f"{sim_runs['eis'].name}-spectrum-001.z").is_file()
    assert browser.message.toPlainText() == f"Wrote {sim_runs['eis'].name}-spectrum-001.z to {tmp_path}"
    insitu = sim_runs["insitu-eis"].name
    browser.select(insitu)
    browser.exports["z"].trigger()
    assert browser.message.toPlainText() == (f"Wrote 12 files ({insitu}-spectrum-001.z … {insitu}-spectrum-012.z) "
                                             f"to {tmp_path}")  # not every name: a message is a line or two
    browser.reanalyze()  # the longest message: headline, "(as stored)", the command
    qtbot.wait(50)  # the layout settles
    assert button.mapTo(browser, button.rect().topLeft()) == where and browser.table.height() == rows  # nothing moved
    assert len(asked) == 2
    browser.select(sim_runs["eis"].name)
    browser.exports["parquet"].trigger()
    assert "no time series" in browser.message.toPlainText()  # an eis run has none: said, nothing written ...
    browser.select(sim_runs["ccd"].name)
    browser.exports["z"].trigger()
    assert "no spectra" in browser.message.toPlainText()
    assert len(asked) == 2  # ... and no folder asked for first


def test_the_export_button_offers_each_export(browser):
    menu = browser.buttons["Export"].menu()
    assert [a.text() for a in menu.actions()] == ["Time series as BDF parquet…", "Each spectrum as a ZView .z file…",
                                                  "Each plot as a PNG picture…"]  # fmt: skip


def test_export_errors_name_what_is_missing(browser, sim_runs, tmp_path):
    with pytest.raises(ValueError, match="no spectra"):
        browser.export_z(tmp_path, sim_runs["ccd"].name)
    with pytest.raises(ValueError, match="no time series"):
        browser.export_parquet(tmp_path, sim_runs["eis"].name)
