from __future__ import annotations

from pathlib import Path

import pytest
from PyQt6.QtWidgets import QMessageBox, QPushButton

from labctl.store.folder import TIMESERIES


@pytest.fixture
def window(qtbot, store_root, daemon_stopper):
    """The main window on an empty store; any daemon it started is stopped (its runs rest and end) afterwards."""
    from labctl.gui.app import MainWindow

    w = MainWindow(store_root, poll_ms=250)
    qtbot.addWidget(w)
    w.show()
    yield w
    daemon_stopper(w.daemon.process)


def queue_through_form(window, procedure: str, channel: int, **params: str) -> int:
    form = window.form
    form.procedure.setCurrentText(procedure)
    for name, value in params.items():
        form.fields[name].set_text(value)
    form.fields["channel"].set_text(str(channel))
    form.queue_button.click()
    assert form.message.text().startswith("Queued entry"), form.message.text()
    return window.queue.entries()[-1].id


def distinct_colours(path) -> int:
    from PyQt6.QtGui import QImage

    image = QImage(str(path))
    return len({image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)})


def test_two_runs_live_side_by_side_abort_one_reopen_one(qtbot, window, store_root, tmp_path, monkeypatch):
    # samples every 2 s of test time and two in-situ cycles: long enough (about half a minute each on a busy machine)
    # that both are still running when their views connect
    ccd = queue_through_form(window, "ccd", 1, cell_id="LLZTO-a", sample_interval="2")
    eis = queue_through_form(window, "insitu-eis", 2, cycles="2", cell_id="LPSCl-a")
    long = queue_through_form(window, "ce-cycling", 3, cycles="100000", cell_id="MgWCu-a")
    window.queue_panel.refresh()
    assert [r.entry.state for r in window.queue_panel.rows] == ["queued"] * 3

    assert "press Start daemon" in window.form.message.text()  # nothing runs until then, and the form says so
    window.daemon.start_button.click()
    run = {entry: lambda entry=entry: window.queue.get(entry).run_id for entry in (ccd, eis, long)}
    qtbot.waitUntil(lambda: all(run[e]() in window.views for e in (ccd, eis, long)), timeout=120_000)
    ccd_state, eis_state = window.view(run[ccd]()).state, window.view(run[eis]()).state

    # live: the CCD trace grows while its feed is connected, and an in-situ spectrum arrives through the feed
    qtbot.waitUntil(lambda: window.feeds[run[ccd]()].live and len(ccd_state.samples) > 0, timeout=60_000)
    seen = len(ccd_state.samples)
    qtbot.waitUntil(lambda: len(ccd_state.samples) > seen, timeout=60_000)
    qtbot.waitUntil(lambda: window.feeds[run[eis]()].live and len(eis_state.spectra) > 0, timeout=120_000)
    eis_view = window.view(run[eis]())
    qtbot.waitUntil(lambda: eis_view.tabs.isTabVisible(eis_view.pages.index(eis_view.page("Nyquist"))), timeout=5_000)
    assert window.view(run[ccd]()).page("V, I vs time").has_data(ccd_state)

    shot = tmp_path / "labctl-gui.png"
    assert window.grab().save(str(shot))
    assert shot.stat().st_size > 10_000 and distinct_colours(shot) > 20

    # a closed live view stays closed; the browser opens it live again
    window.views[run[long]()].close()
    qtbot.wait(1_000)  # four looks at the registry
    assert run[long]() not in window.views
    window.browser.refresh()
    window.browser.open_run(run[long]())
    assert run[long]() in window.views and run[long]() in window.feeds
    qtbot.waitUntil(lambda: window.feeds[run[long]()].live, timeout=30_000)

    # abort the long run from the queue panel, the confirmation accepted
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    window.queue_panel.refresh()
    window.queue_panel.select(f"entry {long}")
    window.queue_panel.buttons["Abort…"].click()
    registry = window.store.registry
    qtbot.waitUntil(lambda: registry.get(run[long]()).status == "aborted", timeout=120_000)
    folder = Path(registry.get(run[long]()).folder)
    assert len((folder / TIMESERIES).read_text().splitlines()) > 10
    qtbot.waitUntil(lambda: window.view(run[long]()).state.status == "aborted", timeout=30_000)
    qtbot.waitUntil(lambda: window.queue.get(long).state == "aborted", timeout=30_000)

    # reopen the finished CCD from the browser once its live view is closed
    qtbot.waitUntil(lambda: registry.get(run[ccd]()).status == "finished", timeout=180_000)
    window.views[run[ccd]()].close()
    qtbot.waitUntil(lambda: run[ccd]() not in window.views, timeout=5_000)
    window.browser.refresh()
    window.browser.select(run[ccd]())
    next(b for b in window.browser.findChildren(QPushButton) if b.text() == "Open").click()
    reopened = window.view(run[ccd]())
    assert reopened is not None and reopened.state.status == "finished" and reopened.state.result
    rows = len((Path(registry.get(run[ccd]()).folder) / TIMESERIES).read_text().splitlines()) - 1
    assert len(reopened.state.samples) == rows


def test_tabs_or_tiles_is_remembered_and_an_empty_middle_says_what_to_do(qtbot, store_root):
    from labctl.gui.app import MainWindow

    first = MainWindow(store_root, poll_ms=60000)
    qtbot.addWidget(first)
    first.show()
    first.center.setCurrentWidget(first.runs)
    assert first.runs.hint.isVisible() and "Queue" in first.runs.hint.text()
    tabs = next(a for a in first.menuBar().actions()[0].menu().actions() if a.text() == "Run views as tabs")
    tabs.setChecked(True)
    first.close()
    second = MainWindow(store_root, poll_ms=60000)
    qtbot.addWidget(second)
    assert second.runs.viewMode() == second.runs.ViewMode.TabbedView


def test_runs_selected_in_the_browser_open_overlaid_in_a_compare_window(qtbot, sim_store):
    from labctl.gui.app import MainWindow

    window = MainWindow(sim_store, poll_ms=60000)
    qtbot.addWidget(window)
    assert window.compare_selected() is None  # nothing selected: a message, no window
    table = window.browser.table
    table.selectRow(0)
    table.selectionModel().select(table.model().index(1, 0), table.selectionModel().SelectionFlag.Select
                                  | table.selectionModel().SelectionFlag.Rows)
    compare = window.compare_selected()
    qtbot.addWidget(compare)
    assert compare is not None and len(compare.states) == 2 and compare.windowTitle() == "Compare 2 runs"


def test_a_tile_is_titled_with_its_channel_procedure_and_cell(qtbot, sim_store, sim_runs):
    from labctl.gui.app import MainWindow
    from labctl.live.state import RunState

    window = MainWindow(sim_store, poll_ms=60000)
    qtbot.addWidget(window)
    window.show_state(RunState.from_folder(sim_runs["ccd"]))
    [tile] = window.views.values()
    assert tile.windowTitle() == window.view(tile.run_id).caption() and "ch 1" in tile.windowTitle()
    assert window.center.currentWidget() is window.runs
