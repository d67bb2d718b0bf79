"""The sweep's re-read rule and the EIS procedure's re-measure after a Kramers–Kronig failure, on a scripted
analyzer: which read is kept, what is flagged, what the result and headline say."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labctl.analysis.circuits import parse_circuit
from labctl.procedures.eis import EISProcedure
from labctl.procedures.spectrum import log_frequencies, measure_spectrum

ONE_ARC = ("R0-p(R1,CPE1)-W1", (50.0, 27.0, 2e-6, 0.85, 5.0))
LEADS = ("L0-R0-p(R1,CPE1)-W1", (5e-6, 5.0, 20.0, 1e-6, 0.9, 5.0))  # a strongly inductive top of the sweep
FREQUENCIES = log_frequencies(1e6, 0.1, 10)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def wait(self, seconds: float, *, stop_at_event: bool = True) -> None:
        self.t += seconds

    def now(self) -> float:
        return self.t


class Analyzer:
    """Measures ``circuit`` with ``noise`` (relative rms); ``wrong`` maps (frequency index, read number) to a factor
    applied to that read; ``drift`` grows R1 (and shrinks Q1) by that fraction over the first and later sweeps."""

    def __init__(self, circuit=ONE_ARC, wrong=None, drift=(0.0, 0.0), noise=0.001) -> None:
        self.model, self.parameters = parse_circuit(circuit[0]), circuit[1]
        self.wrong, self.drift, self.noise = wrong or {}, drift, noise
        self.reads: dict[int, int] = {}
        self.triggered: list[float] = []
        self.rng = np.random.default_rng(3)

    def configure(self, **settings: float) -> None:
        pass

    def sweep(self, frequencies, clock):
        for f in frequencies:
            self.trigger(f)
            clock.wait(self.point_duration_s(f), stop_at_event=False)
            yield f, self.read(f)

    def point_duration_s(self, frequency_Hz: float) -> float:
        return max(0.2, 3 / frequency_Hz)

    def trigger(self, frequency_Hz: float) -> None:
        self.triggered.append(frequency_Hz)

    def read(self, frequency_Hz: float) -> complex:
        i = FREQUENCIES.index(frequency_Hz)
        self.reads[i] = self.reads.get(i, 0) + 1
        sweep = (len(self.triggered) - 1) // len(FREQUENCIES)
        growth = 1 + self.drift[min(sweep, 1)] * i / len(FREQUENCIES)
        parameters = list(self.parameters)
        if self.drift != (0.0, 0.0):
            parameters[1] *= growth
            parameters[2] /= growth
        z = self.model.impedance([frequency_Hz], parameters)[0]
        noise = complex(*self.rng.standard_normal(2)) * self.noise / math.sqrt(2)
        return z * (1 + noise) * self.wrong.get((i, self.reads[i]), 1.0)


def sweep(analyzer: Analyzer, **options):
    return measure_spectrum(analyzer, Clock(), FREQUENCIES, **options)


def test_a_wrong_read_is_measured_again_and_replaced():
    analyzer = Analyzer(wrong={(20, 1): 3.0})
    events = []
    result = sweep(analyzer, on_reread=lambda r: events.append(r.event()))
    truth = parse_circuit(ONE_ARC[0]).impedance([FREQUENCIES[20]], ONE_ARC[1])[0]
    assert result.complete and analyzer.reads[20] == 2
    assert result.points[20][1] == pytest.approx(truth, rel=0.01)
    assert [r.verdict for r in result.rereads] == ["replaced"] and result.flagged_Hz == []
    assert events[0]["kind"] == "point_remeasured" and events[0]["verdict"] == "replaced"
    assert events[0]["frequency_Hz"] == FREQUENCIES[20]


def test_a_real_sharp_feature_read_twice_alike_is_kept_not_flagged():
    """Without noise to hide it, the lead inductance bends the top point 1.2 % away from an extrapolation of the
    others; its second read agrees with the first, so the point is real: the first read is kept, nothing flagged."""
    analyzer = Analyzer(LEADS, noise=0.0)
    result = sweep(analyzer)
    assert [r.frequency_Hz for r in result.rereads] == [FREQUENCIES[0]]
    assert result.rereads[0].verdict == "confirmed" and result.flagged_Hz == []
    assert result.points[0][1] == result.rereads[0].first


def test_two_reads_that_disagree_with_each_other_and_the_neighbours_are_flagged():
    analyzer = Analyzer(wrong={(20, 1): 3.0, (20, 2): 0.5})
    result = sweep(analyzer)
    assert [r.verdict for r in result.rereads] == ["flagged"]
    assert result.flagged_Hz == [FREQUENCIES[20]]
    assert result.points[20][1] == result.rereads[0].second  # kept, never dropped


def test_a_stopped_sweep_is_returned_unchecked():
    analyzer = Analyzer(wrong={(2, 1): 3.0})
    result = sweep(analyzer, should_stop=lambda: len(analyzer.triggered) >= 10)
    assert not result.complete and len(result.points) == 10 and result.rereads == []


def run_eis(analyzer: Analyzer) -> tuple[list[dict], list[dict], dict]:
    """Execute the EIS procedure on ``analyzer``: the spectra it stored, its events and its result."""
    procedure = EISProcedure(bias_from="dc_bias")
    records: dict[str, list] = {"spectrum": [], "event": [], "result": [], "export": [], "progress": []}
    procedure.emit = lambda topic, record: records[topic].append(record)
    procedure.should_stop = lambda: False
    procedure.analyzer, procedure.clock, procedure.bias_V = analyzer, Clock(), 0.0
    procedure.execute()
    return records["spectrum"], records["event"], records["result"][0] | {"exports": records["export"]}


def test_a_spectrum_failing_kk_is_measured_again_and_the_passing_one_kept():
    spectra, events, result = run_eis(Analyzer(drift=(1.0, 0.0)))  # the cell drifts during the first sweep only
    assert [s["index"] for s in spectra] == [1, 2]
    assert spectra[0]["test_time_s"] == 0.0 < spectra[1]["test_time_s"]
    remeasured = [e for e in events if e["kind"] == "spectrum_remeasured"]
    assert remeasured == [{"kind": "spectrum_remeasured", "spectrum": 1, "remeasured_as": 2, "kk_pass": True,
                           "message": remeasured[0]["message"]}]
    assert result["kk_pass"] and result["remeasured_from_spectrum"] == 1
    assert [e["name"] for e in result["exports"]] == ["spectrum-002.z"]
    assert not result["headline"].startswith("spectrum FAILED")


def test_a_spectrum_failing_kk_twice_is_kept_and_said_to_fail():
    spectra, events, result = run_eis(Analyzer(drift=(1.0, 1.0)))
    assert len(spectra) == 2 and not result["kk_pass"]
    assert result["headline"].startswith("spectrum FAILED the Kramers–Kronig check twice (re-measured)")
    assert "fails too" in next(e["message"] for e in events if e["kind"] == "spectrum_remeasured")


def test_the_result_lists_flagged_points_and_the_headline_leads_with_them():
    """Two reads 3 % off either way: flagged, though the spectrum passes Lin-KK (a point 50 % off would fail it,
    and the re-measured spectrum would be kept instead)."""
    spectra, events, result = run_eis(Analyzer(wrong={(20, 1): 1.03, (20, 2): 0.97}))
    assert len(spectra) == 1 and result["kk_pass"] and result["flagged_points_Hz"] == [FREQUENCIES[20]]
    assert result["points_remeasured_Hz"] == [FREQUENCIES[20]]
    assert result["headline"].startswith("1 point flagged (two reads disagree)")
    assert result["brief"].endswith(", 1 point flagged")
    assert [e["verdict"] for e in events if e["kind"] == "point_remeasured"] == ["flagged"]


def test_a_clean_spectrum_is_measured_once_and_says_nothing_more():
    spectra, events, result = run_eis(Analyzer())
    assert len(spectra) == 1 and result["kk_pass"]
    assert not {"flagged_points_Hz", "points_remeasured_Hz", "remeasured_from_spectrum"} & set(result)
    assert not [e for e in events if "remeasured" in e["kind"]]
