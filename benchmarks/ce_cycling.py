"""Wall time and memory of a 300-cycle long-cycling CE test (600 h of test time) on the simulated bench.

The whole stack runs: the ce-cycling procedure, the Arbin CTI driver over TCP to the Arbin emulator, the
virtual clock over its control channel, the anode-free half-cell model (Mg/W-Cu, which does not short within
300 cycles), the live CE analyzer and the run store. The reference is real time (a real cycler runs 1 h of
test per hour). Goal: <= 60 s wall, and flat memory: the resident set size after the last cycle is no larger
than after cycle 30 (beyond allocator noise), because nothing keeps the samples in memory.

    python benchmarks/ce_cycling.py [--cycles 300] [--cell Mg/W-Cu] [--seed 0]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from labctl.bench import open_bench
from labctl.engine.runner import Listeners, Runner
from labctl.procedures.ce import CyclingCEProcedure
from labctl.store import Store
from labctl.store.folder import TIMESERIES


def rss_MB() -> float:
    """This process's resident set size now, MB (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=300)
    parser.add_argument("--cell", default="Mg/W-Cu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    memory: dict[int, float] = {}

    def on_event(event: dict) -> None:
        if event.get("kind") == "segment_ended" and event.get("label") == "stripping":
            memory[len(memory) + 1] = rss_MB()

    procedure = CyclingCEProcedure()
    procedure.cycles = args.cycles
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        with open_bench("sim", sim_overrides={"cell": args.cell, "seed": args.seed},
                        sim_defaults=procedure.sim_defaults()) as bench:
            outcome = Runner(Store(Path(tmp)), Listeners(event=on_event)).run(procedure, bench)
        wall = time.perf_counter() - start
        hours = float((outcome.folder / TIMESERIES).read_text().splitlines()[-1].split(",")[0]) / 3600
    result = outcome.result or {}
    print(f"{args.cycles} cycles of {args.cell}: {outcome.status}; {result.get('headline', outcome.error)}")
    print(f"wall {wall:.1f} s for {hours:.0f} h of test time = {hours * 3600 / wall:,.0f}x real time "
          f"(goal: 600 h in <= 60 s, i.e. >= 36,000x)")
    early = memory.get(30) or memory.get(min(memory, default=0), 0.0)
    last = memory.get(max(memory, default=0), 0.0)
    print(f"resident memory: {early:.1f} MB after cycle 30, {last:.1f} MB after cycle {max(memory, default=0)} "
          f"(ratio {last / early if early else float('nan'):.3f}; goal: flat)")


if __name__ == "__main__":
    main()
