"""How fast labctl reads other instruments' files, against the readers it was checked against, in the same run.

Each line reads the same file with labctl's reader and with the peer (galvani for EC-Lab .mpr, batterydf for EC-Lab
.mpt and LAND text), best of ``--repeat`` runs, and prints the ratio labctl / peer (below 1: labctl is faster). The
LAND file is a labctl-written export of a simulated 20-cycle test (``--rows`` records), the EC-Lab files the real
fixtures of tests/imports/fixtures/eclab. Test dependencies (galvani, batterydf) must be installed.

    python benchmarks/import_speed.py [--repeat 5] [--rows 50000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from labctl.imports.eclab import read_mpr, read_mpt
from labctl.imports.land import read_land
from labctl.sim_instruments.land_export import cycling_series, write_sintef_csv

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "imports" / "fixtures" / "eclab"


def best_s(read: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        read()
        times.append(time.perf_counter() - start)
    return min(times)


def galvani_mpr(path: Path) -> object:
    from galvani import BioLogic

    return BioLogic.MPRfile(str(path)).data


def batterydf(path: Path, plugin: str | None = None) -> object:
    import bdf

    return bdf.read(path, plugin=plugin) if plugin else bdf.read(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rows", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        series = cycling_series(cycles=max(1, args.rows // 300), interval_s=5.0).iloc[: args.rows]
        land = write_sintef_csv(series, Path(tmp) / "land.csv")
        cases = [
            ("EC-Lab .mpr (GCPL)", lambda: read_mpr(FIXTURES / "v1150_GCPL.mpr"), "galvani",
             lambda: galvani_mpr(FIXTURES / "v1150_GCPL.mpr")),
            ("EC-Lab .mpt (GCPL)", lambda: read_mpt(FIXTURES / "v1150_GCPL.mpt"), "batterydf",
             lambda: batterydf(FIXTURES / "v1150_GCPL.mpt")),
            (f"LAND csv ({len(series)} rows)", lambda: read_land(land), "batterydf",
             lambda: batterydf(land, "landt-csv")),
        ]
        for name, ours, peer, theirs in cases:
            a, b = best_s(ours, args.repeat), best_s(theirs, args.repeat)
            print(f"{name:28s} labctl {a * 1000:8.1f} ms   {peer:9s} {b * 1000:8.1f} ms   ratio {a / b:5.2f}")


if __name__ == "__main__":
    main()
