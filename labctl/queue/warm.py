"""The warm parent of ``labctl serve``'s runs: imported once by its fork server, shared by every run it forks.

A ``labctl run`` process imports numpy, scipy, pandas, pymeasure, pyvisa and every procedure, about 110 MB of
private memory each, so 96 channels would need ~11 GB for imports alone. The daemon starts its runs from a
multiprocessing fork server that imported this module: each run is forked from a process that already holds
those modules, so their pages are shared copy-on-write and a run adds only what it writes (benchmarks/
run_memory.py measures it). The garbage collector is frozen after the imports, so that its passes in a run do
not write to (and so copy) every imported object's page.
"""

from __future__ import annotations

import contextlib
import gc
import importlib

from labctl.queue.spawn import RUN_MODULES


def preload() -> None:
    """Import what a run needs, then move every object to the collector's permanent generation. A module that
    does not import is left to the run, which then imports it itself and reports the error in its log."""
    for name in RUN_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    gc.freeze()


preload()
