"""`labctl schedule land PROCEDURE -p …`: the LANDMon steps of a procedure, checked against PROTOCOLS.md's numbers
computed here (not by the procedures), and refusals that exit 2 naming the problem."""

from __future__ import annotations

import json
import math
import re

import pytest
import typer
from typer.testing import CliRunner

from labctl.cli.schedule import schedule_app

app = typer.Typer()
app.add_typer(schedule_app, name="schedule")

AREA_12MM_CM2 = math.pi * 0.6**2  # the patent's 12 mm electrodes
PATENT_LADDER_MA_CM2 = [k / 10 for k in range(1, 31)]  # PROTOCOLS.md §1a: 0.1 to 3.0 mA/cm² in 0.1 steps


def land(*args: str):
    return CliRunner().invoke(app, ["schedule", "land", *args])


def steps(*args: str) -> list[dict]:
    result = land(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["steps"]


def refused(result, *names: str) -> None:
    """Exit 2 naming every one of ``names``, with no traceback."""
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exit_code == 2, text
    assert "Traceback" not in text
    flat = re.sub(r"\s+", "", text)
    for name in names:
        assert re.sub(r"\s+", "", name) in flat, text


def by_type(rows: list[dict], kind: str) -> list[dict]:
    return [s for s in rows if s["type"] == kind]


def test_ccd_prints_the_patent_ladder_level_by_level():
    rows = steps("ccd")
    assert len(rows) == 3 * 30 + 1 and rows[-1]["type"] == "End"
    for k, j in enumerate(PATENT_LADDER_MA_CM2):
        charge, discharge, cycle = rows[3 * k : 3 * k + 3]
        assert (charge["type"], discharge["type"], cycle["type"]) == ("CC charge", "CC discharge", "Cycle")
        for half in (charge, discharge):
            assert half["current_A"] == pytest.approx(j * AREA_12MM_CM2 / 1000)
            assert half["until_time_s"] == pytest.approx(0.5 * 3600)  # 0.5 h half-cycles
            assert half["until_charge_Ah"] is None
        assert charge["until_voltage"] == {"relation": "≥", "voltage_V": 1.0, "ends_test": True}
        assert discharge["until_voltage"] == {"relation": "≤", "voltage_V": -1.0, "ends_test": True}
        assert (cycle["goto_step"], cycle["count"]) == (charge["number"], 2)  # 2 cycles at each current


def test_ccd_table_shows_mA_hh_mm_ss_and_the_loops():
    result = land("ccd")
    assert result.exit_code == 0, result.output
    text = result.output
    for header in ("current / mA", "time / hh:mm:ss", "voltage / V", "capacity / mAh"):
        assert header in text
    assert f"{0.1 * AREA_12MM_CM2:.4g}" == "0.1131" and "0.1131" in text
    assert f"{3.0 * AREA_12MM_CM2:.4g}" in text  # the last level, 3.393 mA
    assert "00:30:00" in text and "to step 88, 2×" in text and "≤ -1 → End" in text
    assert "short detector" in text and "labctl analyze ccd" in text


def test_parameters_change_the_ladder_and_the_unit():
    rows = steps("ccd", "-p", "stop_density=0.5", "-p", "electrode_diameter=10")
    area = math.pi * 0.5**2
    currents = [s["current_A"] for s in by_type(rows, "CC charge")]
    assert currents == pytest.approx([j * area / 1000 for j in (0.1, 0.2, 0.3, 0.4, 0.5)])
    result = land("ccd", "-p", "stop_density=0.5", "-p", "electrode_diameter=10")
    assert "current / µA" in result.output and f"{0.5 * area * 1000:.4g}" in result.output  # 392.7 µA < 1 mA


def test_fixed_capacity_ends_half_cycles_on_capacity_with_a_time_guard():
    rows = steps("ccd", "-p", "variant=fixed-capacity", "-p", "half_cycle_capacity=1", "-p", "voltage_limit=0.5")
    charges = by_type(rows, "CC charge")
    for half, j in zip(charges, PATENT_LADDER_MA_CM2, strict=True):
        assert half["until_charge_Ah"] == pytest.approx(1.0 * AREA_12MM_CM2 / 1000)
        assert half["until_time_s"] == pytest.approx(1.5 * 1.0 / j * 3600)  # 1.5 × Q/j
        assert half["until_voltage"]["voltage_V"] == 0.5
    assert charges[0]["typed"]["time / hh:mm:ss"] == "15:00:00"


def test_the_long_phase_follows_the_ladder_as_one_loop():
    rows = steps("ccd", "-p", "stop_density=0.2", "-p", "then_density=1.2", "-p", "then_hours=100")
    charge, discharge, cycle, end = rows[-4:]
    assert charge["current_A"] == pytest.approx(1.2 * AREA_12MM_CM2 / 1000)
    assert charge["until_time_s"] == 3600 and discharge["type"] == "CC discharge"
    assert (cycle["goto_step"], cycle["count"], end["type"]) == (charge["number"], 50, "End")  # 100 h of 2 h cycles


def test_ce_cycling_plates_a_capacity_and_strips_to_the_cutoff():
    rows = steps("ce-cycling")  # PROTOCOLS.md §2b: 1 mAh/cm² at 1 mA/cm², strip to 0.2 V
    plate, strip, cycle, end = rows
    assert plate["type"] == "CC discharge" and strip["type"] == "CC charge"
    assert plate["current_A"] == pytest.approx(AREA_12MM_CM2 / 1000) == strip["current_A"]
    assert plate["until_charge_Ah"] == pytest.approx(AREA_12MM_CM2 / 1000)
    assert plate["until_voltage"] == {"relation": "≤", "voltage_V": -0.5, "ends_test": False}
    assert strip["until_voltage"] == {"relation": "≥", "voltage_V": 0.2, "ends_test": False}
    assert strip["until_charge_Ah"] is None and strip["until_time_s"] == pytest.approx(1.5 * 3600)
    assert (cycle["goto_step"], cycle["count"], end["type"]) == (1, 300, "End")


def test_ce_cycling_sandoval_variant():
    result = land("ce-cycling", "-p", "density=0.25", "-p", "anodic_cutoff=0.5", "-p", "time_cutoff=4")
    assert result.exit_code == 0, result.output
    assert "current / µA" in result.output and f"{0.25 * AREA_12MM_CM2 * 1000:.4g}" in result.output
    assert "04:00:00" in result.output and "≥ 0.5" in result.output and "lower" in result.output


def test_ce_reservoir_formation_reservoir_cycles_final_strip():
    rows = steps("ce-reservoir")  # PROTOCOLS.md §2a
    mAh = AREA_12MM_CM2 / 1000
    assert [s["type"] for s in rows] == ["CC discharge", "CC charge", "CC discharge", "CC charge", "CC discharge",
                                         "Cycle", "CC charge", "End"]
    assert rows[2]["until_charge_Ah"] == pytest.approx(5 * mAh)  # Q_T
    assert rows[3]["until_charge_Ah"] == pytest.approx(mAh) == rows[4]["until_charge_Ah"]  # Q_c
    assert (rows[5]["goto_step"], rows[5]["count"]) == (4, 10)
    assert rows[6]["until_charge_Ah"] is None and rows[6]["until_voltage"]["voltage_V"] == 0.2


def test_fullcell_activation_then_cycling():
    rows = steps("fullcell")  # PROTOCOLS.md §2c: 3 × 0.1C in 2.8-4.3 V, then 0.33C; 1C = 1 mAh/cm² here
    one_c_A = AREA_12MM_CM2 / 1000
    charges, cycles = by_type(rows, "CC charge"), by_type(rows, "Cycle")
    assert [c["current_A"] for c in charges] == pytest.approx([0.1 * one_c_A, 0.33 * one_c_A])
    assert [(c["count"]) for c in cycles] == [3, 150]
    assert charges[0]["until_voltage"]["voltage_V"] == 4.3
    assert by_type(rows, "CC discharge")[0]["until_voltage"]["voltage_V"] == 2.8


def test_fullcell_ccd_charges_up_the_ladder_and_discharges_at_one_density():
    rows = steps("fullcell-ccd")  # PROTOCOLS.md §1c
    charges = by_type(rows, "CC charge")
    assert [c["current_A"] * 1000 / AREA_12MM_CM2 for c in charges] == pytest.approx([0.3, 0.6, 1.0, 1.5])
    assert all(c["until_charge_Ah"] == pytest.approx(3 * AREA_12MM_CM2 / 1000) for c in charges)
    discharges = by_type(rows, "CC discharge")[1:]
    assert all(d["current_A"] == pytest.approx(0.6 * AREA_12MM_CM2 / 1000) for d in discharges)
    assert [c["count"] for c in by_type(rows, "Cycle")] == [2, 3, 3, 3 + 30]


def test_hold_is_one_constant_voltage_step():
    result = land("hold")  # PROTOCOLS.md §2d: 4.2 V for 100 h, current at 10, 50, 90 h
    assert result.exit_code == 0, result.output
    assert "CV charge" in result.output and "100:00:00" in result.output
    assert "10, 50, 90 h" in result.output


@pytest.mark.parametrize(("procedure", "why"), [("eis", "impedance"), ("insitu-eis", "impedance"),
                                                ("deposition", "deposition")])
def test_procedures_a_land_cannot_run_are_refused(procedure, why):
    refused(land(procedure), f"procedure {procedure}:", "LAND", why)


@pytest.mark.parametrize(("args", "names"), [
    (["ccd", "-p", "foo=1"], ["--param foo", "not a parameter of ccd"]),
    (["ccd", "-p", "stop_density=abc"], ["--param stop_density", "'abc'"]),
    (["ccd", "-p", "stop_density=0.05"], ["--param stop_density", "start_density"]),
    (["ccd", "-p", "stop_density"], ["name=value"]),
    (["ce-cycling", "-p", "eis=true"], ["--param eis", "LAND"]),
    (["nope"], ["procedure", "unknown 'nope'"]),
])  # fmt: skip
def test_bad_parameters_are_refused_as_labctl_run_refuses_them(args, names):
    refused(land(*args), *names)


def test_json_rows_are_the_table_as_typed():
    result = land("ce-cycling", "--json")
    schedule = json.loads(result.output)
    assert (schedule["current_unit"], schedule["capacity_unit"]) == ("mA", "mAh")
    typed = schedule["steps"][0]["typed"]
    assert typed["current / mA"] == "1.131" and typed["time / hh:mm:ss"] == "01:30:00"
    assert typed["voltage / V"] == "≤ -0.5" and typed["capacity / mAh"] == "1.131"
    assert any("short detector" in note for note in schedule["notes"])
