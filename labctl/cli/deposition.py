"""``labctl deposition``: thin-film helpers, and how runs name the film their interlayer came from.

Tooling (the ratio of substrate to crystal thickness) is calibrated from a film measured after deposition, e.g. by
FIB-SEM or profilometry: tooling_new = tooling_old × measured / monitor (PROTOCOLS.md §4; SQC-310 manual §7.3,
"Determining Tooling", which also advises averaging at least three depositions and rounding to 0.1 %).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Annotated, Any

import typer

from labctl.cli.console import fail, out
from labctl.store import Store
from labctl.store.folder import RESULTS, read_json

TOOLING_PCT = (10.0, 399.0)  # what the monitor accepts (research/instruments.md §6.5)

deposition_app = typer.Typer(no_args_is_help=True, help="Thin-film deposition: tooling calibration.")


class FilmError(ValueError):
    """A run named as a film that is not a deposition run in the store."""


def new_tooling_pct(tooling_pct: float, measured_nm: list[float], monitor_nm: list[float]) -> float:
    """tooling_old × measured / monitor, averaged over the films given, rounded to 0.1 %."""
    if not measured_nm or len(measured_nm) != len(monitor_nm):
        raise ValueError("give one --monitor thickness for each --measured thickness")
    if tooling_pct <= 0 or min(measured_nm + monitor_nm) <= 0:
        raise ValueError("tooling and thicknesses must be positive")
    ratios = [m / x for m, x in zip(measured_nm, monitor_nm, strict=True)]
    return round(tooling_pct * statistics.fmean(ratios), 1)


@deposition_app.command("calibrate-tooling")
def calibrate_tooling(
    tooling: Annotated[float, typer.Option(help="Tooling the films were deposited with, %")],
    measured: Annotated[list[float], typer.Option(help="Thickness measured on the substrate, nm (repeat per film)")],
    monitor: Annotated[list[float], typer.Option(help="Thickness the monitor showed, nm (repeat per film)")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """New tooling from measured films: tooling × measured / monitor (averaged over films, rounded to 0.1 %)."""
    try:
        tooling_new = new_tooling_pct(tooling, measured, monitor)
    except ValueError as e:
        raise fail(str(e)) from None
    low, high = TOOLING_PCT
    if as_json:
        print(
            json.dumps(
                {
                    "tooling_old_pct": tooling,
                    "measured_nm": measured,
                    "monitor_nm": monitor,
                    "tooling_new_pct": tooling_new,
                    "in_monitor_range": low <= tooling_new <= high,
                }
            )
        )
    else:
        films = " and ".join(f"{m:g}/{x:g}" for m, x in zip(measured, monitor, strict=True))
        out.print(
            f"tooling {tooling:g} % × measured/monitor {films} nm → [bold]{tooling_new:.1f} %[/]", highlight=False
        )
    if not low <= tooling_new <= high:
        raise fail(f"{tooling_new:.1f} % is outside what the monitor accepts ({low:g} to {high:g} %): "
                   "check the measurement and the crystal's position")


def film_of(store: Store, run_id: str) -> dict[str, Any]:
    """The film a deposition run made: its run record, status and stack. FilmError if there is no such run."""
    record = store.registry.get(run_id) if store.has_registry() else None
    if record is None:
        raise FilmError(f"film_run {run_id!r}: no such run in the store; `labctl runs list` shows the runs")
    if record.procedure != "deposition":
        raise FilmError(f"film_run {run_id!r} is a {record.procedure} run, not a deposition run")
    results_path = Path(record.folder) / RESULTS
    results = read_json(results_path) if results_path.exists() else {}
    film = results.get("film") or {}
    return {"run_id": run_id, "status": record.status, "stack": film.get("stack", ""), "layers": film.get("layers", [])}


def film_line(store: Store, run_id: str) -> str:
    """'Film: RUN (deposition, finished): W 30.0 nm | Mg 140.0 nm by monitor', for ``labctl runs show``."""
    try:
        film = film_of(store, run_id)
    except FilmError as e:
        return f"Film: {e}"
    stack = f"{film['stack']} by monitor" if film["stack"] else "no layers recorded"
    return f"Film: {run_id} (deposition, {film['status']}): {stack}"
