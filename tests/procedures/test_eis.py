"""EIS and in-situ EIS on the simulated benches: procedure → Solartron driver → PyVISA socket → emulator → cell, or
procedure → SP-200 driver → EClib bridge over a socket → EClib layer → fake DLL → SP-200 emulator → cell (alone, or
measuring while an Arbin cycles: Sandoval et al.'s bench)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from labctl.cli import app
from labctl.sim_instruments.cells import SymmetricCell
from labctl.store.folder import EVENTS, SPECTRA, TIMESERIES

cli = CliRunner()
AREA = math.pi * 0.6**2  # the procedures' default 12 mm electrode, cm²


def run_json(*args: str) -> dict:
    result = cli.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


BENCHES = ["sim", "sim-sp200", "sim-arbin-sp200"]


@pytest.mark.parametrize("bench", BENCHES)
def test_eis_on_the_sim_bench_fits_the_virtual_cell(bench):
    out = run_json("run", "eis", "--bench", bench, "--cell", "bare", "-p", "thickness=0.1")
    folder = Path(out["folder"])
    cell = SymmetricCell("bare", area_cm2=AREA)  # the same virtual cell, fresh: its resistances
    result = out["result"]
    assert result["R_b_ohm"] == pytest.approx(cell.bulk_resistance_ohm, rel=0.02)
    assert result["R_tot_ohm"] == pytest.approx(cell.total_resistance_ohm, rel=0.03)
    assert result["asr_per_interface_ohm_cm2"] == pytest.approx(10.6, rel=0.05)  # patent Table 1, bare
    assert result["conductivity_mS_cm"] == pytest.approx(0.1 / (cell.bulk_resistance_ohm * AREA) * 1000, rel=0.02)
    assert result["kk_pass"] is True
    spectra = pd.read_csv(folder / SPECTRA)
    assert len(spectra) == 71 and spectra["Spectrum Index / 1"].unique().tolist() == [1]  # 1 MHz → 0.1 Hz
    assert (folder / "spectrum-001.z").exists()
    assert not (folder / TIMESERIES).exists()
    # offline analysis of the stored spectrum reproduces the live fit
    offline = run_json("analyze", "eis", str(folder / SPECTRA), "--area", str(AREA), "--thickness", "0.1")
    for key in ("R_b_ohm", "R_tot_ohm", "asr_per_interface_ohm_cm2"):
        assert offline[key] == pytest.approx(result[key], rel=1e-6)


@pytest.mark.parametrize("bench", BENCHES)
def test_insitu_eis_shows_r_tot_growing_through_stripping_and_links_spectra_to_cycle_and_step(bench):
    out = run_json("run", "insitu-eis", "--bench", bench, "-p", "cycles=2")
    assert out["status"] == "finished"
    folder = Path(out["folder"])
    cycles = out["result"]["cycles"]
    assert [c["cycle"] for c in cycles] == [1, 2]
    for c in cycles:
        assert c["ce"] == pytest.approx(1.0, abs=0.01)
        r_tot = c["R_tot_stripping_ohm"]
        # contact loss on the stripped electrode: R_tot at the end of stripping well above its start
        assert r_tot[-1] > 1.2 * r_tot[0]
    spectra = pd.read_csv(folder / SPECTRA)
    series = pd.read_csv(folder / TIMESERIES)
    per_spectrum = spectra.groupby("Spectrum Index / 1").first()
    assert len(per_spectrum) == out["result"]["spectra"] >= 2 * (2 * 23 + 1)
    # the first spectrum is the pristine cell's, before any current (cycle 0, step 0); every later one names a
    # cycle and a step that exist in the time series, at a time inside the run
    assert per_spectrum[["Cycle Count / 1", "Step Count / 1"]].iloc[0].tolist() == [0, 0]
    assert set(per_spectrum["Step Count / 1"].iloc[1:]) <= set(series["Step Count / 1"])
    assert set(per_spectrum["Cycle Count / 1"]) == {0, 1, 2}
    assert per_spectrum["Test Time / s"].is_monotonic_increasing
    # the current was interrupted for every spectrum: half-cycles end on charge, never by time
    ends = [json.loads(x) for x in (folder / EVENTS).read_text().splitlines() if "half_cycle_ended" in x]
    assert {e["ended_by"] for e in ends} == {"charge"}
