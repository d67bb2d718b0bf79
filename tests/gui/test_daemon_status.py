"""The daemon from the window: started and stopped as a real ``labctl serve`` on a temporary store."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PyQt6.QtWidgets import QMessageBox

from labctl.gui import daemon_status as module
from labctl.gui.daemon_status import DaemonStatus
from labctl.queue.daemon import LOGS, SERVE_LOG, daemon_pid
from labctl.queue.entries import plan
from labctl.request import RunRequest
from labctl.store.folder import TIMESERIES
from labctl.store.registry import process_alive

LONG_CCD = {"sample_interval": "1"}  # about 60 h of test: runs until stopped


@pytest.fixture
def status(qtbot, store_root, daemon_stopper):
    widget = DaemonStatus(store_root, poll_ms=100)
    qtbot.addWidget(widget)
    yield widget
    daemon_stopper(widget.process)


def answer(monkeypatch, button: QMessageBox.StandardButton) -> list[str]:
    """Answer the stop confirmation with ``button``; the questions asked."""
    asked: list[str] = []

    def question(_parent, _title, text, *_):
        asked.append(text)
        return button

    monkeypatch.setattr(QMessageBox, "question", question)
    return asked


def sampling(root: Path, queue, entry_id: int) -> bool:
    run_id = queue.get(entry_id).run_id
    series = root / "runs" / str(run_id) / TIMESERIES
    return run_id is not None and series.exists() and len(series.read_text().splitlines()) > 2


def test_start_then_stop_rests_the_runs_and_leaves_no_daemon(qtbot, status, store_root, queue, monkeypatch):
    ids = [queue.add(plan(RunRequest(procedure="ccd", channel=ch, cell="Ag|Mg", params=LONG_CCD), queue))[0]
           for ch in (1, 2)]  # fmt: skip
    changes: list[bool] = []
    status.state_changed.connect(changes.append)
    assert status.label.text() == "Daemon: not running (queued runs wait)"
    assert status.start_button.isEnabled() and not status.stop_button.isEnabled()

    status.start_button.click()
    process = status.process
    status.start()  # a second press while it starts starts nothing more
    assert status.process is process and not status.start_button.isEnabled()
    assert status.label.text() in ("Daemon: starting…", f"Daemon: running, pid {process.pid}")
    qtbot.waitUntil(lambda: status.label.text() == f"Daemon: running, pid {process.pid}", timeout=60_000)
    assert changes == [True] and status.stop_button.isEnabled() and status.stop_action.isEnabled()
    qtbot.waitUntil(lambda: all(sampling(store_root, queue, i) for i in ids), timeout=90_000)

    asked = answer(monkeypatch, QMessageBox.StandardButton.No)
    status.stop_button.click()
    assert "its 2 runs (channels 1, 2)" in asked[0] and "channel at rest" in asked[0]
    qtbot.wait(300)
    assert daemon_pid(store_root) == process.pid  # not stopped without a yes

    answer(monkeypatch, QMessageBox.StandardButton.Yes)
    status.stop_action.trigger()
    assert status.label.text().startswith("Daemon: stopping…") and not status.stop_button.isEnabled()
    qtbot.waitUntil(lambda: status.label.text() == "Daemon: not running (queued runs wait)", timeout=120_000)
    assert changes == [True, False] and process.returncode == 0 and daemon_pid(store_root) is None
    assert status.start_button.isEnabled()

    log = (store_root / LOGS / SERVE_LOG).read_text()
    assert "stopping 2 run(s); each rests its channel" in log
    for entry in map(queue.get, ids):
        assert entry.state == "aborted" and not process_alive(int(entry.pid))
        events = (store_root / "runs" / str(entry.run_id) / "events.jsonl").read_text()
        assert '"kind": "aborted"' in events and "channel at rest" in events


def test_a_daemon_that_exits_with_an_error_points_to_its_log(qtbot, status, store_root, monkeypatch):
    monkeypatch.setattr(module, "labctl_command", lambda *_: [sys.executable, "-c", "raise SystemExit(2)"])
    status.start()
    qtbot.waitUntil(lambda: "error" in status.label.text(), timeout=30_000)
    assert status.label.text() == (f"Daemon: stopped with an error (exit code 2); see its log "
                                   f"{store_root / LOGS / SERVE_LOG}")  # fmt: skip
    assert status.start_button.isEnabled() and not status.stop_button.isEnabled()


def test_stop_with_no_run_going_says_so(status, monkeypatch):
    asked = answer(monkeypatch, QMessageBox.StandardButton.No)
    monkeypatch.setattr(status, "pid", lambda: 4242)
    status.ask_stop()
    assert asked == ["Stop the daemon? No run is going; queued runs wait until the daemon is started again."]
