"""The run queue in-process: refusing bad entries at `add`, scheduling with an injected clock, queue edits,
and recovery putting a channel left running at rest on an emulated Arbin."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from labctl.bench import SimConfig, open_bench, start_sim_bench
from labctl.cli import app
from labctl.cli.queue import parse_duration_s, parse_start
from labctl.queue import Entry, QueueError, due, waiting_for
from labctl.queue.daemon import Daemon, run_command
from labctl.queue.db import iso
from labctl.request import Schedule
from labctl.store import Store

T0 = datetime(2026, 11, 22, 20, 0, tzinfo=UTC)
pytestmark = pytest.mark.usefixtures("store_db")  # every test on the store's SQLite file and on a lab's PostgreSQL


def queue_cli(home, *args: str):
    return CliRunner().invoke(app, ["queue", *args, "--store", str(home)])


def queued(home) -> list[Entry]:
    return Store(home).queue.entries()


# --- add: everything checked, nothing bad queued ---


@pytest.mark.parametrize(("args", "names"), [
    (["nope"], ["procedure", "'nope'", "ccd"]),
    (["ccd", "-p", "stop_density=0.01"], ["stop_density", "start_density"]),
    (["ccd", "-p", "stop_density=abc"], ["stop_density", "'abc'"]),
    (["ccd", "-p", "speed=3"], ["speed", "not a parameter of ccd"]),
    (["ccd", "-p", "stop_density"], ["--param", "name=value"]),
    (["ccd", "--bench", "/no/such/bench.toml"], ["--bench", "/no/such/bench.toml"]),
    (["ccd", "--channel", "9"], ["--channel", "1..8"]),
    (["ccd", "--channel", "6", "--count", "4"], ["--channel", "6..9", "--count"]),
    (["ccd", "--channel", "0"], ["--channel", "count from 1"]),
    (["ccd", "--after", "7"], ["--after", "no queue entry 7"]),
    (["ccd", "--cell", "unobtainium"], ["--cell", "'unobtainium'", "bare"]),
    (["ccd", "--rest", "soon"], ["--rest", "'soon'"]),
    (["ccd", "--at", "25:00"], ["--at", "'25:00'"]),
    (["eis", "--channel", "2"], ["--channel", "eis uses no cycler"]),
])  # fmt: skip
def test_add_refuses_a_bad_entry_naming_the_field_and_queues_nothing(tmp_path, args, names):
    result = queue_cli(tmp_path, "add", *args)
    assert result.exit_code == 2, result.output
    for name in names:
        assert name in result.output.replace("\n", " ")
    assert "Traceback" not in result.output
    assert queued(tmp_path) == []


def test_add_refuses_a_bench_file_without_a_role_the_procedure_needs(tmp_path):
    bench = tmp_path / "bay.toml"
    bench.write_text('[roles.cycler]\ndriver = "arbin-cti"\nresource = "192.168.1.20:9031"\nchannel = 3\n')
    result = queue_cli(tmp_path, "add", "insitu-eis", "--bench", str(bench))
    assert result.exit_code == 2
    assert "no impedance role" in result.output and "[roles.impedance]" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[roles.cycler]\ndriver = "arbin-cti"\nresource = "nowhere"\n')
    result = queue_cli(tmp_path, "add", "ccd", "--bench", str(bad))
    assert result.exit_code == 2 and "roles.cycler.resource" in result.output
    assert queued(tmp_path) == []


def test_a_template_on_four_cells_makes_four_entries_on_consecutive_channels(tmp_path):
    result = queue_cli(tmp_path, "add", "ccd", "--channel", "3", "--count", "4", "-p", "cell_id=AgMg",
                       "-p", "stop_density=0.3", "--cell", "Ag|Mg")  # fmt: skip
    assert result.exit_code == 0, result.output
    entries = queued(tmp_path)
    assert [e.channel for e in entries] == [3, 4, 5, 6]
    assert [e.params["cell_id"] for e in entries] == ["AgMg-1", "AgMg-2", "AgMg-3", "AgMg-4"]
    assert [e.claims for e in entries] == [[f"cycler@sim#{n}"] for n in (3, 4, 5, 6)]
    assert all(e.params["stop_density"] == "0.3" and e.cell == "Ag|Mg" for e in entries)
    command = run_command(entries[0], tmp_path)
    assert command[3:6] == ["run", "ccd", "--bench"] and "--channel" in command and "cell_id=AgMg-1" in command


def test_a_bench_file_claims_its_instruments_by_resource(tmp_path):
    bench = tmp_path / "bay.toml"
    bench.write_text('[roles.cycler]\ndriver = "arbin-cti"\nresource = "192.168.1.20:9031"\nchannel = 3\n'
                     '[roles.impedance]\ndriver = "solartron-1260"\nresource = "GPIB0::4::INSTR"\n')
    assert queue_cli(tmp_path, "add", "insitu-eis", "--bench", str(bench)).exit_code == 0
    assert queue_cli(tmp_path, "add", "ccd", "--bench", str(bench), "--channel", "5").exit_code == 0
    insitu, ccd = queued(tmp_path)
    assert insitu.claims == ["cycler@192.168.1.20:9031#3", "impedance@GPIB0::4::INSTR"]
    assert ccd.claims == ["cycler@192.168.1.20:9031#5"] and ccd.bench == str(bench.resolve())


# --- scheduling: a pure function of the entries and the time ---


def entry(id: int, *claims: str, state: str = "queued", ended_at: str | None = None, **when) -> Entry:
    return Entry(procedure="ccd", claims=list(claims), id=id, position=id, state=state, ended_at=ended_at,
                 schedule=Schedule(**when))


def test_a_start_time_holds_an_entry_until_it_comes():
    e = entry(1, "cycler@sim#1", not_before=T0 + timedelta(hours=1))
    assert due([e], T0) == []
    assert due([e], T0 + timedelta(minutes=59, seconds=59)) == []
    assert due([e], T0 + timedelta(hours=1)) == [e]


def test_after_waits_for_the_other_entry_to_end_and_then_the_rest():
    first = entry(1, "cycler@sim#1", state="running")
    second = entry(2, "cycler@sim#2", after=1, rest_s=1800)
    assert due([first, second], T0) == []
    assert waiting_for(second, {1: first, 2: second}, set(), T0) == "entry 1 to end"
    for end_state in ("finished", "failed", "aborted", "interrupted", "cancelled"):
        first = entry(1, "cycler@sim#1", state=end_state, ended_at=iso(T0))
        assert due([first, second], T0 + timedelta(minutes=29)) == []
        assert due([first, second], T0 + timedelta(minutes=30)) == [second]


def test_entries_sharing_an_instrument_take_turns_and_others_go_in_parallel():
    ccds = [entry(n, f"cycler@sim#{n}") for n in range(1, 5)]
    eis_a = entry(5, "cycler@sim#5", "impedance@sim")
    eis_b = entry(6, "cycler@sim#6", "impedance@sim")
    assert due([*ccds, eis_a, eis_b], T0) == [*ccds, eis_a]
    eis_a.state = "running"
    assert due([*ccds, eis_a, eis_b], T0) == ccds
    eis_a.state = "finished"
    assert due([*ccds, eis_a, eis_b], T0) == [*ccds, eis_b]


def test_queue_order_decides_who_gets_a_shared_instrument_first():
    late = entry(1, "impedance@sim")
    early = entry(2, "impedance@sim")
    early.position = 0
    assert due([late, early], T0) == [early]


def test_held_and_ended_entries_never_start():
    held = entry(1, "cycler@sim#1", state="held")
    ended = [entry(n, f"cycler@sim#{n}", state=s) for n, s in enumerate(("finished", "failed", "cancelled"), 2)]
    assert due([held, *ended], T0) == []


def test_a_failed_run_frees_its_instruments_and_blocks_nothing_unrelated():
    failed = entry(1, "cycler@sim#1", "impedance@sim", state="failed", ended_at=iso(T0))
    same_channel = entry(2, "cycler@sim#1")
    analyzer = entry(3, "cycler@sim#2", "impedance@sim")
    waits_for_it = entry(4, "cycler@sim#3", after=1)
    assert due([failed, same_channel, analyzer, waits_for_it], T0) == [same_channel, analyzer, waits_for_it]


# --- editing the queue from another shell ---


def test_move_hold_release_and_cancel(tmp_path):
    for cell in ("a", "b", "c"):
        assert queue_cli(tmp_path, "add", "ccd", "-p", f"cell_id={cell}").exit_code == 0
    assert queue_cli(tmp_path, "move", "3", "1").exit_code == 0
    assert [e.params["cell_id"] for e in queued(tmp_path)] == ["c", "a", "b"]
    assert queue_cli(tmp_path, "hold", "1").exit_code == 0
    assert due(queued(tmp_path), datetime.now(UTC))[0].params["cell_id"] == "c"  # all on channel 1: c goes first
    held = {e.id: e.state for e in queued(tmp_path)}
    assert held[1] == "held"
    assert queue_cli(tmp_path, "release", "1").exit_code == 0
    assert queue_cli(tmp_path, "cancel", "2").exit_code == 0
    assert {e.id: e.state for e in queued(tmp_path)} == {1: "queued", 2: "cancelled", 3: "queued"}
    result = queue_cli(tmp_path, "hold", "2")
    assert result.exit_code == 2 and "cancelled" in result.output
    assert queue_cli(tmp_path, "cancel", "9").exit_code == 2
    listing = json.loads(queue_cli(tmp_path, "list", "--json").stdout)
    assert listing[0]["id"] == 3 and listing[0]["status"].startswith("due")
    assert listing[1]["status"] == "waits for cycler@sim#1"  # entry 3 takes channel 1 first


def test_start_times_and_rests_parse_as_written():
    now = datetime(2026, 11, 22, 18, 30, tzinfo=UTC)
    assert parse_start("21:00", now) == datetime(2026, 11, 22, 21, 0, tzinfo=UTC)
    assert parse_start("07:00", now) == datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # the next 07:00: tomorrow
    assert parse_start("2026-11-24T09:15+01:00", now) == datetime(2026, 11, 24, 8, 15, tzinfo=UTC)
    assert [parse_duration_s(t) for t in ("90", "90s", "30min", "2h", "1.5h")] == [90, 90, 1800, 7200, 5400]
    with pytest.raises(QueueError, match="--rest"):
        parse_duration_s("-3")


# --- recovery on a real driver: a channel left running by a dead run is put at rest ---


def test_recovery_rests_the_channel_of_an_interrupted_run(tmp_path):
    with start_sim_bench(SimConfig(cell="Ag|Mg"), free_running=True) as served:
        bench_file = tmp_path / "served.toml"
        bench_file.write_text(served.config_toml())
        with open_bench(str(bench_file), cycler_channel=3) as dying:
            dying.cycler.begin("left running")
            dying.cycler.apply_current(1e-4, max_voltage_V=1.0, min_voltage_V=-1.0)
        # the run's process is gone (its connections closed) but its test still runs on channel 3
        with open_bench(str(bench_file), cycler_channel=3) as check:
            assert check.cycler.take_over() is True
        db = Store(tmp_path).queue
        (entry_id,) = db.add([Entry(procedure="ccd", bench=str(bench_file), claims=["cycler@x#3"], channel=3)])
        db.claim_start(entry_id, T0)
        db.set_process(entry_id, 2**22 + 12345)  # a pid no process has
        Daemon(tmp_path).recover()
        assert db.require(entry_id).state == "interrupted"
        with open_bench(str(bench_file), cycler_channel=3) as check:
            assert check.cycler.take_over() is False  # no test runs on channel 3 any more


def test_an_eis_that_reads_its_bias_from_a_cycler_is_refused_on_a_bench_without_one(tmp_path):
    with start_sim_bench(SimConfig(cell="bare"), free_running=True) as served:
        sections = served.config_toml().split("\n\n")
        bench = tmp_path / "analyzer-only.toml"  # the served bench without its cycler
        bench.write_text("\n\n".join(s for s in sections if not s.startswith("[roles.cycler")))
        refused = queue_cli(tmp_path, "add", "eis", "--bench", str(bench))
        assert refused.exit_code == 2 and "no cycler role" in refused.output and "bias_from=dc_bias" in refused.output
        run = CliRunner().invoke(app, ["run", "eis", "--bench", str(bench), "--store", str(tmp_path)])
        assert run.exit_code == 2 and "bias_from=dc_bias" in run.output
        assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())  # nothing was started
        assert queued(tmp_path) == []
        fixed = queue_cli(tmp_path, "add", "eis", "--bench", str(bench), "-p", "bias_from=dc_bias", "-p", "dc_bias=0")
        assert fixed.exit_code == 0, fixed.output
