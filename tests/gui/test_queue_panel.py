from __future__ import annotations

import subprocess
import sys

import pytest
from PyQt6.QtWidgets import QMessageBox

from labctl.gui import queue_panel as panel_module
from labctl.gui.queue_panel import QueuePanel
from labctl.queue.db import utc_now
from labctl.queue.entries import plan
from labctl.queue.view import status_text
from labctl.request import RunRequest


@pytest.fixture
def panel(qtbot, store_root, queue, registry):
    widget = QueuePanel(store_root, queue, registry, poll_ms=60_000)  # refreshed by hand here
    qtbot.addWidget(widget)
    return widget


def add(queue, procedure: str = "ccd", channel: int = 1, hold: bool = False) -> int:
    (entry_id,) = queue.add(plan(RunRequest(procedure=procedure, channel=channel), queue, hold=hold))
    return entry_id


def column(panel: QueuePanel, name: str) -> list[str]:
    c = panel_module.COLUMNS.index(name)
    return [panel.table.item(row, c).text() for row in range(panel.table.rowCount())]


def test_entries_show_with_why_they_wait(panel, queue):
    add(queue, channel=1)
    add(queue, channel=1)
    add(queue, "insitu-eis", channel=2, hold=True)
    panel.refresh()
    assert column(panel, "#") == ["1", "2", "3"]
    assert column(panel, "state") == ["queued", "queued", "held"]
    assert column(panel, "ch") == ["1", "1", "2"]
    assert column(panel, "progress or result")[2].startswith("held")


def test_why_an_entry_waits_is_said_in_the_window_s_words(panel, queue):
    running = add(queue, channel=1)
    queue.claim_start(running, utc_now())
    add(queue, channel=1)
    add(queue, "insitu-eis", channel=2)  # channel 2 is free, the impedance analyzer too
    add(queue, hold=True)
    panel.refresh()
    assert column(panel, "progress or result")[1:] == [
        "waits for channel 1 of the cycler (entry 1 uses it)", "due: starts at the daemon's next look",
        "held: Release lets it start"]  # not `labctl queue release`, not cycler@sim#1
    assert status_text(queue.get(4), queue.entries(), utc_now(), None) == "held: `labctl queue release` lets it start"


def test_clear_finished_takes_ended_entries_off_the_list_and_remembers_it(qtbot, panel, queue, store_root, registry):
    done, waiting = add(queue, channel=1), add(queue, channel=2)
    queue.claim_start(done, utc_now())
    queue.end(done, "finished", {"brief": "no failure to 3 mA/cm²"}, utc_now())
    panel.refresh()
    assert column(panel, "#") == [str(done), str(waiting)] and panel.buttons["Clear finished"].isEnabled()
    panel.buttons["Clear finished"].click()
    assert column(panel, "#") == [str(waiting)] and not panel.buttons["Clear finished"].isEnabled()
    assert queue.get(done).state == "finished"  # the queue keeps its record
    again = QueuePanel(store_root, queue, registry, poll_ms=60_000)  # a new window on the same store
    qtbot.addWidget(again)
    assert [row.entry.id for row in again.rows] == [waiting]


def test_a_new_entry_is_scrolled_into_sight(qtbot, panel, queue):
    panel.resize(700, 200)
    panel.show()
    qtbot.waitExposed(panel)
    panel.refresh()
    for channel in range(1, 9):
        add(queue, channel=channel)
    panel.refresh()
    last = panel.table.item(panel.table.rowCount() - 1, 0)
    qtbot.waitUntil(lambda: panel.table.viewport().rect().contains(panel.table.visualItemRect(last)))
    assert panel.table.verticalScrollBar().value() > 0  # the list is longer than the panel, scrolled to its end


def test_move_hold_release_cancel(panel, queue):
    for channel in (1, 2, 3):
        add(queue, channel=channel)
    panel.refresh()
    panel.select("entry 3")
    assert not panel.buttons["Down"].isEnabled() and panel.buttons["Up"].isEnabled()
    assert not panel.buttons["Abort…"].isEnabled() and not panel.buttons["Release"].isEnabled()
    panel.buttons["Up"].click()
    assert column(panel, "#") == ["1", "3", "2"]
    assert panel.selected().entry.id == 3  # the selection follows the entry
    panel.buttons["Hold"].click()
    assert queue.get(3).state == "held" and panel.buttons["Release"].isEnabled()
    panel.buttons["Release"].click()
    assert queue.get(3).state == "queued"
    panel.buttons["Cancel"].click()
    assert queue.get(3).state == "cancelled"
    assert not panel.buttons["Cancel"].isEnabled() and not panel.buttons["Up"].isEnabled()


def test_abort_of_a_queued_run_asks_the_daemon_after_confirmation(panel, queue, monkeypatch):
    entry_id = add(queue)
    queue.claim_start(entry_id, utc_now())
    monkeypatch.setattr(panel_module, "daemon_pid", lambda root: 4242)
    answers = iter([QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes])
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: next(answers))
    panel.refresh()
    panel.select(f"entry {entry_id}")
    assert panel.buttons["Abort…"].isEnabled() and not panel.buttons["Cancel"].isEnabled()
    panel.buttons["Abort…"].click()  # "No": nothing happens
    assert not queue.get(entry_id).stop_requested
    panel.buttons["Abort…"].click()
    assert queue.get(entry_id).stop_requested
    assert column(panel, "progress or result") == ["stopping (cancelled)"]


def test_abort_of_a_run_started_by_hand_sends_it_sigint(panel, registry, store_root, monkeypatch, qtbot):
    # a stand-in for `labctl run`: ends on SIGINT as a run does (KeyboardInterrupt), saying so
    child = subprocess.Popen([sys.executable, "-c", "import time\ntry:\n    print('ready', flush=True)\n    time.sleep(60)\n"
                              "except KeyboardInterrupt:\n    print('stopped', flush=True)"], stdout=subprocess.PIPE,
                             text=True)  # fmt: skip
    try:
        assert child.stdout.readline().strip() == "ready"
        registry.add("run-1", procedure="ccd", bench="sim", cell_id="c", folder=store_root / "runs" / "run-1")
        registry._db.execute("UPDATE runs SET pid = ? WHERE id = 'run-1'", (child.pid,))
        monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
        panel.refresh()
        assert column(panel, "state") == ["running (by hand)"] and column(panel, "run") == ["run-1"]
        panel.select("run run-1")
        with qtbot.waitSignal(panel.message) as message:
            panel.buttons["Abort…"].click()
        assert "SIGINT" in message.args[0]
        assert child.communicate(timeout=30)[0].strip() == "stopped"
    finally:
        child.kill()
        child.wait()
