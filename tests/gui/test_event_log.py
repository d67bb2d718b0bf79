from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from labctl.gui.event_log import RUN_ENDED, EventLog, event_of
from labctl.live.state import RunState
from labctl.store import Store
from labctl.store.folder import EVENTS, RunFolder


def new_run(registry, root: Path, run_id: str) -> RunFolder:
    """A run registered as running by this (live) process, its folder open for events."""
    folder = root / "runs" / run_id
    registry.add(run_id, procedure="ccd", bench="sim", cell_id="c", folder=folder)
    return RunFolder(folder, ["Test Time / s"])


@pytest.fixture
def event_log(qtbot, registry):
    def make(**kwargs) -> EventLog:
        widget = EventLog(registry, poll_ms=3_600_000, live_ms=3_600_000, **kwargs)  # looked at by hand here
        qtbot.addWidget(widget)
        return widget

    return make


def kinds(events) -> list[str]:
    return [e.kind for e in events]


def test_history_of_a_store_newest_first_with_shorts_highlighted_and_filters(qtbot, sim_store):
    store = Store(sim_store)
    log = EventLog(store.registry, poll_ms=3_600_000)
    qtbot.addWidget(log)
    events = log.events()
    times = [e.time for e in events]
    assert times == sorted(times, reverse=True)  # newest first
    ends = [e for e in events if e.kind == RUN_ENDED]
    assert len(ends) == 4 and all(e.message.startswith("finished") for e in ends)
    assert ends[-1].time >= max(e.time for e in events if e.run_id == ends[-1].run_id and e.kind != RUN_ENDED)
    short = next(e for e in events if e.kind == "hard_short")
    assert short.level == "failure" and short.channel == "1" and "collapsed" in short.message
    assert log.model.data(log.model.index(events.index(short), 0)) == datetime.fromtimestamp(short.time).strftime(
        "%Y-%m-%d %H:%M:%S")  # local time  # fmt: skip

    log.filter.setText("HARD SHORT")
    shown = [[log.proxy.index(r, c).data() for c in (3, 4)] for r in range(log.proxy.rowCount())]
    ccd_end = next(e for e in ends if e.run_id == short.run_id)  # "finished: CCD … (hard short)"
    assert ["hard short", short.message] in shown and ["run ended", ccd_end.message] in shown
    assert all("hard short" in " ".join(row).lower() for row in shown)
    with qtbot.waitSignal(log.run_chosen) as chosen:
        log.table.doubleClicked.emit(log.proxy.index(0, 3))
    assert chosen.args == [log.proxy.index(0, 1).data()]
    log.filter.clear()
    log.problems.setChecked(True)
    assert 0 < log.proxy.rowCount() < len(events)
    assert all(log.model.at(log.proxy.mapToSource(log.proxy.index(r, 0)).row()).level
               for r in range(log.proxy.rowCount()))  # fmt: skip
    store.close()


def test_polling_reads_only_what_was_added_and_the_run_end(qtbot, event_log, registry, store_root):
    folder = new_run(registry, store_root, "run-a")
    folder.event("test_started")
    log = event_log()
    assert kinds(log.events()) == ["test_started"]  # history: not emitted
    with qtbot.waitSignal(log.arrived) as arrived:
        folder.event("segment_started", label="+0.1 mA/cm²")
        folder.event("soft_short", detail="recovered")
        log.poll()
    assert kinds(arrived.args[0]) == ["segment_started", "soft_short"]
    assert log.events()[0].level == "warning" and log.events()[1].message == "+0.1 mA/cm²"

    with (folder.path / EVENTS).open("a") as f:
        f.write('{"kind": "half')  # a line being written is left for the next look
    with qtbot.assertNotEmitted(log.arrived):
        log.poll()
    with (folder.path / EVENTS).open("a") as f:
        f.write(f'_written", "wall_time": {datetime.now().timestamp()}}}\n')
    with qtbot.waitSignal(log.arrived) as arrived:
        log.poll()
    assert kinds(arrived.args[0]) == ["half_written"]

    registry.finish("run-a", "failed", {"error": "OSError: cycler gone"})
    with qtbot.waitSignal(log.arrived) as arrived:
        log.poll()
    (end,) = arrived.args[0]
    assert end.kind == RUN_ENDED and end.level == "failure" and end.message == "failed: OSError: cycler gone"
    with qtbot.assertNotEmitted(log.arrived):
        log.poll()
    assert kinds(log.events()) == [RUN_ENDED, "half_written", "soft_short", "segment_started", "test_started"]


def test_events_from_a_feed_and_from_the_folder_show_once(qtbot, event_log, registry, store_root):
    folder = new_run(registry, store_root, "run-b")
    state = RunState("run-b")
    feeds = {"run-b": SimpleNamespace(state=state)}  # what the log reads of a FeedClient
    log = event_log(feeds=feeds)
    for n in range(3):  # the run writes each event, then publishes it
        state.apply("event", folder.event("readout", n=n))
    log.take_feeds()
    log.poll()
    state.apply("event", folder.event("readout", n=3))
    log.poll()
    log.take_feeds()
    assert [e.record["n"] for e in log.events()] == [3, 2, 1, 0]


def test_memory_is_bounded_and_old_runs_are_only_counted(qtbot, event_log, registry, store_root):
    old = new_run(registry, store_root, "old")
    old.event("test_started")
    registry.finish("old", "finished")  # before every event of the other run
    new = new_run(registry, store_root, "new")
    for n in range(12):
        new.event("readout", n=n)
    log = event_log(limit=10)
    assert [e.record["n"] for e in log.events()] == list(range(11, 1, -1))
    assert log.runs["old"].taken == 1 and log.runs["old"].status == "finished"  # counted, not parsed

    for n in range(12, 15):
        new.event("readout", n=n)
    log.poll()
    assert [e.record["n"] for e in log.events()] == list(range(14, 4, -1))
    late = event_of("late", "", {"kind": "readout", "n": -1, "wall_time": log.events()[2].time - 1e-6})
    log.model.add([late])  # a run polled after another's live events goes where its time puts it
    assert log.events()[3] is late and len(log.events()) == 10


def test_a_run_folder_replaced_is_read_again_past_what_was_taken(qtbot, event_log, registry, store_root):
    folder = new_run(registry, store_root, "run-c")
    folder.event("one")
    folder.event("two")
    log = event_log()
    os.truncate(folder.path / EVENTS, 0)
    folder.event("one again")
    folder.event("two again")
    folder.event("three")
    log.poll()
    assert kinds(log.events())[0] == "three" and len(log.events()) == 3
