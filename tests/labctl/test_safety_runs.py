"""Safety limits on whole runs over the simulated bench's real CTI: a limit reached rests the channel at once and fails
the run with a ``safety_limit`` event (never a short or contact loss), a current beyond the channel's range never
reaches the wire, a reading the channel cannot have measured is an instrument fault, and bad or conflicting limits
exit 2 with nothing started."""

from __future__ import annotations

import importlib.util
import json
import re
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from labctl.bench import open_bench
from labctl.cli import app
from labctl.drivers.arbin.messages import META_CODES, ChannelStatus
from labctl.engine.runner import Listeners, Runner
from labctl.procedures.ccd import CCDProcedure
from labctl.queue import db
from labctl.sim_instruments.arbin_channel import ArbinChannel
from labctl.sim_instruments.bench import SimBench
from labctl.sim_instruments.cells import SymmetricCell
from labctl.store import Store
from labctl.store.folder import EVENTS, METADATA

_spec = importlib.util.spec_from_file_location("fault_proxy", Path(__file__).parents[1] / "fault_proxy.py")
fault_proxy = sys.modules.setdefault("fault_proxy", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(fault_proxy)

CHANNELS_INFO_FB = bytes.fromhex("03 00 BA EE")
VOLTAGE_AT = 24 + 1677  # frame offset of the first channel record's f32 voltage
MV_CURRENT = META_CODES[2]  # MV_UD2: the constant-current set-point


def run(tmp_path, sim, procedure, limits, *, on_event=lambda event: None, address=None):
    """Run ``procedure`` with run ``limits`` on ``sim`` (through ``address``, e.g. a fault proxy, if given)."""
    path = tmp_path / "bench.toml"
    path.write_text(sim.config_toml().replace(sim.addresses()["cycler"], address or sim.addresses()["cycler"]),
                    encoding="utf-8")
    with open_bench(str(path)) as bench:
        outcome = Runner(Store(tmp_path / "store"), Listeners(event=on_event)).run(procedure, bench,
                                                                                  {"limits": limits})
    events = [json.loads(line) for line in (outcome.folder / EVENTS).read_text().splitlines()]
    return outcome, events


def bare_bench(area_cm2: float) -> SimBench:
    return SimBench(lambda n: SymmetricCell("bare", area_cm2=area_cm2, seed=n), speed=None)


def test_a_cell_at_the_voltage_limit_rests_the_channel_at_once_and_fails_the_run_never_as_its_own_end(tmp_path):
    procedure = CCDProcedure(stop_density=0.3)  # 0.2 mA/cm² takes the bare cell past 20 mV
    at_breach = {}
    with bare_bench(procedure.area_cm2) as sim:
        def on_event(event):
            if event["kind"] == "safety_limit":  # recorded before the runner's shutdown ends the test
                channel = sim.cycler.channels[0]
                at_breach.update(current_A=channel.current_A, status=channel.status, running=channel.running,
                                 max_voltage_V=channel.mvs[META_CODES[3]])
        outcome, events = run(tmp_path, sim, procedure, {"voltage_max_V": 0.02}, on_event=on_event)
    assert at_breach == {"current_A": 0.0, "status": ChannelStatus.REST, "running": True,
                         "max_voltage_V": pytest.approx(0.02)}  # the cycler held the run's limit, then rested
    assert outcome.status == "failed" and outcome.exit_code == 1
    assert outcome.error.startswith("SafetyLimitBreach: voltage_max_V = 0.02 V (upper voltage limit): ")
    (breach,) = [e for e in events if e["kind"] == "safety_limit"]
    assert (breach["limit"], breach["limit_value"], breach["units"]) == ("voltage_max_V", 0.02, "V")
    assert outcome.result is None  # no CCD verdict: neither a short nor contact loss
    assert not [e for e in events if e["kind"] == "segment_ended" and e["reason"] == "voltage_high"]
    metadata = json.loads((outcome.folder / METADATA).read_text())
    assert metadata["limits"] == {"voltage_max_V": 0.02}
    assert metadata["instruments"]["cycler"]["current_range_A"] == "5.0"
    summary = Store(tmp_path / "store").registry.get(outcome.run_id).summary
    assert "voltage_max_V" in summary["error"]  # what `labctl runs show` and a --notify hook read


def test_a_current_beyond_the_channel_range_is_refused_before_it_is_sent(tmp_path, monkeypatch):
    sent = []
    set_mv = ArbinChannel.set_mv
    monkeypatch.setattr(ArbinChannel, "set_mv", lambda self, code, value: (sent.append((code, value)),
                                                                           set_mv(self, code, value))[1])
    procedure = CCDProcedure(electrode_area=100.0, start_density=100.0, stop_density=100.0)  # 10 A
    with bare_bench(procedure.area_cm2) as sim:
        outcome, events = run(tmp_path, sim, procedure, {})
        statuses = {channel.status for channel in sim.cycler.channels}
    assert not [value for code, value in sent if code == MV_CURRENT and abs(value) > 5.0]
    assert ChannelStatus.UNSAFE not in statuses
    assert outcome.status == "failed" and outcome.exit_code == 1
    assert "current_range_A = 5 A (the channel's current range): refused 10 A before sending it" in outcome.error
    (breach,) = [e for e in events if e["kind"] == "safety_limit"]
    assert (breach["limit"], breach["value"], breach["how"]) == ("current_range_A", 10.0, "refused")
    assert outcome.result is None and "contact" not in outcome.error


def test_a_voltage_the_channel_cannot_measure_is_an_instrument_fault_not_a_limit_breach(tmp_path):
    procedure = CCDProcedure(stop_density=0.2)
    with bare_bench(procedure.area_cm2) as sim, fault_proxy.FaultProxy(sim.cycler.address) as proxy:
        proxy.inject("delay", command=CHANNELS_INFO_FB, seconds=0.0, count=30)  # begin and the first readings
        proxy.inject("scale", command=CHANNELS_INFO_FB, offset=VOLTAGE_AT, factor=1e4, count=-1)  # ~15 mV -> 150 V
        outcome, events = run(tmp_path, sim, procedure, {"voltage_max_V": 0.5}, address=f"127.0.0.1:{proxy.port}")
    assert "scale" in proxy.injected
    assert outcome.status == "failed"
    assert "instrument fault, not the cell" in outcome.error and "outside the channel's range ±10 V" in outcome.error
    assert not [e for e in events if e["kind"] == "safety_limit"]
    assert outcome.result is None


# --- the command line ---

def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def refused(result, *names: str) -> None:
    """Exit 2 naming every one of ``names``, no traceback."""
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exit_code == 2, text
    assert "Traceback" not in text
    flat = re.sub(r"[\s│╭╮╰╯─]+", "", text)  # rich wraps long lines in boxes
    for name in names:
        assert re.sub(r"\s+", "", name) in flat, text


def nothing_started(store: Path) -> None:
    assert not (store / "runs").exists() or not any((store / "runs").iterdir())
    assert not (store / "registry.sqlite").exists() or not Store(store).registry.list()


@pytest.mark.parametrize("limits, names", [
    (["voltage_max_V=abc"], ["--limit", "voltage_max_V", "'abc' is not a number (in V)"]),
    (["voltage_max=1"], ["--limit", "voltage_max: not a limit", "voltage_max_V"]),
    (["voltage_max_V=inf"], ["--limit", "voltage_max_V", "finite"]),
    (["current_max_A=-0.001"], ["--limit", "current_max_A", "greater than 0"]),
    (["voltage_max_V=1", "voltage_min_V=2"], ["--limit", "voltage_min_V = 2 V must be below voltage_max_V = 1 V"]),
    (["voltage_max_V"], ["--limit", "NAME=VALUE"]),
])  # fmt: skip
def test_bad_run_limits_exit_2_naming_the_limit_with_nothing_started(tmp_path, limits, names):
    store = tmp_path / "store"
    args = [arg for limit in limits for arg in ("--limit", limit)]
    refused(invoke("run", "ccd", *args, "--store", store), *names)
    nothing_started(store)
    refused(invoke("queue", "add", "ccd", *args, "--store", store), *names)
    assert not invoke("queue", "list", "--json", "--store", store).output.strip("[]\n ")


@pytest.mark.parametrize("bench, names", [
    ("[sim]\n[limits]\nvoltage_max_V = nan\n", ["limits.voltage_max_V", "finite"]),
    ("[sim]\n[limits]\ncurrent_max_A = true\n", ["limits.current_max_A", "number"]),
    ("[sim]\n[limits]\nvoltage_maximum_V = 1.0\n", ["limits.voltage_maximum_V", "not a bench setting"]),
    ('[roles.cycler]\ndriver = "arbin-cti"\nresource = "127.0.0.1:9"\n[roles.cycler.options]\ncurrent_range_A = 0\n',
     ["roles.cycler.options.current_range_A", "greater than 0"]),
    ('[roles.impedance]\ndriver = "solartron-1260"\nresource = "GPIB0::4::INSTR"\n[roles.impedance.limits]\n'
     'voltage_max_V = 1.0\n', ["roles.impedance.limits", "only the cycler role"]),
])  # fmt: skip
def test_bad_bench_limits_exit_2_naming_the_field(tmp_path, bench, names):
    path, store = tmp_path / "bench.toml", tmp_path / "store"
    path.write_text(bench, encoding="utf-8")
    refused(invoke("run", "ccd", "--bench", path, "--store", store), *names)
    nothing_started(store)


def test_a_run_file_limit_is_refused_naming_it(tmp_path):
    path, store = tmp_path / "run.toml", tmp_path / "store"
    path.write_text('procedure = "ccd"\n[limits]\nvoltage_max_V = "4.3"\n', encoding="utf-8")
    refused(invoke("run", path, "--store", store), "limits.voltage_max_V = '4.3' should be a number")
    nothing_started(store)


def test_run_limits_that_leave_the_bench_no_voltage_window_exit_2_before_anything_starts(tmp_path):
    bench, store = tmp_path / "bench.toml", tmp_path / "store"
    bench.write_text("[sim]\n[limits]\nvoltage_max_V = 1.0\n", encoding="utf-8")
    refused(invoke("run", "ccd", "--bench", bench, "--limit", "voltage_min_V=2", "--store", store),
            "limits:", "voltage_min_V = 2 V must be below voltage_max_V = 1 V")
    nothing_started(store)


def test_limits_of_the_bench_file_and_the_run_apply_together_and_runs_show_them(tmp_path):
    bench, run_file, store = tmp_path / "bench.toml", tmp_path / "run.toml", tmp_path / "store"
    bench.write_text("[sim]\n[limits]\nvoltage_max_V = 1.0\ntest_time_max_h = 100.0\n", encoding="utf-8")
    run_file.write_text('procedure = "ccd"\nbench = "bench.toml"\n[params]\nstop_density = 0.3\n[limits]\n'
                        "voltage_max_V = 0.05\n", encoding="utf-8")
    result = invoke("run", run_file, "--limit", "voltage_max_V=0.02", "--json", "--store", store)
    assert result.exit_code == 1, result.output
    outcome = json.loads(result.output[result.output.index("{"):])
    assert outcome["status"] == "failed" and "voltage_max_V = 0.02 V" in outcome["error"]  # --limit over [limits]
    shown = invoke("runs", "show", outcome["run_id"], "--store", store)
    assert "Safety limits: voltage_max_V 0.02 V, test_time_max_h 100 h" in shown.output
    assert "voltage_max_V = 0.02 V" in shown.output  # the error names the limit


def test_a_queued_run_keeps_its_limits_for_the_run_the_daemon_starts(tmp_path):
    store = tmp_path / "store"
    added = invoke("queue", "add", "ccd", "--limit", "voltage_max_V=0.5", "--limit", "current_max_A=0.01",
                   "--store", store)
    assert added.exit_code == 0, added.output
    shown = json.loads(invoke("queue", "show", "1", "--store", store).output)
    assert shown["limits"] == {"voltage_max_V": 0.5, "voltage_min_V": None, "current_max_A": 0.01,
                               "capacity_per_step_Ah": None, "test_time_max_h": None}
    command = shown["command"]
    assert command[command.index("--limit") + 1] == "voltage_max_V=0.5"
    assert "current_max_A=0.01" in command


def test_a_queue_made_before_limits_existed_gains_them(tmp_path):
    path = tmp_path / "registry.sqlite"
    with closing(sqlite3.connect(path)) as old:
        old.execute("CREATE TABLE queue (id INTEGER PRIMARY KEY AUTOINCREMENT, position INTEGER NOT NULL, procedure "
                    "TEXT NOT NULL, bench TEXT NOT NULL, params TEXT NOT NULL, cell TEXT, seed INTEGER, channel INTEGER, "
                    "claims TEXT NOT NULL, state TEXT NOT NULL, not_before TEXT, after INTEGER, rest_s REAL NOT NULL "
                    "DEFAULT 0, run_id TEXT, pid INTEGER, added_at TEXT NOT NULL, started_at TEXT, ended_at TEXT, "
                    "outcome TEXT, stop_requested INTEGER NOT NULL DEFAULT 0)")  # as labctl made it before limits
        old.execute("INSERT INTO queue (position, procedure, bench, params, claims, state, added_at) VALUES "
                    "(1, 'ccd', 'sim', '{}', '[]', 'queued', '2026-01-01T00:00:00+00:00')")
        old.commit()
    queue = db.QueueDB(path)
    (entry,) = queue.entries()
    assert entry.limits.given() == {} and "--limit" not in entry.run_arguments()
