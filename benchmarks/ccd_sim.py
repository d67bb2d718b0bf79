"""Wall time of the default CCD test on the simulated bench, and simulated hours per wall second.

The whole stack runs: the CCD procedure, the Arbin CTI driver over TCP to the Arbin emulator, the
virtual clock over its control channel, the symmetric-cell model, the detector and the run store.
The reference is real time (a real cycler runs 1 h of test per hour): the ratio printed is how many
times faster than real time the simulated bench runs. Goal: >= 20,000x (60 h in <= 10 s).

    python benchmarks/ccd_sim.py [--presets bare Ag Mg "Ag|Mg" "Mg|Ag"] [--seed 0] [--repeat 3]

Each preset runs ``--repeat`` times (the same deterministic run) and the fastest wall time counts, so
that a busy machine's pauses do not pass for the program's speed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from labctl.bench import open_bench
from labctl.engine.runner import Runner
from labctl.procedures.ccd import CCDProcedure
from labctl.store import Store
from labctl.store.folder import TIMESERIES


def run_once(preset: str, seed: int, store: Store) -> tuple[float, float, int, str]:
    """(wall s, simulated h, samples, headline) of one default CCD run."""
    procedure = CCDProcedure()
    start = time.perf_counter()
    with open_bench("sim", sim_overrides={"cell": preset, "seed": seed}, sim_defaults=procedure.sim_defaults()) as bench:
        outcome = Runner(store).run(procedure, bench)
    wall = time.perf_counter() - start
    lines = (outcome.folder / TIMESERIES).read_text().splitlines()
    simulated_h = float(lines[-1].split(",")[0]) / 3600
    return wall, simulated_h, len(lines) - 1, (outcome.result or {}).get("headline", outcome.status)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["bare", "Ag", "Mg", "Ag|Mg", "Mg|Ag"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    total_wall = total_h = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp))
        print(f"{'preset':8} {'wall s':>8} {'test h':>8} {'samples':>8} {'x real time':>12}  result")
        for preset in args.presets:
            runs = [run_once(preset, args.seed, store) for _ in range(args.repeat)]
            wall, hours, samples, headline = min(runs)
            total_wall, total_h = total_wall + wall, total_h + hours
            print(f"{preset:8} {wall:8.2f} {hours:8.2f} {samples:8d} {hours * 3600 / wall:12,.0f}  {headline}")
    print(f"\nall: {total_h:.1f} h of test time in {total_wall:.2f} s wall = "
          f"{total_h / total_wall:,.0f} simulated h per wall s = {total_h * 3600 / total_wall:,.0f}x real time "
          f"(goal >= 20,000x; 60 h would take {60 * total_wall / total_h:.1f} s)")


if __name__ == "__main__":
    main()
