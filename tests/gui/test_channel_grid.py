"""The channel grid over a 16-channel simulated bench: a tile per channel that follows its runs as they write (run
folders written here as a running run writes them, then real `labctl run` processes), coloured and named by
state, every value whole at the default tile size, and a click on a tile with a run asks for its view."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PyQt6.QtCore import Qt

from labctl.bdf_columns import CURRENT, CYCLE, STEP, TIME, VOLTAGE
from labctl.bench import BenchConfig
from labctl.gui.channel_grid import COLOURS, ChannelGrid, ChannelTile, tile_lines
from labctl.live.channels import ChannelStatus
from labctl.queue import Entry
from labctl.store import RunFolder, Store

COLUMNS = [TIME, VOLTAGE, CURRENT, CYCLE, STEP]
LONG_CCD = ("--cell", "Ag|Mg", "-p", "sample_interval=1")  # about 60 h of test: runs until stopped
QUICK_SHORT = ("-p", "density_step=0.25", "-p", "sample_interval=30")  # a bare cell shorts within seconds


@pytest.fixture
def bench(tmp_path) -> str:
    path = tmp_path / "bay16.toml"
    path.write_text('name = "bay16"\n[sim]\nchannels = 16\n')
    return str(path)


@pytest.fixture
def grid(qtbot, bench, queue, registry):
    widget = ChannelGrid(bench, queue, registry, poll_ms=50)
    qtbot.addWidget(widget)
    widget.resize(1200, 700)
    widget.show()
    yield widget
    widget.stop_watching()  # before the queue and the registry close


def start_run(store_root: Path, run_id: str, channel: int) -> RunFolder:
    """A run this process plays, on ``channel`` of the bench, its folder and registry row as the runner writes them."""
    store = Store(store_root)
    cycler = {"driver": "arbin-cti", "resource": "127.0.0.1:1", "channel": channel}
    config = BenchConfig.model_validate({"name": "bay16", "sim": {"channels": 16}, "roles": {"cycler": cycler}})
    folder = RunFolder(store.folder_of(run_id), COLUMNS)
    folder.write_metadata({"run_id": run_id, "bench": {"name": "bay16", "config": config.model_dump()},
                           "instruments": {"cycler": {}}, "cell": {"id": "LLZTO-17", "area_cm2": 1.0},
                           "estimated_duration_s": 36000.0})  # fmt: skip
    store.registry.add(run_id, procedure="ccd", bench="bay16", cell_id="LLZTO-17", folder=folder.path)
    store.close()
    return folder


def texts(tile: ChannelTile) -> list[str]:
    return [tile.title.text(), tile.badge.text(), *(label.text() for label in tile.lines)]


def assert_nothing_elided(grid: ChannelGrid) -> None:
    for tile in grid.area.tiles:
        for label in (tile.title, tile.badge, *tile.lines):
            assert "…" not in label.text(), label.text()
            assert label.fontMetrics().horizontalAdvance(label.text()) <= label.contentsRect().width(), label.text()
        assert tile.geometry().right() < grid.area.viewport().width()  # rows wrap: no tile beyond the view


def test_the_grid_follows_a_run_sample_by_sample_until_it_shorts(qtbot, grid, store_root):
    tiles = grid.tiles()
    assert list(tiles) == list(range(1, 17))
    assert all(t.status.state == "idle" and t.lines[0].text() == "no run" for t in tiles.values())
    folder = start_run(store_root, "run-5", 5)
    qtbot.waitUntil(lambda: grid.tiles()[5].status.state == "running", timeout=5_000)
    tile = grid.tiles()[5]
    assert texts(tile)[:4] == ["Ch 5", " RUNNING ", "ccd · LLZTO-17", "— V   — mA"]
    assert tile.lines[3].text() == "in test —   left 10.0 h"
    for t_s, volts in ((600.0, 0.0211), (1200.0, 0.0234)):
        folder.append({TIME: t_s, VOLTAGE: volts, CURRENT: 0.0003, CYCLE: 1, STEP: 1})
        qtbot.waitUntil(lambda v=volts: tile.lines[1].text().startswith(f"+{v:.4f} V"), timeout=5_000)
    assert tile.lines[1].text() == "+0.0234 V   +0.3000 mA"
    assert tile.lines[2].text() == "j +0.300 mA/cm²   cycle 1 · step 1"
    assert tile.lines[3].text() == "in test 0.33 h   left 9.67 h"
    assert grid.header.text() == "<b>bay16</b>: 16 channels — 1 running, 15 idle"
    assert_nothing_elided(grid)

    folder.event("hard_short", current_density_mA_cm2=0.3, detail="|V|/|I| collapsed to 2.2 Ω")
    qtbot.waitUntil(lambda: tile.status.state == "short", timeout=5_000)
    assert tile.badge.text() == " SHORT " and tile.lines[4].text().endswith(" hard short at 0.3 mA/cm²")
    assert COLOURS["short"][0] in tile.styleSheet() and "|V|/|I| collapsed to 2.2 Ω" in tile.toolTip()
    assert "1 short</b>" in grid.header.text()  # in bold red
    assert_nothing_elided(grid)

    with qtbot.waitSignal(grid.open_run, timeout=2_000) as opened:
        qtbot.mouseClick(tile, Qt.MouseButton.LeftButton)
    assert opened.args == ["run-5"]
    tile.setFocus()
    with qtbot.waitSignal(grid.open_run, timeout=2_000) as opened:
        qtbot.keyClick(tile, Qt.Key.Key_Return)  # from the keyboard too
    assert opened.args == ["run-5"]
    with qtbot.assertNotEmitted(grid.open_run):
        qtbot.mouseClick(grid.tiles()[6], Qt.MouseButton.LeftButton)  # an idle channel has no run to open
    folder.close()


def test_waiting_entries_show_on_their_channels(qtbot, grid, queue):
    entries = [Entry(procedure="ce-cycling", bench="x", params={"cell_id": f"MgCu-{n}"}, claims=[f"cycler@bay16#{n}"],
                     channel=n, state=state) for n, state in ((9, "queued"), (9, "queued"), (12, "held"))]  # fmt: skip
    first, _, held = queue.add(entries)
    qtbot.waitUntil(lambda: grid.tiles()[12].status.state == "waiting", timeout=5_000)
    assert texts(grid.tiles()[9])[1:4] == [" WAITING ", "ce-cycling · MgCu-9", f"entry {first} queued"]
    assert grid.tiles()[9].lines[-1].text() == "+1 waiting in the queue"  # after the one it shows
    assert grid.tiles()[12].lines[1].text() == f"entry {held} held" and grid.tiles()[12].lines[-1].text() == ""
    assert "2 waiting" in grid.header.text()


def first_row(grid: ChannelGrid) -> int:
    return sum(tile.y() == grid.tiles()[1].y() for tile in grid.tiles().values())


def test_tiles_wrap_to_the_width_and_scroll(qtbot, grid):
    wide = first_row(grid)
    grid.resize(600, 500)
    qtbot.waitUntil(lambda: first_row(grid) < wide, timeout=2_000)
    assert_nothing_elided(grid)  # also: no tile beyond the viewport's right edge
    assert grid.area.verticalScrollBar().maximum() > 0  # the rest scrolls
    grid.resize(1600, 500)
    qtbot.waitUntil(lambda: first_row(grid) > wide, timeout=2_000)
    assert_nothing_elided(grid)


def test_every_value_has_its_unit_and_an_unknown_one_a_dash():
    running = ChannelStatus(3, "running", "r", procedure="ccd", cell_id="c", voltage_V=-0.00123, current_A=-0.0000456,
                            density_mA_cm2=-0.0456, cycle=12, step=23, test_time_s=45000.0, left_s=None)
    assert tile_lines(running)[1:4] == ["-0.0012 V   -0.0456 mA", "j -0.046 mA/cm²   cycle 12 · step 23",
                                        "in test 12.5 h   left —"]  # fmt: skip


def test_the_header_says_what_the_grid_knows_of_the_bench(qtbot, queue, registry, tmp_path):
    grid = ChannelGrid(str(tmp_path / "missing.toml"), queue, registry)
    qtbot.addWidget(grid)
    grid.show()
    assert "no bench file" in grid.header.text() and grid.tiles() == {}
    grid.set_bench("sim")
    assert list(grid.tiles()) == list(range(1, 9)) and grid.header.text().startswith("<b>sim</b>: 8 channels — ")
    arbin = tmp_path / "bay-2.toml"
    arbin.write_text('[roles.cycler]\ndriver = "arbin-cti"\nresource = "192.168.1.20:9031"\nchannel = 3\n')
    grid.set_bench(str(arbin))
    assert list(grid.tiles()) == [3] and "the cycler may have more" in grid.header.text()


def test_the_grid_over_real_runs_on_a_16_channel_simulated_bench(qtbot, grid, bench, store_root):
    """Two `labctl run` processes: a long CCD that is stopped, and a CCD that runs into its hard short."""
    env = {**os.environ, "LABCTL_HOME": str(store_root)}
    run = [sys.executable, "-m", "labctl", "run", "ccd", "--bench", bench]
    long_ccd = subprocess.Popen([*run, "--channel", "11", *LONG_CCD], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
    shorting = subprocess.Popen([*run, "--channel", "3", *QUICK_SHORT], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        tile = grid.tiles()[11]
        qtbot.waitUntil(lambda: tile.status.state == "running" and bool(tile.status.test_time_s), timeout=60_000)
        first = tile.status.test_time_s
        qtbot.waitUntil(lambda: tile.status.test_time_s > first, timeout=10_000)  # live: the values move on
        assert tile.lines[1].text().endswith(" mA") and " h   left " in tile.lines[3].text()
        qtbot.waitUntil(lambda: grid.tiles()[3].status.state == "short", timeout=60_000)
        assert "hard short" in grid.tiles()[3].status.event and "1 short</b>" in grid.header.text()
        assert_nothing_elided(grid)
        long_ccd.send_signal(signal.SIGINT)  # the run rests its channel and ends aborted
        assert long_ccd.wait(60) == 130, long_ccd.stderr.read() if long_ccd.stderr else ""
        qtbot.waitUntil(lambda: tile.status.state == "aborted", timeout=5_000)
    finally:
        for process in (long_ccd, shorting):
            process.kill()
            process.wait()
