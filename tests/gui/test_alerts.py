from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PyQt6.QtWidgets import QApplication

from labctl.gui.alerts import NOTIFY_LOG, Alerts
from labctl.gui.event_log import EventLog
from labctl.queue.daemon import LOGS
from labctl.store.folder import RunFolder


class Tray:
    """Stands in for the desktop's system tray (the offscreen platform has none)."""

    def __init__(self) -> None:
        self.shown: list[tuple[str, str]] = []

    def showMessage(self, title: str, text: str, *_: object) -> None:
        self.shown.append((title, text))

    def hide(self) -> None:
        pass


def hook(tmp_path: Path) -> tuple[str, Path]:
    """A --notify command that appends its two arguments to a file."""
    out = tmp_path / "notified.txt"
    return f"printf '%s %s\\n' >> {out}", out


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def new_run(registry, root: Path, run_id: str) -> RunFolder:
    folder = root / "runs" / run_id
    registry.add(run_id, procedure="ccd", bench="sim", cell_id="c", folder=folder)
    return RunFolder(folder, ["Test Time / s"])


@pytest.fixture
def watched(qtbot, registry, store_root, tmp_path):
    """An event log on the store (polled by hand), alerts on it with a fake tray and the hook."""
    log = EventLog(registry, poll_ms=3_600_000, live_ms=3_600_000)
    qtbot.addWidget(log)
    command, out = hook(tmp_path)
    tray = Tray()
    alerts = Alerts(log, store_root, command, tray=tray)  # type: ignore[arg-type]
    texts: list[str] = []
    alerts.alerted.connect(texts.append)
    return log, alerts, tray, texts, out


def test_a_short_that_ends_the_test_and_the_end_alert_once_each(qtbot, watched, registry, store_root):
    log, alerts, tray, texts, out = watched
    run = new_run(registry, store_root, "run-a")
    run.event("soft_short", ends_test=False, detail="recovered")
    run.event("contact_loss", ends_test=False, detail="voltage grows")
    log.poll()
    assert tray.shown == [] and texts == []  # warnings only: in the log, no alert

    run.event("hard_short", ends_test=True, current_density_mA_cm2=-0.6, detail="collapsed")
    run.event("hard_short", ends_test=True, current_density_mA_cm2=-0.6, detail="again")
    log.poll()
    registry.finish("run-a", "finished", {"brief": "CCD 0.6 mA/cm² (hard short)"})
    log.poll()
    assert tray.shown == [("Cell failed: hard short", "Run run-a: hard short at -0.6 mA/cm²; the test has ended"),
                          ("Run finished", "Run run-a finished: CCD 0.6 mA/cm² (hard short)")]  # fmt: skip
    assert texts == [text for _title, text in tray.shown]
    qtbot.waitUntil(lambda: len(lines(out)) == 2, timeout=10_000)
    assert sorted(lines(out)) == ["run-a finished", "run-a hard_short"]
    qtbot.waitUntil(lambda: not alerts.hooks, timeout=5_000)  # reaped
    assert (store_root / LOGS / NOTIFY_LOG).exists()


def test_failed_runs_alert_aborted_ones_and_history_do_not(qtbot, registry, store_root, tmp_path):
    before = new_run(registry, store_root, "before")
    before.event("fault", message="cycler gone")
    registry.finish("before", "failed", {"error": "OSError: cycler gone"})
    log = EventLog(registry, poll_ms=3_600_000, live_ms=3_600_000)
    qtbot.addWidget(log)
    tray = Tray()
    Alerts(log, store_root, tray=tray)  # type: ignore[arg-type]
    new_run(registry, store_root, "aborted")
    new_run(registry, store_root, "run-f").event("fault", message="TimeoutError: no reply")
    log.poll()
    registry.finish("aborted", "aborted")
    registry.finish("run-f", "failed", {"error": "TimeoutError: no reply"})
    log.poll()
    assert tray.shown == [("Run failed", "Run run-f failed: TimeoutError: no reply")]


def test_without_a_tray_alerts_go_to_the_status_text_never_a_dialog(qtbot, registry, store_root):
    log = EventLog(registry, poll_ms=3_600_000, live_ms=3_600_000)
    qtbot.addWidget(log)
    alerts = Alerts(log, store_root)
    assert alerts.tray is None  # the offscreen platform has no system tray
    with qtbot.waitSignal(alerts.alerted) as alerted:
        new_run(registry, store_root, "run-b").event("contact_loss", ends_test=True, detail="open circuit")
        log.poll()
    assert alerted.args == ["Run run-b: contact loss; the test has ended"]
    assert QApplication.activeModalWidget() is None


def test_a_simulated_cell_that_shorts_alerts_through_the_hook(qtbot, store_root, registry, tmp_path):
    log = EventLog(registry, poll_ms=100, live_ms=3_600_000)
    qtbot.addWidget(log)
    command, out = hook(tmp_path)
    Alerts(log, store_root, command, tray=Tray())  # type: ignore[arg-type]
    run = subprocess.Popen([sys.executable, "-m", "labctl", "run", "ccd", "-p", "density_step=0.25", "-p",
                            "sample_interval=30", "--bench", "sim", "--store", str(store_root)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        qtbot.waitUntil(lambda: len(lines(out)) == 2, timeout=120_000)
    finally:
        assert run.wait(timeout=60) == 0
    (run_id,) = [r.id for r in registry.list()]
    assert sorted(lines(out)) == [f"{run_id} finished", f"{run_id} hard_short"]
