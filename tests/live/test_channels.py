"""The channel board: every cycler channel of a bench with what it is doing, from the registry, the queue and the run
folders (written here as a running run writes them). No Qt, no processes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from labctl.bdf_columns import CURRENT, CYCLE, STEP, TIME, VOLTAGE
from labctl.bench import BenchConfig, BenchError
from labctl.live.channels import ChannelBoard, ChannelStatus, EventTail, event_text
from labctl.queue import Entry, QueueDB
from labctl.queue.db import utc_now
from labctl.store import RunFolder, Store, registry_path
from labctl.store.folder import EVENTS

COLUMNS = [TIME, VOLTAGE, CURRENT, CYCLE, STEP]
ARBIN = "192.168.1.20:9031"


def bench_file(tmp_path: Path, text: str, name: str = "bench.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def sim16(tmp_path: Path) -> str:
    return bench_file(tmp_path, 'name = "bay16"\n[sim]\nchannels = 16\n', "bay16.toml")


def start_run(store: Store, run_id: str, channel: int, *, resource: str | None = None, bench: str = "bay16",
              planned_s: float | None = 36000.0, instruments: tuple[str, ...] = ("cycler",)) -> RunFolder:
    """A running run (this process plays it) on ``channel`` of the 16-channel sim bench, or of the real cycler at
    ``resource``; its metadata as the runner writes it."""
    cycler = {"driver": "arbin-cti", "resource": resource or "127.0.0.1:1", "channel": channel}
    sim = {"channels": 16} if resource is None else None
    config = BenchConfig.model_validate({"name": bench, "sim": sim, "roles": {"cycler": cycler}})
    folder = RunFolder(store.folder_of(run_id), COLUMNS)
    folder.write_metadata({
        "run_id": run_id, "bench": {"name": config.name, "config": config.model_dump()},
        "instruments": {role: {} for role in instruments}, "cell": {"id": f"cell-{channel}", "area_cm2": 0.5},
        "estimated_duration_s": planned_s,
    })  # fmt: skip
    store.registry.add(run_id, procedure="ccd", bench=config.name, cell_id=f"cell-{channel}", folder=folder.path)
    return folder


def sample(folder: RunFolder, t_s: float, voltage: float = 0.02, current: float = 0.0001, cycle: int = 1,
           step: int = 1) -> None:
    folder.append({TIME: t_s, VOLTAGE: voltage, CURRENT: current, CYCLE: cycle, STEP: step})


def end_run(store: Store, folder: RunFolder, status: str, summary: dict | None = None, result: dict | None = None) -> None:
    if result is not None:
        folder.write_results(result)
    folder.close()
    store.registry.finish(folder.path.name, status, summary)


def queued(queue: QueueDB, channel: int, hold: bool = False, bench: str = "bay16") -> int:
    entry = Entry(procedure="ccd", bench="x", params={"cell_id": f"next-{channel}"}, claims=[f"cycler@{bench}#{channel}"],
                  channel=channel, state="held" if hold else "queued")
    return queue.add([entry])[0]


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "store")
    yield store
    store.close()


@pytest.fixture
def queue(store):
    store.registry  # noqa: B018 - creates the runs table the queue reads beside it
    queue = QueueDB(registry_path(store.root))
    yield queue
    queue.close()


def by_channel(board: ChannelBoard, live=lambda _: None) -> dict[int, ChannelStatus]:
    return {s.channel: s for s in board.statuses(live)}


def test_a_simulated_bench_has_its_channels_all_idle_at_first(tmp_path, store, queue):
    assert [s.channel for s in ChannelBoard("sim", queue, store.registry).statuses()] == list(range(1, 9))
    board = ChannelBoard(sim16(tmp_path), queue, store.registry)
    assert board.name == "bay16" and board.cycler == "cycler@bay16"
    assert board.statuses() == [ChannelStatus(n) for n in range(1, 17)]


def test_each_channel_says_how_its_latest_run_ended(tmp_path, store, queue):
    end_run(store, start_run(store, "finished", 1), "finished", {"brief": "no failure to 0.3 mA/cm²"})
    shorted = start_run(store, "shorted", 2)
    shorted.event("segment_started", label="+0.6 mA/cm²", current_density_mA_cm2=0.6)
    shorted.event("hard_short", current_density_mA_cm2=0.6, detail="|V|/|I| collapsed")
    shorted.event("segment_ended", label="+0.6 mA/cm²")
    end_run(store, shorted, "finished", {"brief": "CCD 0.6 mA/cm² (hard short)"})
    end_run(store, start_run(store, "by-result", 3), "finished", result={"failure_mode": "hard_short"})
    end_run(store, start_run(store, "failed", 4), "failed", {"error": "SafetyLimitBreach: voltage_max_V"})
    end_run(store, start_run(store, "aborted", 5), "aborted")
    end_run(store, start_run(store, "6a-old", 6), "failed")
    end_run(store, start_run(store, "6b-new", 6), "finished")  # the latest run of a channel is shown

    shown = by_channel(ChannelBoard(sim16(tmp_path), queue, store.registry))
    assert {n: s.state for n, s in shown.items() if s.state != "idle"} == {
        1: "finished", 2: "short", 3: "short", 4: "failed", 5: "aborted", 6: "finished"}
    assert shown[1].result == "no failure to 0.3 mA/cm²" and shown[1].left_s is None and shown[1].ended_at
    assert (shown[2].event, shown[2].event_detail) == ("hard short at 0.6 mA/cm²", "|V|/|I| collapsed")  # over routine
    assert shown[4].result == "SafetyLimitBreach: voltage_max_V"
    assert (shown[6].run_id, shown[6].cell_id, shown[6].procedure) == ("6b-new", "cell-6", "ccd")


def test_a_running_channel_has_its_values_and_time_left(tmp_path, store, queue):
    folder = start_run(store, "running", 5)
    board = ChannelBoard(sim16(tmp_path), queue, store.registry)
    assert by_channel(board)[5] == ChannelStatus(5, "running", "running", procedure="ccd", cell_id="cell-5",
                                                 left_s=36000.0)  # before its first sample
    sample(folder, 3600.0, 0.0312, 0.0002, cycle=2, step=3)
    folder.event("segment_started", label="+0.4 mA/cm²")
    now = by_channel(board)[5]
    assert (now.test_time_s, now.left_s, now.voltage_V, now.current_A) == (3600.0, 32400.0, 0.0312, 0.0002)
    assert (now.density_mA_cm2, now.cycle, now.step) == (pytest.approx(0.4), 2, 3)  # 0.2 mA on 0.5 cm²
    assert now.event == "segment started +0.4 mA/cm²" and now.event_at is not None
    # the window's feed is fresher than the folder: its values win, the folder still gives the step
    live = {"test_time_s": 7200.0, "voltage_V": 0.05, "current_A": -0.0001, "cycle": 4, "density_mA_cm2": -0.2}
    fed = by_channel(board, {"running": live}.get)[5]
    assert (fed.test_time_s, fed.left_s, fed.voltage_V, fed.density_mA_cm2, fed.cycle, fed.step) == (
        7200.0, 28800.0, 0.05, pytest.approx(-0.2), 4, 3)
    sample(folder, 40000.0, voltage=float("nan"))
    past = by_channel(board)[5]
    assert (past.left_s, past.voltage_V) == (0.0, None)  # nothing left past the plan; NaN is no reading


def test_time_left_is_unknown_without_a_plan_and_a_running_short_shows_at_once(tmp_path, store, queue):
    start_run(store, "unplanned", 1, planned_s=None)
    shorting = start_run(store, "shorting", 2)
    board = ChannelBoard(sim16(tmp_path), queue, store.registry)
    assert by_channel(board)[1].left_s is None
    assert by_channel(board)[2].state == "running"
    shorting.event("hard_short", current_density_mA_cm2=0.5)  # the run is still tidying up: the cell has shorted
    now = by_channel(board)[2]
    assert (now.state, now.event, now.left_s) == ("short", "hard short at 0.5 mA/cm²", None)


def test_queue_entries_make_a_channel_wait_unless_its_cell_needs_a_hand(tmp_path, store, queue):
    end_run(store, start_run(store, "done", 7), "finished")
    end_run(store, start_run(store, "shorted", 8), "finished", result={"failure_mode": "hard_short"})
    first = queued(queue, 7, hold=True)
    queued(queue, 7)
    queued(queue, 8)
    queued(queue, 9, bench="another-bench")  # another cycler's channel 9
    (starting,) = queue.add([Entry(procedure="ce-cycling", bench="x", params={}, claims=["cycler@bay16#10"], channel=10)])
    assert queue.claim_start(starting, utc_now())  # the daemon started it; its run has not registered yet
    shown = by_channel(ChannelBoard(sim16(tmp_path), queue, store.registry))
    assert shown[7] == ChannelStatus(7, "waiting", entry_id=first, entry_state="held", procedure="ccd",
                                     cell_id="next-7", waiting=2)
    assert (shown[8].state, shown[8].run_id, shown[8].waiting) == ("short", "shorted", 1)
    assert shown[9].state == "idle"
    assert (shown[10].state, shown[10].entry_id, shown[10].event) == ("running", starting, "starting")


def test_a_real_bench_shows_its_channel_and_those_runs_and_entries_used_on_its_cycler(tmp_path, store, queue):
    spec = bench_file(tmp_path, f'name = "bay-2"\n[roles.cycler]\ndriver = "arbin-cti"\nresource = "{ARBIN}"\n'
                                "channel = 3\n")  # fmt: skip
    end_run(store, start_run(store, "on-5", 5, resource=ARBIN, bench="bay-1"), "finished")  # another file, same cycler
    start_run(store, "deposition", 6, resource=ARBIN, instruments=("rate_monitor",))  # opened the cycler, drove none
    start_run(store, "elsewhere", 9, resource="10.0.0.9:9031")
    queued(queue, 12, bench=ARBIN)
    board = ChannelBoard(spec, queue, store.registry)
    assert [(s.channel, s.state) for s in board.statuses()] == [(3, "idle"), (5, "finished"), (12, "waiting")]
    assert board.count is None
    counted = ChannelBoard(spec, queue, store.registry, channels=8)
    assert [s.channel for s in counted.statuses()] == [1, 2, 3, 4, 5, 6, 7, 8, 12]


def test_a_bench_without_a_cycler_has_no_channels_and_a_bad_bench_says_why(tmp_path, store, queue):
    spec = bench_file(tmp_path, 'name = "evap"\n[roles.rate_monitor]\ndriver = "inficon-sqm160"\n'
                                'resource = "ASRL/dev/ttyUSB0::INSTR"\n')  # fmt: skip
    assert ChannelBoard(spec, queue, store.registry).statuses() == []
    with pytest.raises(BenchError, match="no bench file"):
        ChannelBoard(str(tmp_path / "missing.toml"), queue, store.registry)


def test_events_are_read_on_from_the_last_look_and_an_alert_outlasts_routine_events(tmp_path):
    path = tmp_path / EVENTS
    path.write_text('{"kind": "segment_started", "label": "+0.1 mA/cm²"}\n{"kind": "soft_short", "cycle": 4}\n{"kin')
    tail = EventTail(path).read()
    assert (tail.shown, tail.shorted) == ({"kind": "soft_short", "cycle": 4}, False)
    offset = tail.offset
    with path.open("a") as f:
        f.write('d": "segment_ended"}\nnot json\n')
    assert tail.read().shown == {"kind": "soft_short", "cycle": 4} and tail.offset > offset
    with path.open("a") as f:
        f.write('{"kind": "eis_short", "cycle": 5}\n')
    assert tail.read().shorted and event_text(tail.shown) == "eis short, cycle 5"
    assert os.path.getsize(path) == tail.offset


def test_event_text_is_the_kind_in_words_with_what_says_most():
    assert event_text({"kind": "safety_limit", "limit": "voltage_max_V"}) == "safety limit voltage_max_V"
    assert event_text({"kind": "aborted", "message": "stopped by the operator"}) == "aborted"
