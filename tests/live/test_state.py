"""RunState: the same state from the live feed, from the run folder, and from any split of the two."""

from __future__ import annotations

import json
import shutil
import sqlite3

import numpy as np
import pytest

from labctl.live.state import CURRENT, TIME, VOLTAGE, Marker, RunState
from labctl.store import Store
from labctl.store.folder import EVENTS, METADATA, TIMESERIES


def live_state(recorded) -> RunState:
    state = RunState()
    for message in [recorded.hello, *recorded.messages]:
        state.apply(message["topic"], message["record"])
    return state


def assert_same(a: RunState, b: RunState) -> None:
    assert (a.run_id, a.status, a.result) == (b.run_id, b.status, b.result)
    assert a.counts() == b.counts()
    assert set(a.samples.columns) == set(b.samples.columns)
    for name in (TIME, *a.samples.columns):  # the file keeps 10 significant digits
        np.testing.assert_allclose(a.samples.column(name), b.samples.column(name), rtol=1e-9, equal_nan=True)
    assert a.events == b.events
    assert a.markers == b.markers
    assert a.cycles == b.cycles
    assert a.r_tot == b.r_tot
    for s, t in zip(a.spectra, b.spectra, strict=True):
        assert (s.index, s.cycle) == (t.index, t.cycle) and s.test_time_s == pytest.approx(t.test_time_s)
        for u, v in ((s.freq, t.freq), (s.z_real, t.z_real), (s.z_imag, t.z_imag)):
            np.testing.assert_allclose(u, v, rtol=1e-9)


@pytest.mark.parametrize("run", ["ccd_run", "insitu_run", "ce_run"])
def test_the_feed_and_the_folder_give_the_same_state(run, request):
    recorded = request.getfixturevalue(run)
    live = live_state(recorded)
    stored = RunState.from_folder(recorded.folder)
    assert live.status == stored.status == "finished"
    assert_same(live, stored)
    assert stored.counts()["sample"] == len(open(recorded.folder / TIMESERIES).readlines()) - 1
    assert stored.counts()["event"] == len((recorded.folder / EVENTS).read_text().splitlines())


@pytest.mark.parametrize("run", ["ccd_run", "insitu_run"])
@pytest.mark.parametrize("fraction", [0.0, 0.3, 0.97])
def test_history_up_to_the_hello_counts_plus_later_records_is_the_whole_run(run, fraction, request):
    """What a viewer that connects part-way does: read the files up to what the feed had sent, then go live."""
    recorded = request.getfixturevalue(run)
    cut = int(fraction * len(recorded.messages))
    sent = {"sample": 0, "event": 0, "spectrum": 0}
    for message in recorded.messages[:cut]:
        if message["topic"] in sent:
            sent[message["topic"]] = message["seq"] + 1
    state = RunState()
    state.apply("hello", recorded.hello["record"] | {"sent": sent})
    state.load(recorded.folder, limits=sent)
    assert state.counts() == sent
    for message in recorded.messages[cut:]:
        if message["seq"] >= state.counts().get(message["topic"], 0):
            state.apply(message["topic"], message["record"])
    assert_same(state, live_state(recorded))


def test_ccd_markers_are_the_current_levels_at_their_start_and_the_short(ccd_run):
    state = RunState.from_folder(ccd_run.folder)
    steps = [m for m in state.markers if m.kind == "step"]
    assert [m.label for m in steps] == ["0.1 mA/cm²", "0.2 mA/cm²", "0.3 mA/cm²", "0.4 mA/cm²", "0.5 mA/cm²",
                                        "0.6 mA/cm²"]
    assert [m.t_s for m in steps] == [0.0, 7200.0, 14400.0, 21600.0, 28800.0, 36000.0]  # 2 cycles of 2 × 0.5 h each
    (failure,) = [m for m in state.markers if m.kind == "failure"]
    assert failure == Marker(state.result["failure"]["t_s"], "hard short at 0.6 mA/cm²", "failure")
    assert state.procedure == "ccd" and state.metadata["cell"]["area_cm2"] > 0
    assert {VOLTAGE, CURRENT} <= set(state.samples.columns)
    assert state.status_line["voltage_V"] == state.samples.column(VOLTAGE)[-1]
    assert 0 < state.progress < 100  # it shorted before its planned end


def test_ce_cycles_and_insitu_spectra_and_r_tot(ce_run, insitu_run):
    ce = RunState.from_folder(ce_run.folder)
    assert [c["cycle"] for c in ce.cycles] == [1, 2, 3]
    assert all(c["ce_percent"] > 90 and c["plating_overpotential_mV"] > 0 for c in ce.cycles)
    eis = RunState.from_folder(insitu_run.folder)
    assert [s.index for s in eis.spectra] == [1, 2, 3, 4]  # the pristine cell's, then during and after the cycle
    assert all(len(s.freq) == len(s.z_real) == len(s.z_imag) > 10 for s in eis.spectra)
    assert len(eis.r_tot) == 4 and all(r > 0 for _t, r in eis.r_tot)
    assert [t for t, _r in eis.r_tot] == pytest.approx([s.test_time_s / 3600 for s in eis.spectra])


def test_every_record_moves_the_version():
    state = RunState()
    state.apply("sample", {TIME: 1.0, VOLTAGE: 0.01})
    state.apply("status", {"voltage_V": 0.01})
    state.apply("progress", 5.0)
    state.apply("no-such-topic", {})
    state.apply("end", {"status": "aborted", "error": None})
    assert state.version == 4 and state.status == "aborted" and state.progress == 5.0


def test_a_line_still_being_written_is_not_read(ccd_run, tmp_path):
    folder = tmp_path / "runs" / "copy"
    shutil.copytree(ccd_run.folder, folder)
    whole = RunState.from_folder(folder).counts()
    with (folder / TIMESERIES).open("a") as f:
        f.write("41010,0.00")
    with (folder / EVENTS).open("a") as f:
        f.write('{"kind": "segm')
    assert RunState.from_folder(folder).counts() == whole


def test_a_folder_left_running_by_a_dead_process_reads_interrupted(ccd_run, tmp_path):
    store = Store(tmp_path)
    folder = store.folder_of(ccd_run.outcome.run_id)
    shutil.copytree(ccd_run.folder, folder)
    metadata = json.loads((folder / METADATA).read_text())
    (folder / METADATA).write_text(json.dumps(metadata | {"status": "running"}))
    store.registry.add(ccd_run.outcome.run_id, procedure="ccd", bench="sim", cell_id="c", folder=folder)
    store.close()
    with sqlite3.connect(tmp_path / "registry.sqlite") as db:
        db.execute("UPDATE runs SET pid = 999999999")  # no such process
    assert RunState.from_folder(folder).status == "interrupted"


def test_loading_again_reads_only_what_the_state_does_not_hold(insitu_run):
    """A viewer that reconnects (or whose run died) reads on from where it was."""
    state = RunState()
    state.load(insitu_run.folder, limits={"sample": 100, "event": 1, "spectrum": 1})
    state.load(insitu_run.folder, limits={"sample": 2000, "event": 3, "spectrum": 2})
    state.load(insitu_run.folder)
    assert_same(state, RunState.from_folder(insitu_run.folder))
