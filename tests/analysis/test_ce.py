"""CE analysis (PROTOCOLS.md §2, science.md §2.1-2.2) on synthetic traces whose answers are known by construction.

A :class:`Recorder` writes BDF rows as the live procedures store them: one step per constant-current half-cycle,
samples at 1, 2, 4, 8, 16 s and then every ``dt_s``, the instrument's cumulative capacity counters, and the step's
reading at rest after the instrument ended it (``end="rest"``) or, as an Arbin logs it, a sample at the very end
(``end="point"``). Voltages are functions of the fraction of the half-cycle's charge passed.
"""

from __future__ import annotations

import json
import math
import random
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pandas as pd
import pytest
from typer.testing import CliRunner

from labctl.analysis.ce import CEAnalyzer, CEFinding, analyze_ce, headline, table
from labctl.cli import app

AREA_CM2 = 1.131  # 12 mm electrodes (Wang et al.)
FIRST_S = (1.0, 2.0, 4.0, 8.0, 16.0)  # the procedures' first samples of a segment
CUTOFF_V = 0.2
Voltage = Callable[[float], float]


@dataclass
class Recorder:
    dt_s: float = 30.0
    end: str = "rest"
    rows: list[dict] = field(default_factory=list)
    t_s: float = 0.0
    step: int = 0
    charge_Ah: float = 0.0
    discharge_Ah: float = 0.0

    def run(
        self,
        density: float,
        capacity: float,
        voltage: Voltage,
        cycle: int,
        *,
        until: float = math.inf,
        rest_V: float = 0.0,
    ) -> Recorder:
        """A half-cycle at ``density`` mA/cm² (signed) passing ``capacity`` mAh/cm² with V = voltage(fraction);
        with ``until`` the data stop at that fraction (the test was stopped)."""
        self.step += 1
        current_A = density * AREA_CM2 / 1000
        duration_s = capacity / abs(density) * 3600
        offsets = list(FIRST_S)
        while offsets[-1] < duration_s:
            offsets.append(offsets[-1] + self.dt_s)
        running = [o for o in offsets if o < duration_s] + ([duration_s] if self.end == "point" else [])
        for o in running:
            if o / duration_s > until:
                return self
            self._row(self.t_s + o, voltage(o / duration_s), current_A, cycle, o)
        if until < math.inf:
            return self
        self._count(current_A, duration_s)
        if self.end == "rest":
            self.t_s += offsets[-1]
            self._row(self.t_s, rest_V, 0.0, cycle, 0.0)
        else:
            self.t_s += duration_s
        return self

    def _row(self, t_s: float, voltage_V: float, current_A: float, cycle: int, offset_s: float) -> None:
        charge, discharge = self._counted(current_A, offset_s)
        self.rows.append({"Test Time / s": t_s, "Voltage / V": voltage_V, "Current / A": current_A,
                          "Cycle Count / 1": cycle, "Step Count / 1": self.step, "Charging Capacity / Ah": charge,
                          "Discharging Capacity / Ah": discharge})  # fmt: skip

    def _counted(self, current_A: float, offset_s: float) -> tuple[float, float]:
        q = abs(current_A) * offset_s / 3600
        return (self.charge_Ah + q, self.discharge_Ah) if current_A > 0 else (self.charge_Ah, self.discharge_Ah + q)

    def _count(self, current_A: float, duration_s: float) -> None:
        self.charge_Ah, self.discharge_Ah = self._counted(current_A, duration_s)

    def frame(self, *drop: str) -> pd.DataFrame:
        return pd.DataFrame(self.rows).drop(columns=list(drop))


def plating(plateau: float = -0.032, dip: float = -0.057, dip_until: float = 0.02) -> Voltage:
    """Nucleation dip in the first ``dip_until`` of the charge, then the plateau (Wang: 32 mV, dip 55/27 mV)."""
    return lambda f: dip if f <= dip_until else plateau


def stripping(plateau: float = 0.030, end_V: float = CUTOFF_V, tail_from: float = 0.95) -> Voltage:
    """Li-metal plateau, then a linear rise to ``end_V`` at the end of the charge (de-alloying and spike)."""
    return lambda f: plateau if f <= tail_from else plateau + (end_V - plateau) * (f - tail_from) / (1 - tail_from)


def flat(voltage_V: float) -> Voltage:
    return lambda f: voltage_V


def ramp(start_V: float, end_V: float) -> Voltage:
    return lambda f: start_V + (end_V - start_V) * f


def cycling(ces: list[float], rec: Recorder | None = None, first_cycle: int = 1) -> Recorder:
    """Long cycling at 1 mA/cm²: plate 1 mAh/cm², strip to the cutoff at the given CE (%)."""
    rec = rec or Recorder()
    for k, ce in enumerate(ces, start=first_cycle):
        rec.run(-1.0, 1.0, plating(dip=-0.057 if k == 1 else -0.040), k)
        rec.run(1.0, ce / 100, stripping(), k)
    return rec


def reservoir(q_s: float, n: int = 10, final: Voltage | None = None) -> Recorder:
    """Wang's reservoir protocol at 1 mA/cm²: formation 1 → strip 0.85 to the cutoff, Q_T = 5, n × Q_c = 1,
    final strip ``q_s`` to the cutoff; cycles numbered as the ce-reservoir procedure does."""
    rec = Recorder()
    rec.run(-1.0, 1.0, plating(), 0).run(1.0, 0.85, stripping(), 0)
    rec.run(-1.0, 5.0, plating(dip=-0.040), 1)
    for k in range(1, n + 1):
        rec.run(1.0, 1.0, flat(0.030), k).run(-1.0, 1.0, plating(dip=-0.040), k)
    return rec.run(1.0, q_s, final or stripping(), n + 1)


def add(analyzer: CEAnalyzer, r: dict) -> list[CEFinding]:
    return analyzer.add(r["Test Time / s"], r["Voltage / V"], r["Current / A"], r["Cycle Count / 1"],
                        r["Step Count / 1"], r["Charging Capacity / Ah"], r["Discharging Capacity / Ah"])  # fmt: skip


def feed(analyzer: CEAnalyzer, rows: list[dict]) -> list[CEFinding]:
    """Feed the analyzer as a live procedure does: every row until a short, then finish()."""
    found: list[CEFinding] = []
    for r in rows:
        found += add(analyzer, r)
        if analyzer.failure is not None:
            break
    return found + analyzer.finish()


def live(rows: list[dict], **options) -> tuple[dict, list[CEFinding]]:
    analyzer = CEAnalyzer(AREA_CM2, **options)
    found = feed(analyzer, rows)
    return analyzer.result().to_dict(), found


def cli(*args: str):
    return CliRunner().invoke(app, ["analyze", "ce", *args])


# -- long cycling on a half cell


@pytest.mark.parametrize("end", ["rest", "point"])
def test_per_cycle_ce_capacities_overpotentials_and_end_reasons_are_exact(end):
    ces = [97.0, 98.5, 98.83, 99.0, 99.1]
    result, found = live(cycling(ces, Recorder(end=end)).rows, protocol="cycling", capacity_mAh_cm2=1.0)
    rows = result["cycles"]
    assert [r["cycle"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["plate_mAh_cm2"] for r in rows] == pytest.approx([1.0] * 5, rel=1e-6)
    assert [r["strip_mAh_cm2"] for r in rows] == pytest.approx([ce / 100 for ce in ces], rel=1e-6)
    assert [r["ce_percent"] for r in rows] == pytest.approx(ces, rel=1e-6)
    assert {(r["plate_end"], r["strip_end"]) for r in rows} == {("capacity", "voltage")}
    assert [r["plating_overpotential_mV"] for r in rows] == pytest.approx([32.0] * 5)
    assert [r["stripping_overpotential_mV"] for r in rows] == pytest.approx([30.0] * 5)
    assert [r["nucleation_overpotential_mV"] for r in rows] == pytest.approx([25.0] + [8.0] * 4)
    assert all(r["flags"] == [] for r in rows)
    assert result["mean_ce_percent"] == pytest.approx(sum(ces) / 5, rel=1e-6)
    assert result["last_ce_percent"] == pytest.approx(99.1)
    assert result["short"] is None and result["cycles_completed"] == 5
    assert result["headline"] == (
        "5 cycles: mean CE 98.49 %, last CE 99.10 %; plating/stripping overpotential 32/30 mV at cycle 1; no short"
    )
    completed = [f for f in found if f.kind == "cycle_completed"]
    assert [f.row for f in completed] == rows  # each row is reported live as its cycle completes


def test_without_counters_the_integrated_current_gives_the_capacities():
    ces = [98.0, 99.0]
    exact = analyze_ce(cycling(ces, Recorder(end="point")).frame("Charging Capacity / Ah", "Discharging Capacity / Ah"),
                       AREA_CM2, protocol="cycling")  # fmt: skip
    # exact from the previous row on; the first row has none before it, so cycle 1 misses its first second
    assert [r.plate_mAh_cm2 for r in exact.cycles] == pytest.approx([1 - 1 / 3600, 1.0], rel=1e-6)
    assert [r.strip_mAh_cm2 for r in exact.cycles] == pytest.approx([ce / 100 for ce in ces], rel=1e-6)
    # with the reading at rest, the step's last interval is counted at its current: at most one interval long
    rested = analyze_ce(cycling(ces).frame("Charging Capacity / Ah", "Discharging Capacity / Ah"), AREA_CM2,
                        protocol="cycling")  # fmt: skip
    for row, ce in zip(rested.cycles, ces, strict=True):
        assert row.plate_mAh_cm2 == pytest.approx(1.0, abs=30 / 3600)
        assert row.strip_mAh_cm2 == pytest.approx(ce / 100, abs=30 / 3600)


def test_no_dip_gives_zero_nucleation_overpotential():
    rec = Recorder()
    rec.run(-1.0, 1.0, flat(-0.020), 1).run(1.0, 0.99, stripping(0.020), 1)
    row = analyze_ce(rec.frame(), AREA_CM2, protocol="cycling").cycles[0]
    assert row.nucleation_overpotential_mV == 0.0
    assert row.plating_overpotential_mV == pytest.approx(20.0)


def test_alloying_before_plating_is_not_the_plateau_and_the_de_alloying_tail_is_not_stripping():
    """Ag interlayer: plating first lithiates the alloy at positive V (science.md §4.3), stripping ends with
    de-alloying plateaus far above the Li-metal one."""
    alloying = lambda f: 0.08 if f < 0.06 else -0.025  # noqa: E731
    de_alloying = lambda f: 0.025 if f < 0.4 else (0.15 if f < 0.95 else 0.2)  # noqa: E731 a thick interlayer
    rec = Recorder()
    rec.run(-1.0, 1.0, alloying, 1).run(1.0, 0.98, de_alloying, 1)
    row = analyze_ce(rec.frame(), AREA_CM2, protocol="cycling").cycles[0]
    assert row.plating_overpotential_mV == pytest.approx(25.0)
    assert row.stripping_overpotential_mV == pytest.approx(25.0)
    assert row.nucleation_overpotential_mV == 0.0
    assert row.strip_end == "voltage"


def test_time_limit_voltage_limit_and_stopped_ends_with_the_lower_bound_flag():
    """Sandoval's variant: 0.25 mA/cm², 1 mAh/cm², −0.5…0.5 V window, here a 5 h half-cycle time limit."""
    rec = Recorder(dt_s=60)
    rec.run(-0.25, 1.0, plating(), 1).run(0.25, 0.98, stripping(end_V=0.5), 1)  # capacity / voltage
    rec.run(-0.25, 1.0, plating(), 2).run(0.18, 0.9, flat(0.040), 2)  # 5 h strip below the cutoff: time
    rec.run(-0.15, 0.75, plating(), 3).run(0.25, 0.74, stripping(end_V=0.5), 3)  # 5 h plating: time
    rec.run(-0.25, 0.6, ramp(-0.03, -0.5), 4).run(0.25, 0.59, stripping(end_V=0.5), 4)  # plating to −0.5 V
    rec.run(-0.25, 1.0, plating(), 5).run(0.25, 0.98, stripping(end_V=0.5), 5, until=0.5)  # test stopped
    result, _ = live(rec.rows, protocol="cycling", cutoff_V=0.5, lower_V=-0.5, time_limit_s=5 * 3600,
                     capacity_mAh_cm2=1.0)  # fmt: skip
    rows = result["cycles"]
    assert [(r["plate_end"], r["strip_end"]) for r in rows] == [
        ("capacity", "voltage"), ("capacity", "time"), ("time", "voltage"), ("voltage", "voltage"),
        ("capacity", "stopped")]  # fmt: skip
    assert rows[1]["ce_percent"] == pytest.approx(90.0) and rows[1]["flags"] == ["ce_lower_bound"]
    assert rows[2]["plate_mAh_cm2"] == pytest.approx(0.75)
    assert rows[4]["flags"] == ["incomplete"]
    assert result["cycles_completed"] == 4 and result["short"] is None
    assert "1 cycles ended by time (CE lower bound)" in result["headline"]


def test_a_strip_that_emptied_the_electrode_ended_at_the_cutoff_even_near_the_time_limit():
    """Sandoval's variant with 2 h half-cycles: plating ends by time, and a strip at CE 99.7 % lasts within 1 % of
    2 h. Its end spike fell between samples, but the electrode then rests far above 0 V: no Li metal was left, it
    reached the cutoff. One that rests at 0 V still holds Li metal: time ended it, a lower bound."""
    rec = Recorder(dt_s=60)
    rec.run(-0.25, 0.5, plating(), 1).run(0.25, 0.4985, flat(0.010), 1, rest_V=0.64)
    rec.run(-0.25, 0.5, plating(), 2).run(0.24, 0.48, flat(0.010), 2, rest_V=0.0001)
    result, _ = live(rec.rows, protocol="cycling", cutoff_V=0.5, time_limit_s=2 * 3600, capacity_mAh_cm2=1.0)
    assert [(r["plate_end"], r["strip_end"]) for r in result["cycles"]] == [("time", "voltage"), ("time", "time")]
    assert [r["flags"] for r in result["cycles"]] == [[], ["ce_lower_bound"]]


def test_ce_above_100_is_flagged_but_is_not_a_short():
    result, _ = live(cycling([98.0, 102.0, 99.0]).rows, protocol="cycling")
    assert [r["flags"] for r in result["cycles"]] == [[], ["ce_above_100"], []]
    assert result["short"] is None and "1 cycles above 100 %" in result["headline"]


# -- shorts in long cycling


def test_voltage_collapse_during_plating_is_a_short_at_its_cycle():
    rec = cycling([98.8] * 8)
    collapsed = lambda f: -0.040 if f <= 0.02 else (-0.032 if f < 0.5 else -0.0023)  # noqa: E731 2 Ω short
    rec.run(-1.0, 1.0, collapsed, 9).run(1.0, 0.98, stripping(), 9)
    cycling([98.8] * 3, rec, first_cycle=10)
    onset_s = next(r["Test Time / s"] for r in rec.rows if r["Cycle Count / 1"] == 9 and r["Voltage / V"] == -0.0023)
    result, found = live(rec.rows, protocol="cycling", capacity_mAh_cm2=1.0)
    short = result["short"]
    assert short["cycle"] == 9 and short["criterion"] == "collapse" and short["ends_test"]
    assert short["t_s"] == onset_s
    assert found[-2].kind == "hard_short"  # found live, before the partial cycle is closed by finish()
    assert [r["cycle"] for r in result["cycles"]] == list(range(1, 10))
    assert result["cycles"][-1]["plate_end"] == "stopped" and result["cycles"][-1]["flags"] == ["incomplete"]
    assert result["cycles_completed"] == 8
    assert result["headline"].startswith("Short at cycle 9 (collapse at ")
    assert "8 cycles: mean CE 98.80 %" in result["headline"] and "no short" not in result["headline"]


def test_an_intact_cell_with_noisy_plateaus_has_no_short():
    noisy = lambda f: -0.032 * (1 + 0.05 * math.sin(977 * f))  # noqa: E731
    rec = Recorder()
    for k in range(1, 9):
        rec.run(-1.0, 1.0, noisy, k).run(1.0, 0.988, stripping(), k)
    assert live(rec.rows, protocol="cycling")[0]["short"] is None


def test_a_strip_running_past_the_plated_charge_is_a_short():
    rec = cycling([98.8] * 5)
    rec.run(-1.0, 1.0, plating(dip=-0.040), 6).run(1.0, 1.5, flat(0.028), 6)  # the 1.5× time guard ends it
    result, _ = live(rec.rows, protocol="cycling")
    short = result["short"]
    assert short["cycle"] == 6 and short["criterion"] == "overrun"
    passed_s = short["t_s"] - next(r["Test Time / s"] for r in rec.rows if r["Step Count / 1"] == 12)
    assert 1.1 * 3600 <= passed_s + 1 <= 1.1 * 3600 + 30  # caught at the first sample past 110 % of the plating


def test_a_strip_ended_by_time_having_passed_the_plated_charge_is_a_short():
    rec = Recorder(dt_s=60)
    rec.run(-0.25, 1.0, plating(), 1).run(0.25, 0.98, stripping(end_V=0.5), 1)
    rec.run(-0.25, 1.0, plating(), 2).run(0.25, 1.0, flat(0.012), 2)  # 4 h: the time limit, never the cutoff
    result, _ = live(rec.rows, protocol="cycling", cutoff_V=0.5, time_limit_s=4 * 3600, capacity_mAh_cm2=1.0)
    assert result["short"]["criterion"] == "time_end" and result["short"]["cycle"] == 2
    assert result["cycles"][1]["strip_end"] == "time"


def test_an_unseen_limit_is_told_apart_by_the_lithium_there_was_to_strip():
    """Strips that end below the cutoff, with no time limit given: one that took less than was plated hit the
    cutoff between samples; one that took more ran on a time guard, and could not polarise."""
    rec = cycling([98.8])
    rec.run(-1.0, 1.0, plating(dip=-0.040), 2).run(1.0, 0.985, flat(0.030), 2)
    rec.run(-1.0, 1.0, plating(dip=-0.040), 3).run(1.0, 1.05, flat(0.030), 3)
    result, _ = live(rec.rows, protocol="cycling")
    assert [r["strip_end"] for r in result["cycles"]] == ["voltage", "voltage", "time"]
    assert result["short"]["criterion"] == "time_end" and result["short"]["cycle"] == 3
    assert "ran into a time limit" in result["short"]["detail"]


# -- reservoir CE


def test_reservoir_ce_is_the_formula_of_the_measured_charges():
    q_s = 0.9883 * 15 - 10  # Wang's Mg/W-Cu: 98.83 %
    result, _ = live(reservoir(q_s).rows, protocol="reservoir")
    r = result["reservoir"]
    rows = result["cycles"]
    assert [(x["phase"], x["cycle"]) for x in rows] == [("formation", 0), ("reservoir", 1)] + [
        ("cycle", k) for k in range(1, 11)] + [("final", 11)]  # fmt: skip
    cycled = [x for x in rows if x["phase"] == "cycle"]
    formula = (sum(x["strip_mAh_cm2"] for x in cycled) + r["Q_S_mAh_cm2"]) / (
        sum(x["plate_mAh_cm2"] for x in cycled) + r["Q_T_mAh_cm2"])  # fmt: skip
    assert r["ce_percent"] == pytest.approx(100 * formula, rel=1e-6)
    assert r["ce_percent"] == pytest.approx(98.83, rel=1e-6)
    assert r["n"] == 10 and r["Q_c_mAh_cm2"] == pytest.approx(1.0) and r["Q_T_mAh_cm2"] == pytest.approx(5.0)
    assert r["Q_S_mAh_cm2"] == pytest.approx(q_s, rel=1e-6)
    assert r["formation_plate_mAh_cm2"] == pytest.approx(1.0) and r["formation_strip_mAh_cm2"] == pytest.approx(0.85)
    assert r["initial_ce_percent"] == pytest.approx(85.0)
    assert r["final_strip_end"] == "voltage" and r["flags"] == []
    assert [x["strip_end"] for x in cycled] == ["capacity"] * 10
    assert result["headline"] == (
        "Reservoir CE = 98.83 % (n = 10, Q_c = 1 mAh/cm², Q_T = 5 mAh/cm², Q_S = 4.82 mAh/cm²); initial CE 85 %"
    )


def test_reservoir_phases_come_from_the_order_of_half_cycles_not_the_cycle_count():
    rec = reservoir(4.8, n=3)
    counted = analyze_ce(rec.frame(), AREA_CM2, protocol="reservoir").to_dict()
    uncounted = analyze_ce(rec.frame("Cycle Count / 1"), AREA_CM2, protocol="reservoir").to_dict()
    assert uncounted == counted  # without Cycle Count the rows are numbered as the procedure numbers them
    renumbered = [dict(r, **{"Cycle Count / 1": 7}) for r in rec.rows]
    assert live(renumbered, protocol="reservoir")[0]["reservoir"] == counted["reservoir"]


def test_reservoir_final_strip_ended_by_time_is_a_lower_bound():
    rec = Recorder()
    rec.run(-2.0, 1.0, plating(), 0).run(2.0, 0.85, stripping(), 0).run(-2.0, 5.0, plating(), 1)
    for k in range(1, 4):
        rec.run(2.0, 1.0, flat(0.030), k).run(-2.0, 1.0, plating(), k)
    rec.run(1.0, 4.0, flat(0.030), 4)  # 4 h at 1 mA/cm²: the time limit, below the cutoff
    r = live(rec.rows, protocol="reservoir", time_limit_s=4 * 3600)[0]["reservoir"]
    assert r["final_strip_end"] == "time" and r["flags"] == ["lower_bound"]
    assert r["ce_percent"] == pytest.approx(100 * (3 + 4.0) / (3 + 5), rel=1e-6)


def test_reservoir_final_strip_past_the_lithium_plated_is_a_suspect_short():
    result, _ = live(reservoir(9.0, n=2, final=flat(0.030)).rows, protocol="reservoir")  # the 1.5× time guard
    r = result["reservoir"]
    assert result["short"]["criterion"] == "overrun" and result["short"]["cycle"] == 3
    assert r["flags"] == ["suspect_short"] and r["final_strip_end"] == "stopped"
    assert r["Q_S_mAh_cm2"] == pytest.approx(6.0, abs=30 / 3600)  # stopped at Q_T + the formation plating
    assert result["headline"].startswith("Short at cycle 3 (overrun") and "suspect short" in result["headline"]


# -- full cells


def full_cell(discharges: list[float], rec: Recorder | None = None, charge_V: Voltage | None = None) -> Recorder:
    """1 mA/cm² charges to 4.3 V and discharges to 2.8 V, CE 99.5 % (the first cycle 75 %)."""
    rec = rec or Recorder(dt_s=60)
    for k, d in enumerate(discharges, start=1):
        rec.run(1.0, d / (0.75 if k == 1 else 0.995), charge_V or ramp(3.6, 4.3), k, rest_V=4.1)
        rec.run(-1.0, d, ramp(4.1, 2.8), k, rest_V=3.3)
    return rec


def test_full_cell_capacities_ce_retention_and_fade():
    discharges = [0.95] + [1.0 - 0.01 * k for k in range(6)]  # cycle 1 activates; fades 1 % per cycle after
    result, _ = live(full_cell(discharges).rows, protocol="fullcell", upper_V=4.3, lower_V=2.8,
                     cathode_mass_mg=5.655, reference_cycle=2)  # fmt: skip
    rows = result["cycles"]
    assert [r["discharge_mAh_cm2"] for r in rows] == pytest.approx(discharges, rel=1e-6)
    assert [r["discharge_mAh_g"] for r in rows] == pytest.approx([200 * d for d in discharges], rel=1e-6)
    assert [r["ce_percent"] for r in rows] == pytest.approx([75.0] + [99.5] * 6, rel=1e-6)
    assert [r["retention_percent"] for r in rows] == pytest.approx([None] + [100 - k for k in range(6)])
    assert [r["fade_percent_per_cycle"] for r in rows] == pytest.approx([None, None] + [1.0] * 5)
    assert result["fade_percent_per_cycle"] == pytest.approx(1.0) and result["reference_cycle"] == 2
    assert {(r["charge_end"], r["discharge_end"]) for r in rows} == {("voltage", "voltage")}
    assert rows[1]["mean_charge_V"] == pytest.approx(3.95, abs=0.01)
    assert rows[1]["mean_discharge_V"] == pytest.approx(3.45, abs=0.01)
    assert result["headline"] == (
        "7 cycles: discharge 190 mAh/g at cycle 7, retention 95 % of cycle 2 (1 %/cycle); mean CE 96.00 %; no short"
    )


def test_full_cell_charge_to_a_depth_of_charge_ends_by_capacity():
    rec = Recorder(dt_s=60)
    for k in range(1, 4):
        rec.run(1.0, 0.5, ramp(3.6, 3.85), k).run(-1.0, 0.4975, ramp(3.8, 2.8), k)
    for options in ({}, {"capacity_mAh_cm2": 0.5}):
        result, _ = live(rec.rows, protocol="fullcell", upper_V=4.3, lower_V=2.8, **options)
        assert [r["charge_end"] for r in result["cycles"]] == ["capacity"] * 3
        assert result["retention_percent"] == pytest.approx(100.0) and result["reference_cycle"] == 1


def test_full_cell_voltage_falling_while_charging_is_a_short():
    rec = full_cell([1.0, 0.99])
    shorting = lambda f: 3.6 + 0.7 * f if f < 0.6 else 3.6 + 0.42 - 0.25  # noqa: E731
    full_cell([0.98], rec, charge_V=shorting)
    result, _ = live(rec.rows, protocol="fullcell", upper_V=4.3, lower_V=2.8)
    assert result["short"]["criterion"] == "voltage_drop" and result["short"]["cycle"] == 1  # the third cycle's
    assert len(result["cycles"]) == 3 and result["cycles"][-1]["charge_end"] == "stopped"
    assert live(full_cell([1.0, 0.99, 0.98]).rows, protocol="fullcell", upper_V=4.3)[0]["short"] is None


# -- offline (CSV, CLI) equals live


@pytest.mark.parametrize(("trace", "options", "cli_options"), [
    (lambda: cycling([97.0 + k / 10 for k in range(25)]), {"protocol": "cycling", "capacity_mAh_cm2": 1.0},
     ["--protocol", "cycling", "--capacity", "1"]),
    (lambda: reservoir(4.82), {"protocol": "reservoir"}, ["--protocol", "reservoir"]),
    (lambda: full_cell([0.95, 1.0, 0.99]), {"protocol": "fullcell", "upper_V": 4.3, "lower_V": 2.8,
     "cathode_mass_mg": 5.655}, ["--protocol", "fullcell", "--upper", "4.3", "--lower", "2.8",
                                 "--cathode-mass", "5.655"]),
])  # fmt: skip
def test_offline_analysis_of_the_stored_csv_equals_the_live_result(trace, options, cli_options, tmp_path):
    rows = trace().rows
    path = tmp_path / "timeseries.bdf.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    run = cli(str(path), "--area", str(AREA_CM2), *cli_options, "--json")
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout) == live(rows, **options)[0]


def test_offline_equals_live_when_the_file_keeps_10_digits_as_the_run_store_does(tmp_path):
    rng = random.Random(7)
    rec = Recorder(dt_s=math.pi * 10)
    for k in range(1, 13):
        rec.run(-1.0, 1.0, lambda f: -0.032 - 1e-4 * rng.random() - (0.02 if f < 0.02 else 0.0), k)
        rec.run(1.0, 0.98 + 0.01 * rng.random(), stripping(0.030 + 1e-4 * rng.random()), k)
    path = tmp_path / "timeseries.bdf.csv"
    rec.frame().to_csv(path, index=False, float_format="%.10g")
    run = cli(str(path), "--area", str(AREA_CM2), "--protocol", "cycling", "--capacity", "1", "--json")
    assert json.loads(run.stdout) == live(rec.rows, protocol="cycling", capacity_mAh_cm2=1.0)[0]


def test_offline_analysis_of_a_shorted_cell_equals_the_live_result(tmp_path):
    rec = cycling([98.8] * 4)
    rec.run(-1.0, 1.0, plating(dip=-0.040), 5).run(1.0, 1.5, flat(0.028), 5)
    path = tmp_path / "timeseries.bdf.csv"
    rec.frame().to_csv(path, index=False)
    run = cli(str(path), "--area", str(AREA_CM2), "--protocol", "cycling", "--json")
    assert json.loads(run.stdout) == live(rec.rows, protocol="cycling")[0]


def test_the_printed_table_has_units_and_elides_long_tables(tmp_path):
    path = tmp_path / "timeseries.bdf.csv"
    cycling([98.0 + k / 100 for k in range(30)]).frame().to_csv(path, index=False)
    args = ["analyze", "ce", str(path), "--area", str(AREA_CM2), "--protocol", "cycling"]
    elided = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert elided.exit_code == 0, elided.output
    assert "30 cycles: mean CE 98.14 %" in elided.output
    assert "│ 10 " in elided.output and "│ 15 " not in elided.output and "│ 21 " in elided.output
    assert "plated (mAh/cm²)" in elided.output and "plating η (mV)" in elided.output
    assert "│ 15 " in CliRunner().invoke(app, [*args, "--all"], env={"COLUMNS": "200"}).output
    headers, cells = table(analyze_ce(pd.read_csv(path), AREA_CM2, protocol="cycling").to_dict())
    assert "CE (%)" in headers and "stripped (mAh/cm²)" in headers and "nucleation η (mV)" in headers
    assert len(cells) == 21 and cells[10] == ["…"] * len(headers)
    assert cells[1][headers.index("CE (%)")] == "98.01"


@pytest.mark.parametrize(("args", "option"), [
    (["--area", "0"], "--area"),
    (["--area", "nan"], "--area"),
    (["--protocol", "aurbach"], "--protocol"),
    (["--time-limit", "-4"], "--time-limit"),
    (["--capacity", "0"], "--capacity"),
    (["--cathode-mass", "-5"], "--cathode-mass"),
    (["--cutoff", "0"], "--cutoff"),
    (["--lower", "0.1"], "--lower"),
])  # fmt: skip
def test_bad_cli_input_exits_2_naming_the_option(args, option, tmp_path):
    path = tmp_path / "timeseries.bdf.csv"
    cycling([98.0]).frame().to_csv(path, index=False)
    defaults = {"--area": str(AREA_CM2), "--protocol": "cycling"}
    for name, value in defaults.items():
        if name not in args:
            args = [*args, name, value]
    run = cli(str(path), *args)
    assert run.exit_code == 2
    assert option in run.output and "Traceback" not in run.output


def test_a_missing_or_unreadable_file_exits_2_naming_it(tmp_path):
    run = cli(str(tmp_path / "nope.csv"), "--area", "1", "--protocol", "cycling")
    assert run.exit_code == 2 and "nope.csv" in " ".join(run.output.split())
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"Test Time / s": [1.0], "Voltage / V": ["x"], "Current / A": [0.0]}).to_csv(bad, index=False)
    run = cli(str(bad), "--area", "1", "--protocol", "cycling")
    assert run.exit_code == 2 and "Voltage / V" in run.output


# -- the analyzer's contract


def test_memory_stays_flat_over_300_cycles():
    """Only the half-cycle in progress keeps its samples: later cycles cost their table row (under 2 kB), not their
    samples (each kept sample would cost a tuple of three floats, ≥ 100 B: 13 kB per cycle here)."""

    def rows(cycles: int) -> Iterator[dict]:
        rec = Recorder(dt_s=60)
        for k in range(1, cycles + 1):
            cycling([98.8], rec, first_cycle=k)
            yield from rec.rows
            rec.rows.clear()

    analyzer = CEAnalyzer(AREA_CM2, protocol="cycling")
    at_cycle_end: dict[int, int] = {}
    tracemalloc.start()
    try:
        for r in rows(300):
            add(analyzer, r)
            if r["Current / A"] == 0 and r["Step Count / 1"] % 2 == 0:
                at_cycle_end[r["Cycle Count / 1"]] = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert (at_cycle_end[300] - at_cycle_end[30]) / 270 < 2000
    analyzer.finish()
    assert len(analyzer.result().cycles) == 300


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="area_cm2"):
        CEAnalyzer(0, protocol="cycling")
    with pytest.raises(ValueError, match="protocol"):
        CEAnalyzer(1.0, protocol="aurbach")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lower_V"):
        CEAnalyzer(1.0, protocol="cycling", lower_V=0.2)
    with pytest.raises(ValueError, match="upper_V"):
        CEAnalyzer(1.0, protocol="fullcell", upper_V=2.5, lower_V=2.8)
    with pytest.raises(ValueError, match="time_limit_s"):
        CEAnalyzer(1.0, protocol="cycling", time_limit_s=-1)
    analyzer = CEAnalyzer(1.0, protocol="cycling")
    analyzer.add(10.0, -0.03, -0.001, 1, 1)
    with pytest.raises(ValueError, match="backwards"):
        analyzer.add(5.0, -0.03, -0.001, 1, 1)
    with pytest.raises(ValueError, match="voltage_V"):
        analyzer.add(20.0, math.nan, -0.001, 1, 1)


def test_headline_of_an_empty_test():
    result = CEAnalyzer(1.0, protocol="cycling").result().to_dict()
    assert result["headline"] == "No complete cycle in the data (no short)"
    assert headline(CEAnalyzer(1.0, protocol="reservoir").result().to_dict()).startswith("Reservoir CE incomplete")
