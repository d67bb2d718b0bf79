"""Simulated vs published numbers for the full-cell and collector-cell presets.

Runs the protocols of tests/sim_instruments/test_full_cell.py and test_collector_cell.py straight on the models
(the same helpers, loaded from the test modules) and prints, beside the published values:
- Wang et al. (Adv. Mater. 2024): the first 0.1C cycle of each anode-free NMC811 cell (Fig. 6b), the rate
  capability of Mg/W-Cu (Fig. 6c), the 0.33C fade after activation (Fig. 6a), the 50 % depth-of-charge test
  (Fig. S33) and the 4.2 V hold currents of the collector|SE|collector cells (Fig. S26);
- the Corning patent (US 2025/0266506, Example 2, Comparative Examples 5-6): the charging CCD of the LCO|garnet|
  interlayer|Li cells over ``--seeds`` seeds.

    python benchmarks/calibrate_full_cell.py [--seeds 20] [--skip-doc]
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import statistics
from pathlib import Path
from types import ModuleType

from labctl.sim_instruments.collector_cell import WANG_AREA_CM2, CollectorCell
from labctl.sim_instruments.full_cell import FullCell

_TESTS = Path(__file__).resolve().parents[1] / "tests" / "sim_instruments"

FIRST_CYCLE = {"NMC|Cu": (265, 192), "NMC|W-Cu": (265, 189), "NMC|Mg-Cu": (270, 191), "NMC|Mg/W-Cu": (269, 192)}
RATES_C = (0.1, 0.2, 0.3, 0.5, 1.0, 2.0)
RATE_mAh_g = (183, 155, 138, 115, 74, 30)
ONSET_CYCLE = {"NMC|Cu": 15, "NMC|W-Cu": 21, "NMC|Mg-Cu": 50, "NMC|Mg/W-Cu": 120}
CHARGING_CCD = {  # patent: charging CCD, mA/cm², and where it shorted
    "LCO|Ag|Mg|Li": "1.5, > 30 cycles at 1.5",
    "LCO|Ag|Li": "0.6, shorted in cycle 6 (1.0)",
    "LCO|Au|Mg|Li": "1.5",
    "LCO|Au|Li": "shorted at 1.0",
}
HOLD_uA = {"Cu|Cu": (39, 35, 16), "W-Cu|W-Cu": (3, 3, 2), "Mg-Cu|Mg-Cu": (3, 2, 1), "Mg/W-Cu|Mg/W-Cu": (4, 2, 1)}


def _load(name: str) -> ModuleType:
    """A test module, for its protocol helpers: calibration and acceptance run the very same protocols."""
    spec = importlib.util.spec_from_file_location(f"_{name}", _TESTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


full = _load("test_full_cell")
holds = _load("test_collector_cell")


def first_cycles() -> None:
    print("First cycle at 0.1C, 2.8-4.3 V (Wang Fig. 6b): charge/discharge mAh/g, ICE")
    for name, (charge, discharge) in FIRST_CYCLE.items():
        c, d = full.cycle(FullCell(name, area_cm2=full.AREA_CM2), 0.1)
        print(f"  {name:13s} simulated {c:5.1f}/{d:5.1f} ({d / c:.1%})   published {charge}/{discharge} "
              f"({discharge / charge:.0%})")  # fmt: skip


def rate_capability() -> None:
    print("Rate capability of NMC|Mg/W-Cu after activation, 3 cycles per rate (Wang Fig. 6c): discharge mAh/g")
    for rate, got, published in zip(RATES_C, full.rate_capability("NMC|Mg/W-Cu", RATES_C), RATE_mAh_g, strict=True):
        print(f"  {rate:4g}C  simulated {got:6.1f}   published {published:4d}   ({got / published - 1:+.1%})")


def fade() -> None:
    print("0.33C after activation, 100 % depth of charge (Wang Fig. 6a): discharge mAh/g")
    for name, published in ONSET_CYCLE.items():
        cell, _ = full.activated(name)
        d = [full.cycle(cell, 0.33)[1] for _ in range(150)]
        onset = full.fade_onset(d)
        late = (d[129] - d[149]) / d[0] / 20
        print(f"  {name:13s} first {d[0]:5.1f} (135-139)  fade onset cycle {onset} ({published})  "
              f"cycle 120 {d[119]:5.1f}  cycle 150 {d[149]:5.1f}  retention {d[149] / d[0]:.1%}  "
              f"cycles 130-150 {late:.2%}/cycle")  # fmt: skip
    print("  published Mg/W-Cu: 122 mAh/g at cycle 120 (0.06 %/cycle), 0.58 %/cycle over 130-150, 76 % after 150")


def half_depth() -> None:
    print("50 % depth of charge, 100 mAh/g per 0.33C charge after activation (Wang Fig. S33)")
    cell, _ = full.activated("NMC|Mg/W-Cu")
    runs = [full.cycle(cell, 0.33, depth=0.5) for _ in range(256)]
    later = [d for _c, d in runs[1:]]
    mean_ce = statistics.mean(d / c for c, d in runs[1:])
    print(f"  first 0.33C cycle CE {runs[0][1] / runs[0][0]:.1%} (84 %); then {min(later):.2f}-{max(later):.2f} mAh/g "
          f"(100 ± 0.5), mean CE {mean_ce:.3%} (99.96 %) over 256 cycles")  # fmt: skip


def charging_ccd(seeds: int) -> None:
    print(f"Charging CCD, patent Example 2 ladder + 30 cycles at 1.5 mA/cm², seeds 0-{seeds - 1}")
    for name, published in CHARGING_CCD.items():
        outcome = collections.Counter()
        for seed in range(seeds):
            cell = FullCell(name, area_cm2=1.0, seed=seed)
            charges = full.charging_ccd_ladder(cell)
            outcome[f"short at {charges[-1][0]:g} (cycle {len(charges)})" if cell.shorted else "no short"] += 1
        text = ", ".join(f"{k}: {n}" for k, n in outcome.most_common())
        print(f"  {name:13s} {text}   published {published}")


def hold_currents() -> None:
    print("4.2 V hold of collector|SE|collector cells, 12 mm (Wang Fig. S26): µA after 10, 50, 90 h")
    for name, published in HOLD_uA.items():
        got = holds.hold(CollectorCell(name, area_cm2=WANG_AREA_CM2), 4.2, (10.0, 50.0, 90.0))
        print(f"  {name:16s} simulated {', '.join(f'{i * 1e6:5.2f}' for i in got)}   published "
              f"{', '.join(str(i) for i in published)}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds for the charging CCD")
    parser.add_argument("--skip-doc", action="store_true", help="leave out the 256-cycle 50 %% depth-of-charge run")
    args = parser.parse_args()
    first_cycles()
    rate_capability()
    fade()
    if not args.skip_doc:
        half_depth()
    charging_ccd(args.seeds)
    hold_currents()


if __name__ == "__main__":
    main()
