"""CE, full-cell and hold procedures end to end on the simulated bench: procedure → Arbin driver → TCP →
emulator → cell model → store, and the offline analysis of what was stored."""

from __future__ import annotations

import json
from pathlib import Path

import bdf
import pandas as pd
import pytest
from typer.testing import CliRunner

from labctl.bench import open_bench
from labctl.cli import app
from labctl.engine.runner import Listeners, Runner
from labctl.procedures.ce import CyclingCEProcedure
from labctl.procedures.cycle_eis import parse_cycles
from labctl.store import Store
from labctl.store.folder import EVENTS, METADATA, SPECTRA, TIMESERIES, read_json

cli = CliRunner()


def run(*args: str) -> dict:
    result = cli.invoke(app, ["run", *args, "--bench", "sim", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["status"] == "finished"
    assert bdf.validate(f"{out['folder']}/{TIMESERIES}")["ok"]
    return out


def analyze(out: dict, *options: str) -> dict:
    area = read_json(Path(out["folder"]) / METADATA)["cell"]["area_cm2"]
    result = cli.invoke(app, ["analyze", "ce", f"{out['folder']}/{TIMESERIES}", "--area", str(area), *options,
                              "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_reservoir_ce_of_mg_w_cu_is_the_papers_and_recomputes_offline():
    out = run("ce-reservoir")
    r = out["result"]
    assert r["reservoir"]["ce_percent"] == pytest.approx(98.83, abs=0.15)
    assert r["reservoir"]["n"] == 10
    assert r["reservoir"]["Q_T_mAh_cm2"] == pytest.approx(5.0, rel=1e-3)
    assert "Reservoir CE" in r["headline"]
    offline = analyze(out, "--protocol", "reservoir")
    assert offline["reservoir"] == r["reservoir"]
    assert set(read_json(Path(out["folder"]) / METADATA)["instruments"]) == {"cycler"}  # only what it used


def test_bare_cu_has_a_lower_reservoir_ce_than_mg_w_cu():
    cu = run("ce-reservoir", "--cell", "Cu")["result"]["reservoir"]["ce_percent"]
    assert cu == pytest.approx(98.32, abs=0.15)


def test_long_cycling_reports_per_cycle_ce_and_overpotentials_and_recomputes_offline():
    out = run("ce-cycling", "-p", "cycles=6")
    r = out["result"]
    cycles = r["cycles"]
    assert [c["cycle"] for c in cycles] == list(range(1, 7))
    first = cycles[0]
    assert first["plate_mAh_cm2"] == pytest.approx(1.0, rel=2e-3)
    assert first["plate_end"] == "capacity" and first["strip_end"] == "voltage"
    assert 80 < first["ce_percent"] < cycles[-1]["ce_percent"]  # the Mg film keeps some lithium at first
    assert cycles[-1]["ce_percent"] == pytest.approx(98.83, abs=0.3)
    assert first["plating_overpotential_mV"] == pytest.approx(32, abs=6)
    assert first["stripping_overpotential_mV"] == pytest.approx(30, abs=6)
    assert first["nucleation_overpotential_mV"] == pytest.approx(27, abs=8)
    offline = analyze(out, "--protocol", "cycling", "--capacity", "1")
    assert offline["cycles"] == cycles


def test_a_cell_that_shorts_is_caught_and_the_test_ends_at_rest(tmp_path):
    procedure = CyclingCEProcedure()
    procedure.cycles = 60
    with open_bench("sim", sim_overrides={"cell": "Cu"}, sim_defaults=procedure.sim_defaults()) as bench:
        outcome = Runner(Store(tmp_path / "store"), Listeners()).run(procedure, bench)
        reading = bench.cycler.read()
    assert outcome.status == "finished"
    short = outcome.result["short"]
    assert short and 10 <= short["cycle"] <= 45
    assert len(outcome.result["cycles"]) < 60
    assert reading.current_A == 0.0
    assert "hort" in outcome.result["headline"]


def test_sandoval_variant_flags_a_half_cycle_ended_by_time_as_a_lower_bound():
    out = run("ce-cycling", "--cell", "Ag-Cu", "-p", "cycles=2", "-p", "density=0.25", "-p", "anodic_cutoff=0.5",
              "-p", "time_cutoff=2")
    cycles = out["result"]["cycles"]
    assert cycles[0]["plate_end"] == "time"  # 2 h at 0.25 mA/cm² plates 0.5 of the 1 mAh/cm²
    assert cycles[0]["plate_mAh_cm2"] == pytest.approx(0.5, rel=1e-2)


def test_anode_free_full_cell_activation_and_cycling():
    out = run("fullcell", "-p", "cathode_mass=5.655", "-p", "cycles=3")
    cycles = out["result"]["cycles"]
    assert len(cycles) == 6
    assert cycles[0]["ce_percent"] == pytest.approx(71, abs=5)  # first-cycle loss
    assert cycles[0]["discharge_mAh_g"] == pytest.approx(192, rel=0.08)
    assert cycles[3]["discharge_mAh_g"] == pytest.approx(137, rel=0.1)  # first cycle at 0.33C
    assert cycles[1]["ce_percent"] > 95


def test_half_depth_of_charge_keeps_a_reservoir():
    out = run("fullcell-doc", "-p", "cathode_mass=5.655", "-p", "cycles=6")
    after = out["result"]["cycles"][4:]
    for c in after:
        assert c["charge_mAh_g"] == pytest.approx(100, rel=0.02)
        assert c["ce_percent"] > 99


def test_rate_capability_falls_with_c_rate():
    out = run("rate", "-p", "cathode_mass=5.655", "-p", "rates=0.1,1", "-p", "cycles_per_rate=1",
              "-p", "activation_cycles=1")
    rates = out["result"]["rates"]
    assert [r["rate_C"] for r in rates] == [0.1, 1.0]
    assert rates[0]["discharge"] == pytest.approx(183, rel=0.12)
    assert rates[1]["discharge"] == pytest.approx(74, rel=0.2)
    assert "at 1C" in out["result"]["headline"]


def test_charging_ccd_of_ag_mg_passes_every_step():
    out = run("fullcell-ccd", "-p", "cycles_after=1", "-p", "sample_interval=300")
    r = out["result"]
    assert r["charging_ccd_mA_cm2"] == 1.5 and r["short_cycle"] is None
    assert r["cycles_completed"] == 12


def test_charging_ccd_of_ag_alone_shorts_at_the_next_step():
    out = run("fullcell-ccd", "--cell", "LCO|Ag|Li", "-p", "cycles_after=0", "-p", "sample_interval=300")
    r = out["result"]
    assert r["short_cycle"] is not None
    assert r["charging_ccd_mA_cm2"] == pytest.approx(0.6)
    assert r["short_density_mA_cm2"] == pytest.approx(1.0)


def test_potentiostatic_hold_reads_the_corrosion_current_at_10_50_90_h():
    out = run("hold", "-p", "sample_interval=300")
    readouts = out["result"]["readouts"]
    assert [x["time_h"] for x in readouts] == [10, 50, 90]
    for x, published in zip(readouts, (39, 35, 16), strict=True):
        assert x["current_uA"] == pytest.approx(published, rel=0.15)
    series = pd.read_csv(f"{out['folder']}/{TIMESERIES}")
    assert (series["Voltage / V"].iloc[5:-1] - 4.2).abs().max() < 0.01  # the last reading is at rest


def test_a_coated_collector_corrodes_less_than_cu():
    readouts = run("hold", "--cell", "Mg/W-Cu|Mg/W-Cu", "-p", "duration=12", "-p", "readout_times=10")["result"]
    assert readouts["readouts"][0]["current_uA"] == pytest.approx(4, rel=0.25)


@pytest.mark.parametrize(
    ("procedure", "args", "message"),
    [
        ("ce-cycling", ["-p", "capacity=-1"], "capacity"),
        ("ce-cycling", ["-p", "anodic_cutoff=-0.1"], "anodic_cutoff"),
        ("ce-cycling", ["-p", "lower_limit=0.3"], "lower_limit"),
        ("ce-reservoir", ["-p", "cycle_capacity=6"], "cycle_capacity"),
        ("fullcell", ["-p", "areal_capacity=0"], "cathode_mass"),
        ("fullcell", ["-p", "upper_voltage=2.5"], "upper_voltage"),
        ("rate", ["-p", "rates=0.1,fast"], "rates"),
        ("fullcell-ccd", ["-p", "charge_densities=0.6,-1"], "charge_densities"),
        ("hold", ["-p", "readout_times=120"], "readout_times"),
    ],
)
def test_bad_parameters_are_refused_before_any_current_flows(procedure, args, message, tmp_path):
    result = cli.invoke(app, ["run", procedure, *args, "--store", str(tmp_path / "store")])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not (tmp_path / "store").exists() or not Store(tmp_path / "store").registry.list()


def spectra_cycles(folder: str) -> list[int]:
    spectra = pd.read_csv(Path(folder) / SPECTRA)
    return spectra.groupby("Spectrum Index / 1")["Cycle Count / 1"].first().tolist()


def test_ce_cycling_measures_spectra_after_the_chosen_cycles_on_the_impedance_role():
    out = run("ce-cycling", "-p", "cycles=4", "-p", "eis=true", "-p", "eis_cycles=1,3-4", "-p", "points_per_decade=5")
    eis = out["result"]["eis"]
    assert [s["cycle"] for s in eis["spectra"]] == [1, 3, 4] == spectra_cycles(out["folder"])
    bulk = 27.1 / 1.131  # the Mg/W-Cu cell's R_b·A over the 12 mm electrode (Wang, Table S1), ohm
    for s in eis["spectra"]:
        assert s["R_b_ohm"] == pytest.approx(bulk, rel=0.05) and s["kk_pass"]
    assert eis["short"] is None
    assert len(out["result"]["cycles"]) == 4  # the spectra did not disturb the CE analysis
    assert "3 spectra" in out["result"]["headline"]
    assert set(read_json(Path(out["folder"]) / METADATA)["instruments"]) == {"cycler", "impedance"}


def test_wangs_eis_schedule_is_the_default_and_eis_is_off_unless_asked():
    schedule = parse_cycles(CyclingCEProcedure().eis_cycles)
    assert [n for n in range(1, 71) if schedule.includes(n)] == [*range(1, 11), 15, 20, 25, 30, 40, 50, 60, 70]
    out = run("ce-cycling", "-p", "cycles=2")
    assert "eis" not in out["result"] and not (Path(out["folder"]) / SPECTRA).exists()
    assert set(read_json(Path(out["folder"]) / METADATA)["instruments"]) == {"cycler"}


def test_a_fall_of_the_bulk_resistance_is_the_eis_short_signal(tmp_path):
    procedure = CyclingCEProcedure(cycles=60, eis=True, eis_cycles="1", points_per_decade=5)
    with open_bench("sim", sim_overrides={"cell": "Cu"}, sim_defaults=procedure.sim_defaults()) as bench:
        outcome = Runner(Store(tmp_path / "store"), Listeners()).run(procedure, bench)
        reading = bench.cycler.read()
    r = outcome.result
    short = r["eis"]["short"]
    first, last = r["eis"]["spectra"][0], r["eis"]["spectra"][-1]
    assert first["cycle"] == 1 and last["when"] == "after the short" and last["cycle"] == r["short"]["cycle"]
    assert short["spectrum"] == last["index"] and short["cycle"] == r["short"]["cycle"]
    assert short["R_HF_ohm"] < 0.5 * first["R_HF_ohm"] == pytest.approx(0.5 * short["reference_R_HF_ohm"])
    events = [json.loads(x) for x in (outcome.folder / EVENTS).read_text().splitlines()]
    assert [e["cycle"] for e in events if e["kind"] == "eis_short"] == [short["cycle"]]
    assert "EIS short signal" in r["headline"]
    assert reading.current_A == 0.0


@pytest.mark.parametrize("cycles", ["1-x", "0,5", "every 0", " , "])
def test_a_bad_eis_cycle_list_is_refused_naming_it(cycles, tmp_path):
    result = cli.invoke(app, ["run", "ce-cycling", "-p", "eis=true", "-p", f"eis_cycles={cycles}",
                              "--store", str(tmp_path / "store")])
    assert result.exit_code == 2
    assert "eis_cycles" in result.output and "Traceback" not in result.output
