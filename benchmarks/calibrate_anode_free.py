"""Print what each anode-free collector preset simulates beside the numbers it was calibrated to.

Runs the protocols of tests/sim_instruments/test_anode_free.py straight on the model, over ``--seeds`` seeds:
Wang et al. (Adv. Mater. 2024): reservoir CE, plating/stripping overpotentials at the published cycles,
nucleation dips, the short cycle, the 0.05 mA/cm² activation and the cycle-1 EIS resistances (ohm at Wang's
0.503 cm²); Sandoval et al.: first-cycle CE, mean CE of 10 cycles, deposition overpotential and short cycle at
0.25 mA/cm² with a 0.5 V cutoff. Each line reads "simulated median [min-max] | published". The short cycle is
log-normal with a 15 % spread, so a median of 15 seeds scatters by ≈±5 % around the preset's median.

    python benchmarks/calibrate_anode_free.py [--seeds 15] [--preset Mg/W-Cu]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from labctl.sim_instruments.anode_free import PRESETS, AnodeFreeCell

_TEST_MODULE = Path(__file__).resolve().parents[1] / "tests" / "sim_instruments" / "test_anode_free.py"
AREA_CM2 = 0.503  # Wang's 8 mm Li counter electrode

# Wang: reservoir CE; overpotentials (plating, stripping) mV by cycle; nucleation dips (1st, 2nd plating), mV;
# short cycle; activation (reversible mAh/cm², ICE); EIS at cycle 1 (R_b, R_SEI + R_ct), ohm.
WANG = {
    "Cu": (0.9832, {1: (57, 45), 25: (58, 54)}, (55, 41), "26", None, (None, 13.6)),
    "W-Cu": (0.9873, {1: (41, 35), 25: (28, 24)}, (47, 49), "25", None, (89.0, 28.2)),
    "Mg-Cu": (0.9875, {1: (33, 34), 193: (46, 45)}, (28, 0), "193", (0.17, 0.66), (None, 5.8)),
    "Mg/W-Cu": (0.9883, {1: (32, 30), 300: (29, 28)}, (27, 0), "> 300", (0.23, 0.72), (54.0, 6.2)),
}
# Sandoval: first CE, mean CE of cycles 1-10, deposition overpotential mV, short cycle.
SANDOVAL = {"Ag-Cu": (0.9978, 0.9906, "8-10", "≈30"), "Au-Cu": (0.9998, 0.9912, "8-10", "≈15")}


def _load_protocols():
    """The test module, so calibration and acceptance tests run the very same protocols."""
    spec = importlib.util.spec_from_file_location("_anode_free_tests", _TEST_MODULE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


protocols = _load_protocols()


def spread(values: Sequence[float], fmt: str) -> str:
    return f"{statistics.median(values):{fmt}} [{min(values):{fmt}}-{max(values):{fmt}}]"


def over_seeds(name: str, seeds: range, measure: Callable[[AnodeFreeCell], float]) -> list[float]:
    return [measure(AnodeFreeCell(name, area_cm2=AREA_CM2, seed=s)) for s in seeds]


def short_cycle(cell: AnodeFreeCell, density: float, **options: float) -> float:
    protocols.cycle(cell, density, 2000, dt_s=60.0, **options)
    return cell.plating_count


def wang(name: str, seeds: range) -> None:
    ce, overpotentials, dips, short, active, eis = WANG[name]
    values = over_seeds(name, seeds, protocols.reservoir_ce)
    print(f"  reservoir CE %          {spread([100 * v for v in values], '.2f')} | {100 * ce:.2f}")
    last = max(overpotentials)
    cycles = protocols.cycle(AnodeFreeCell(protocols.without_shorts(name), area_cm2=AREA_CM2), 1.0, last, dt_s=60.0)
    for n, (plating, stripping) in overpotentials.items():
        c = cycles[n - 1]
        print(f"  cycle {n:<3} plate/strip mV {c.plating_mV:5.1f} / {c.stripping_mV:5.1f} | {plating} / {stripping}")
    first = over_seeds(name, seeds, lambda cell: protocols.cycle(cell, 1.0, 2)[0].dip_mV)
    second = over_seeds(name, seeds, lambda cell: protocols.cycle(cell, 1.0, 2)[1].dip_mV)
    print(f"  nucleation dip mV       {spread(first, '.1f')} / {spread(second, '.1f')} | {dips[0]} / {dips[1]}")
    print(
        f"  short, plating cycle    {spread(over_seeds(name, seeds, lambda c: short_cycle(c, 1.0)), '.0f')} | {short}"
    )
    if active:
        q, ice = protocols.activation(AnodeFreeCell(name, area_cm2=AREA_CM2))
        print(f"  activation mAh/cm², ICE {q:.3f}, {100 * ice:.0f} % | {active[0]}, {100 * active[1]:.0f} %")
    cell = AnodeFreeCell(name, area_cm2=AREA_CM2)
    published = " / ".join("-" if r is None else f"{r}" for r in eis)
    print(
        f"  EIS cycle 1 R_b / R_int {cell.bulk_resistance_ohm:.1f} / {cell.interface_resistance_ohm:.1f} ohm "
        f"| {published}"
    )


def sandoval(name: str, seeds: range) -> None:
    first, mean_10, deposition, short = SANDOVAL[name]
    runs = [
        protocols.cycle(AnodeFreeCell(name, area_cm2=AREA_CM2, seed=s), 0.25, 10, cutoff_V=0.5, hours=4.0, dt_s=60.0)
        for s in seeds
    ]
    runs = [r for r in runs if len(r) == 10]
    print(f"  first CE %              {spread([100 * r[0].ce for r in runs], '.2f')} | {100 * first:.2f}")
    means = [100 * statistics.mean(c.ce for c in r) for r in runs]
    print(f"  mean CE 1-10 %          {spread(means, '.2f')} | {100 * mean_10:.2f}")
    print(f"  deposition mV, cycle 1  {spread([r[0].plating_mV for r in runs], '.1f')} | {deposition}")
    values = over_seeds(name, seeds, lambda c: short_cycle(c, 0.25, cutoff_V=0.5, hours=4.0))
    print(f"  short, plating cycle    {spread(values, '.0f')} | {short}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=15, help="cells per figure")
    parser.add_argument("--preset", choices=list(PRESETS), help="only this preset")
    args = parser.parse_args()
    seeds = range(args.seeds)
    for name in [args.preset] if args.preset else PRESETS:
        films = " on ".join(f"{t:g} nm {metal}" for metal, t in reversed(PRESETS[name].films))
        print(f"{name}: {films + ' on Cu' if films else 'bare Cu'}")
        (wang if name in WANG else sandoval)(name, seeds)


if __name__ == "__main__":
    main()
