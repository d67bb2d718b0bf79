"""The bench panel lists every role of its bench, shows the running run that holds a role (with its latest reading)
instead of opening it, opens only the free roles, and lets go of a role a run takes while the panel has it open."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from PyQt6.QtWidgets import QLabel

from labctl.gui.bench_panel import FREE, BenchPanel
from labctl.queue import Entry
from labctl.queue.db import utc_now

LONG_CCD = ("--cell", "Ag|Mg", "-p", "sample_interval=1")  # about 60 h of test: runs until stopped
OPEN_S = 30_000  # ms: a simulated bench starts its emulators


@pytest.fixture
def panel(qtbot, queue, registry):
    widget = BenchPanel("sim", queue, registry, poll_ms=100)
    qtbot.addWidget(widget)
    yield widget
    widget.stop_watching()  # before the queue and the registry close
    if widget.bench is not None:
        widget.bench.close()


def shown(panel: BenchPanel) -> dict[str, str]:
    return dict(panel.rows())


def start_running(queue, claims: list[str], channel: int) -> int:
    """A queue entry the daemon has just started (its run not registered yet)."""
    (entry_id,) = queue.add([Entry(procedure="ccd", bench="sim", params={}, claims=claims, channel=channel)])
    assert queue.claim_start(entry_id, utc_now())
    return entry_id


def test_bench_panel_connects_in_a_worker_and_lists_roles(qtbot, panel):
    assert shown(panel) == {"cycler (channel 1)": FREE, "impedance": FREE, "rate_monitor": FREE}
    panel.open()
    assert not panel.connect_button.isEnabled()  # returned at once; the bench opens in the background
    qtbot.waitUntil(lambda: panel.bench is not None, timeout=OPEN_S)
    rows = panel.rows()
    assert [r[0] for r in rows] == ["cycler (channel 1)", "impedance", "rate_monitor"]
    assert "Arbin" in rows[0][1] and " V, " in rows[0][1] and " mA" in rows[0][1]
    assert "Solartron" in rows[1][1] and "Å/s" in rows[2][1]
    labels = [label.text() for label in panel.roles.findChildren(QLabel)]
    assert labels == [text for row in rows for text in row]  # each role's name over its details, as listed
    panel.disconnect_button.click()
    assert panel.bench is None and set(shown(panel).values()) == {FREE}  # every role still listed
    qtbot.waitUntil(lambda: panel.state.text() == "Disconnected", timeout=10_000)


def test_bench_panel_names_what_is_wrong(qtbot, queue, registry, tmp_path):
    panel = BenchPanel(str(tmp_path / "missing.toml"), queue, registry)
    qtbot.addWidget(panel)
    panel.open()
    qtbot.waitUntil(lambda: panel.state.text().startswith("Not connected"), timeout=10_000)
    assert "no bench file" in panel.state.text() and panel.connect_button.isEnabled()
    panel.stop_watching()


def test_a_role_a_running_entry_claims_is_shown_held_and_only_the_free_roles_open(qtbot, panel, queue):
    entry = start_running(queue, ["cycler@sim#2"], 2)  # another channel of the same cycler: held all the same
    qtbot.waitUntil(lambda: "held by" in shown(panel)["cycler (channel 1)"], timeout=5_000)
    assert shown(panel)["cycler (channel 1)"] == f"held by a starting run (entry {entry}, ccd, channel 2):\nno reading yet"
    panel.open()
    qtbot.waitUntil(lambda: panel.bench is not None, timeout=OPEN_S)
    assert set(panel.bench.roles) == {"impedance", "rate_monitor"}  # the cycler was never opened
    assert panel.state.text() == "Connected to sim: opened impedance, rate_monitor; cycler held by a run, not opened"
    assert shown(panel)["cycler (channel 1)"].startswith("held by a starting run")
    assert "Solartron" in shown(panel)["impedance"]


def test_nothing_opens_when_every_role_is_held(qtbot, panel, queue):
    start_running(queue, ["cycler@sim#1", "impedance@sim", "rate_monitor@sim"], 1)
    panel.open()
    assert panel.bench is None and panel.connect_button.isEnabled()
    assert panel.state.text() == "Nothing opened: every role of sim is held by a running run"


def test_the_panel_lets_go_of_a_role_a_run_takes_while_it_is_open(qtbot, panel, queue):
    panel.open()
    qtbot.waitUntil(lambda: panel.bench is not None, timeout=OPEN_S)
    start_running(queue, ["impedance@sim"], 1)
    qtbot.waitUntil(lambda: panel.bench is None, timeout=5_000)
    assert panel.state.text().startswith("Disconnected: a run took impedance")
    assert shown(panel)["impedance"].startswith("held by") and shown(panel)["cycler (channel 1)"] == FREE


def test_a_run_started_by_hand_is_shown_with_its_reading_and_its_cycler_left_alone(qtbot, panel, store_root):
    env = {**os.environ, "LABCTL_HOME": str(store_root)}
    run = subprocess.Popen(
        [sys.executable, "-m", "labctl", "run", "ccd", "--bench", "sim", *LONG_CCD],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:

        def held_with_a_reading() -> None:
            assert run.poll() is None, run.stderr.read() if run.stderr else run.returncode
            assert " mA" in shown(panel)["cycler (channel 1)"]

        # not through the queue: the panel finds it in the registry, with its latest stored sample
        qtbot.waitUntil(held_with_a_reading, timeout=60_000)
        cycler = shown(panel)["cycler (channel 1)"]
        assert cycler.startswith("held by run ") and "(by hand, ccd, channel 1):\nt " in cycler and " V " in cycler
        assert shown(panel)["impedance"] == FREE  # a CCD on sim holds only its cycler
        panel.open()
        qtbot.waitUntil(lambda: panel.bench is not None, timeout=OPEN_S)
        assert set(panel.bench.roles) == {"impedance", "rate_monitor"}
        run.send_signal(signal.SIGINT)  # the run rests its channel and ends aborted
        assert run.wait(60) == 130, run.stderr.read() if run.stderr else ""
    finally:
        run.kill()
    qtbot.waitUntil(lambda: "held" not in shown(panel)["cycler (channel 1)"], timeout=5_000)
    assert shown(panel)["cycler (channel 1)"] == FREE  # free again; Connect would open it


def test_the_window_shows_a_held_roles_live_values_from_the_runs_feed(qtbot, store_root):
    from labctl.gui.app import MainWindow

    window = MainWindow(store_root, poll_ms=250)
    qtbot.addWidget(window)
    env = {**os.environ, "LABCTL_HOME": str(store_root)}
    run = subprocess.Popen(
        [sys.executable, "-m", "labctl", "run", "ccd", "--bench", "sim", *LONG_CCD],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        qtbot.waitUntil(lambda: any(feed.live for feed in window.feeds.values()), timeout=60_000)
        # the current density is in the feed's status records only, not in the time-series file
        qtbot.waitUntil(lambda: "mA/cm²" in shown(window.bench_panel)["cycler (channel 1)"], timeout=10_000)
        (run_id,) = window.feeds
        assert shown(window.bench_panel)["cycler (channel 1)"].startswith(f"held by run {run_id} (by hand, ccd")
    finally:
        run.send_signal(signal.SIGINT)
        run.wait(60)
        window.close()
