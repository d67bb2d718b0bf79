"""The CE variants as separate analyzers over one half-cycle stream, and what their results say in a few words."""

from __future__ import annotations

import numpy as np
import pytest

from labctl.analysis.ce import VARIANTS, CEAnalyzer, brief
from labctl.analysis.ce_fullcell import FullCellAnalyzer
from labctl.analysis.ce_halfcell import CyclingAnalyzer
from labctl.analysis.ce_halfcycle import Counters
from labctl.analysis.ce_reservoir import ReservoirAnalyzer
from labctl.analysis.ce_stream import CEStream
from labctl.analysis.eis import analyze_spectrum

AREA_CM2 = 1.0
I_A = 1e-3  # 1 mA/cm² on 1 cm²


def half_cycle(analyzer: CEStream, t0: float, sign: int, hours: float, v: float, rest_V: float, step: int,
               cycle: int) -> float:
    """A constant-current half-cycle sampled every 60 s and its reading at rest 1 s after it ended; returns the time
    of that reading (s)."""
    end = t0 + hours * 3600 - 1
    for t in np.arange(t0 + 60, end + 1e-9, 60):
        analyzer.add(float(t), v, sign * I_A, cycle, step)
    analyzer.add(end + 1, rest_V, 0.0, cycle, step)
    return end + 1


def cycled(ces: list[float]) -> CEStream:
    """A half cell plating 1 mAh/cm² and stripping to the 0.5 V cutoff at the given CEs (%)."""
    analyzer = CEAnalyzer(AREA_CM2, protocol="cycling", cutoff_V=0.5, capacity_mAh_cm2=1.0)
    analyzer.add(0.0, 0.0, 0.0, 1, 0)  # the cell at rest when the test starts
    t, step = 0.0, 0
    for k, ce in enumerate(ces, start=1):
        t = half_cycle(analyzer, t, -1, 1.0, -0.03, 0.0, step := step + 1, k)
        t = half_cycle(analyzer, t, 1, ce / 100, 0.03, 0.5, step := step + 1, k)
    analyzer.finish()
    return analyzer


@pytest.mark.parametrize(("variant", "cls"), [("reservoir", ReservoirAnalyzer), ("cycling", CyclingAnalyzer),
                                              ("fullcell", FullCellAnalyzer)])
def test_each_variant_has_its_own_analyzer_named_by_its_variant(variant, cls):
    analyzer = CEAnalyzer(AREA_CM2, protocol=variant)
    assert type(analyzer) is cls and VARIANTS[variant] is cls
    assert analyzer.result().variant == variant and analyzer.result().to_dict()["protocol"] == variant


def test_variants_are_listed_in_the_order_the_cli_names_them():
    assert list(VARIANTS) == ["reservoir", "cycling", "fullcell"]


def test_a_variant_ignores_the_voltage_limits_of_another():
    assert FullCellAnalyzer(AREA_CM2, cutoff_V=-1.0, upper_V=4.3).cutoff_V is None  # a half cell's cutoff
    assert CyclingAnalyzer(AREA_CM2, upper_V=4.3).upper_V is None
    assert CyclingAnalyzer(AREA_CM2).lower_V == -0.5  # the plating safety limit by default


def test_counters_count_from_zero_when_the_first_row_fits_a_start_at_zero_and_across_a_reset():
    counters = Counters()
    assert counters.step(60.0, 1e-3, 60 / 3600 * 1e-3, 0.0) == (60.0, (pytest.approx(60 / 3600 * 1e-3), 0.0))
    assert counters.step(120.0, 1e-3, 1e-5, 0.0) == (60.0, (1e-5, 0.0))  # fell: reset, counts from zero
    assert counters.step(180.0, 1e-3, None, None) == (60.0, None)


def test_brief_gives_the_mean_ce_over_complete_cycles():
    assert cycled([98.0, 99.0]).result().brief() == "mean CE 98.50 % over 2 cycles"


def test_brief_says_when_nothing_is_complete_and_names_a_short():
    assert CEAnalyzer(AREA_CM2, protocol="reservoir").result().brief() == "reservoir CE incomplete"
    result = CEAnalyzer(AREA_CM2, protocol="fullcell").result().to_dict()
    assert brief(result) == "no complete cycle"
    shorted = result | {"short": {"cycle": 7, "t_s": 3600.0, "criterion": "voltage_drop", "detail": "V fell"}}
    assert brief(shorted) == "no complete cycle, short at cycle 7"


def test_brief_of_a_reservoir_ce_and_of_a_full_cells_retention():
    reservoir = CEAnalyzer(AREA_CM2, protocol="reservoir").result().to_dict()
    reservoir["reservoir"] = {"ce_percent": 98.834}
    assert brief(reservoir) == "reservoir CE 98.83 %"
    full = {"protocol": "fullcell", "short": None, "retention_percent": 95.12, "mean_ce_percent": 99.5,
            "cycles": [{"cycle": 100, "ce_percent": 99.5, "flags": []}]}
    assert brief(full) == "retention 95.1 % at cycle 100"


def test_an_eis_result_owns_its_headline_and_brief():
    f = np.logspace(6, -1, 50)
    z = 30 + 40 / (1 + 1j * 2 * np.pi * f * 40 * 1e-7)  # R_b 30 Ω, R_tot 70 Ω: one arc
    result = analyze_spectrum(f, z, area_cm2=1.0, circuit="R0-p(R1,C1)")
    assert result.headline() == "R_b = 30 Ω; R_tot = 70 Ω; ASR = 20 Ω·cm² per interface; KK pass"
    assert result.brief() == "R_b 30 Ω, R_tot 70 Ω, KK pass"
