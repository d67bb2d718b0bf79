"""Tune each interlayer preset's short hazard λ0 so the simulated fixed-time CCD matches patent Table 1.

For each preset, bisects log λ0 until the population of failing steps (over ``--seeds`` seeds, the protocol of
tests/sim_instruments/test_cells.py run straight on the model) is centred on the patent's CCD step: the
cumulative-hazard equivalents -ln(1-F) of the fraction failed by the end of the step before and of the target
step straddle ln 2 symmetrically in log space. Prints λ0 to paste into sim_instruments/presets.py, then the
spread of failing steps with it, over all seeds and over the test's seeds 0-14.

    python benchmarks/calibrate_cells.py [--seeds 201] [--preset Ag|Mg]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import math
import statistics
from pathlib import Path

from labctl.sim_instruments.cells import SymmetricCell
from labctl.sim_instruments.presets import PRESETS, InterlayerPreset

_TEST_MODULE = Path(__file__).resolve().parents[1] / "tests" / "sim_instruments" / "test_cells.py"


def _load_protocol():
    """The test module's protocol harness, so calibration and acceptance test run the very same protocol."""
    spec = importlib.util.spec_from_file_location("_cell_tests", _TEST_MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run_fixed_time_ccd


run_fixed_time_ccd = _load_protocol()


def failing_steps(preset: InterlayerPreset, seeds: range) -> list[tuple[int, str]]:
    """(failing step, failure) per seed; a cell that survives all 30 steps counts as step 31."""
    out = []
    for seed in seeds:
        step, mode, _t = run_fixed_time_ccd(SymmetricCell(preset, seed=seed))
        out.append((step or 31, mode or "survived"))
    return out


def centring_error(steps: list[int], target: int) -> float:
    """log(-ln(1-F_before)) + log(-ln(1-F_target)) - 2·log(ln 2): zero when the target step is centred."""
    n = len(steps)

    def hazard(fraction: float) -> float:
        fraction = min(max(fraction, 0.5 / n), 1 - 0.5 / n)
        return math.log(-math.log(1 - fraction))

    before = sum(s <= target - 1 for s in steps) / n
    by_target = sum(s <= target for s in steps) / n
    return hazard(before) + hazard(by_target) - 2 * math.log(math.log(2))


def calibrate(preset: InterlayerPreset, seeds: range, iterations: int = 14) -> float:
    target = round(preset.patent_ccd_mA_cm2 * 10)
    low, high = math.log(1e-3), math.log(1e2)
    for _ in range(iterations):
        mid = (low + high) / 2
        trial = dataclasses.replace(preset, hazard_per_mAh_cm2=math.exp(mid))
        error = centring_error([s for s, _ in failing_steps(trial, seeds)], target)
        low, high = (low, mid) if error > 0 else (mid, high)
    return float(f"{math.exp((low + high) / 2):.2g}")


def describe(preset: InterlayerPreset, seeds: range) -> str:
    results = failing_steps(preset, seeds)
    steps = sorted(s / 10 for s, _ in results)
    quartiles = statistics.quantiles(steps, n=4)
    shorts = sum(mode == "short" for _, mode in results)
    return (f"median {statistics.median(steps):.1f}, IQR {quartiles[0]:.2f}-{quartiles[2]:.2f}, "
            f"range {steps[0]:.1f}-{steps[-1]:.1f} mA/cm2; {shorts}/{len(results)} by short")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=201, help="population size for the calibration")
    parser.add_argument("--preset", choices=list(PRESETS), help="calibrate only this preset")
    args = parser.parse_args()
    population, test_seeds = range(1000, 1000 + args.seeds), range(15)
    for name in [args.preset] if args.preset else PRESETS:
        preset = PRESETS[name]
        tuned = dataclasses.replace(preset, hazard_per_mAh_cm2=calibrate(preset, population))
        print(f"{name}: hazard_per_mAh_cm2 = {tuned.hazard_per_mAh_cm2} (m = {tuned.hazard_exponent}, "
              f"patent CCD {preset.patent_ccd_mA_cm2})")
        print(f"  {args.seeds} seeds: {describe(tuned, population)}")
        print(f"  seeds 0-14: {describe(tuned, test_seeds)}")


if __name__ == "__main__":
    main()
