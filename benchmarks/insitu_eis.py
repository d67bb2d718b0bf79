"""Wall time of a 5-cycle in-situ EIS run on the simulated bench (goal: <= 10 s).

The whole stack runs: the procedure, the Arbin CTI driver and the Solartron 1260 driver (PyVISA over a
socket) to their emulators sharing one virtual cell, the virtual clock, a fit and a Kramers-Kronig check
of every spectrum, and the store. The reference is real time (Sandoval et al.'s 5 cycles of 2 x 4 h plus
a spectrum every 10 min take about 45 h on the bench).

    python benchmarks/insitu_eis.py [--cycles 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from labctl.bench import open_bench
from labctl.engine.runner import Runner
from labctl.procedures.insitu_eis import InSituEISProcedure
from labctl.store import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=5)
    args = parser.parse_args()
    procedure = InSituEISProcedure(cycles=args.cycles)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        with open_bench("sim", sim_defaults=procedure.sim_defaults()) as bench:
            outcome = Runner(Store(Path(tmp))).run(procedure, bench)
        wall = time.perf_counter() - start
        test_h = float((outcome.folder / "timeseries.bdf.csv").read_text().splitlines()[-1].split(",")[0]) / 3600
    spectra = outcome.result["spectra"]
    print(outcome.result["headline"])
    print(f"{args.cycles} cycles: {wall:.2f} s wall for {test_h:.1f} h of test time and {spectra} spectra "
          f"({test_h * 3600 / wall:,.0f}x real time; {1000 * wall / spectra:.0f} ms per spectrum with its fit); "
          f"goal <= 10 s")


if __name__ == "__main__":
    main()
