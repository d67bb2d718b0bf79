"""Who holds which instrument: the queue's claims of running entries and every running run in the registry (runs
started by hand included), read from the store as the GUI's bench panel reads it. No Qt, no processes."""

from __future__ import annotations

import json
import os
from pathlib import Path

from labctl.bench import BenchConfig, load_config
from labctl.live.holders import Holder, bench_instruments, holders, latest_reading
from labctl.queue import Entry, QueueDB
from labctl.queue.db import utc_now
from labctl.store import Store, registry_path
from labctl.store.folder import METADATA, TIMESERIES

BAY = {
    "name": "bay-2",
    "roles": {
        "cycler": {"driver": "arbin-cti", "resource": "192.168.1.20:9031", "channel": 3},
        "impedance": {"driver": "solartron-1260", "resource": "GPIB0::4::INSTR"},
        "rate_monitor": {"driver": "inficon-sqm160", "resource": "ASRL/dev/ttyUSB0::INSTR"},
    },
}


def run_folder(
    store: Store, run_id: str, config: dict, instruments: tuple[str, ...], rows: str = "", procedure: str = "ccd"
) -> Path:
    """A registered running run (this process plays it) whose metadata names its bench as the runner writes it."""
    folder = store.folder_of(run_id)
    folder.mkdir(parents=True)
    bench = BenchConfig.model_validate(config)
    metadata = {
        "run_id": run_id,
        "bench": {"name": bench.name, "config": bench.model_dump()},
        "instruments": {role: {} for role in instruments},
    }
    (folder / METADATA).write_text(json.dumps(metadata))
    if rows:
        (folder / TIMESERIES).write_text(rows)
    store.registry.add(run_id, procedure=procedure, bench=bench.name, cell_id="c", folder=folder)
    return folder


def running_entry(
    queue: QueueDB, claims: list[str], channel: int | None, run_id: str | None = None, pid: int | None = None
) -> int:
    (entry_id,) = queue.add([Entry(procedure="insitu-eis", bench="sim", params={}, claims=claims, channel=channel)])
    assert queue.claim_start(entry_id, utc_now())
    if pid is not None:
        queue.set_process(entry_id, pid)
    if run_id is not None:
        queue.set_run(entry_id, run_id)
    return entry_id


def look(store: Store) -> dict[str, list[Holder]]:
    queue = QueueDB(registry_path(store.root))
    try:
        return holders(queue.entries(), store.registry.list())
    finally:
        queue.close()


def test_a_run_started_by_hand_holds_every_role_its_bench_file_opened(tmp_path):
    store = Store(tmp_path)
    folder = run_folder(store, "r1", BAY, ("cycler",), rows="Test Time / s,Voltage / V,Current / A\n7,0.0125,0.00028\n")
    held = look(store)
    # a CCD uses only the cycler, but its process opened the whole bench file: the SQM-160's port too
    assert set(held) == {"cycler@192.168.1.20:9031", "impedance@gpib0::4::instr", "rate_monitor@asrl/dev/ttyusb0::instr"}
    assert held["cycler@192.168.1.20:9031"] == [Holder("r1", "ccd", None, 3, folder)]
    assert held["cycler@192.168.1.20:9031"][0].describe() == "run r1 (by hand, ccd, channel 3)"
    assert latest_reading(folder) == {"test_time_s": 7.0, "voltage_V": 0.0125, "current_A": 0.00028}


def test_another_bench_file_naming_the_same_instrument_sees_it_held(tmp_path):
    store = Store(tmp_path)
    run_folder(store, "r1", BAY, ("cycler",))
    mine = tmp_path / "mine.toml"
    mine.write_text(
        '[roles.impedance]\ndriver = "solartron-1260"\nresource = " gpib0::4::INSTR"\n'
        '[roles.cycler]\ndriver = "arbin-cti"\nresource = "192.168.1.20:9031"\nchannel = 5\n'
    )
    instruments = bench_instruments(load_config(str(mine)))
    held = look(store)
    # channel 5 is not channel 3, but one cycler is one CTI login: held all the same
    assert all(instruments[role] in held for role in ("impedance", "cycler"))


def test_a_sim_run_holds_its_procedures_roles_by_the_benchs_name(tmp_path):
    store = Store(tmp_path)
    served = {"name": "sim", "sim": {}, "roles": {
        "cycler": {"driver": "arbin-cti", "resource": "127.0.0.1:40001", "channel": 2},
        "impedance": {"driver": "solartron-1260", "resource": "TCPIP::127.0.0.1::40002::SOCKET"},
    }}  # fmt: skip
    run_folder(store, "r1", served, ("cycler",))
    assert list(look(store)) == ["cycler@sim"]  # its own emulators: only what the queue would claim for it
    assert look(store)["cycler@sim"][0].channel == 2
    assert bench_instruments(load_config("sim")) == {
        "cycler": "cycler@sim",
        "impedance": "impedance@sim",
        "rate_monitor": "rate_monitor@sim",
    }


def test_running_entries_hold_their_claims_before_their_run_registers_and_one_holder_each(tmp_path):
    store = Store(tmp_path)
    queue = QueueDB(registry_path(tmp_path))
    starting = running_entry(queue, ["cycler@sim#5", "impedance@sim"], 5)
    queue.add([Entry(procedure="ccd", bench="sim", params={}, claims=["cycler@sim#6"], channel=6)])  # only queued
    held = look(store)
    assert set(held) == {"cycler@sim", "impedance@sim"}
    assert held["impedance@sim"] == [Holder(None, "insitu-eis", starting, None, None)]
    assert held["cycler@sim"][0].describe() == f"a starting run (entry {starting}, insitu-eis, channel 5)"

    # its run registers; the daemon has not yet recorded the run id, only the child's pid: one holder, merged
    queue.set_process(starting, os.getpid())
    folder = run_folder(store, "r2", {"name": "sim", "sim": {}, "roles": {
        "cycler": {"driver": "arbin-cti", "resource": "127.0.0.1:1", "channel": 5},
        "impedance": {"driver": "solartron-1260", "resource": "TCPIP::127.0.0.1::2::SOCKET"}}},
        ("cycler", "impedance"), procedure="insitu-eis")  # fmt: skip
    held = look(store)
    assert held["cycler@sim"] == [Holder("r2", "insitu-eis", starting, 5, folder)]
    assert held["impedance@sim"] == [Holder("r2", "insitu-eis", starting, None, folder)]

    queue.end(starting, "finished", {}, utc_now())
    store.registry.finish("r2", "finished")
    assert look(store) == {}
    queue.close()
