"""The labctl command line: run procedures, serve simulated benches, browse runs, analyse files.

Exit codes of labctl run: 0 the test ran to its end (a cell that shorted is a result), 1 an instrument or
software fault stopped it, 2 bad input (bench, parameters), 130 stopped with Ctrl-C, 143 told to terminate
(SIGTERM); the channel is at rest in both.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from labctl.bench import BenchError
from labctl.cli.biologic import biologic_bridge
from labctl.cli.channel import channel_app
from labctl.cli.console import err, fail, out
from labctl.cli.db import db_app
from labctl.cli.deposition import FilmError, deposition_app, film_line, film_of
from labctl.cli.gui import gui
from labctl.cli.imports import follow_app, import_files
from labctl.cli.options import (
    BenchOption,
    CellOption,
    JsonOption,
    LimitOption,
    MaybeProcedureArgument,
    ParamOption,
    SeedOption,
    StoreOption,
    cli_request,
    error_text,
)
from labctl.cli.queue import queue_app, serve
from labctl.cli.schedule import schedule_app

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
sim_app = typer.Typer(no_args_is_help=True, help="Simulated benches: emulators on 127.0.0.1.")
runs_app = typer.Typer(no_args_is_help=True, help="Runs in the store.")
analyze_app = typer.Typer(no_args_is_help=True, help="Recompute results from data files.")
app.add_typer(sim_app, name="sim")
app.add_typer(runs_app, name="runs")
app.add_typer(analyze_app, name="analyze")
app.add_typer(deposition_app, name="deposition")
app.add_typer(queue_app, name="queue")
app.add_typer(channel_app, name="channel")
app.add_typer(db_app, name="db")

EXIT_TERMINATED = 143  # told to terminate before the run began: nothing was started
SERIES_WIDTH = 140  # columns of a spectra series table written to a file or pipe (a terminal gets its own width)


@app.callback()
def _setup() -> None:
    # labctl's own warnings on stderr; libraries' import-time chatter (PyMeasure's optional extras) stays quiet
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("labctl").setLevel(logging.WARNING)



@app.command()
def run(
    procedure: MaybeProcedureArgument = None,
    bench: BenchOption = None,
    param: ParamOption = None,
    cell: CellOption = None,
    seed: SeedOption = None,
    limit: LimitOption = None,
    channel: Annotated[int | None, typer.Option(help="Cycler channel (default: the bench file's; sim: 1)")] = None,
    resume: Annotated[str | None, typer.Option(
        help="Go on with this interrupted run where it stopped, in its folder, with its own procedure, bench and "
             "parameters (ccd runs; its cycler test must still run on its channel)", show_default=False)] = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run a procedure on a bench and store its data; prints the result."""
    from labctl.bench import open_bench
    from labctl.cli.run_file import RunFileError
    from labctl.procedures import ParameterError
    from labctl.request import RequestError
    from labctl.store import Store

    if resume is not None:
        given = [name for name, value in (("PROCEDURE", procedure), ("--bench", bench), ("--param", param),
                 ("--cell", cell), ("--seed", seed), ("--channel", channel), ("--limit", limit)) if value]  # fmt: skip
        if given:
            raise fail(f"--resume: {', '.join(given)} cannot be given with it; a resumed run goes on with its own "
                       "procedure, bench and parameters")
        _resume(resume, store, as_json)
    if procedure is None:
        raise fail("PROCEDURE: missing; give a procedure name (`labctl procedures` lists them) or a run file, "
                   "or --resume RUN_ID")
    try:
        request = cli_request(procedure, bench=bench, params=param, cell=cell, seed=seed, channel=channel,
                              limits=limit)
        proc = request.build()
    except (RunFileError, RequestError, ParameterError) as e:
        raise fail(error_text(e)) from None
    if proc.film_run:
        try:
            film_of(Store(store), proc.film_run)
        except FilmError as e:
            raise fail(str(e)) from None
    overrides = {k: v for k, v in {"cell": request.cell, "seed": request.seed}.items() if v is not None}
    try:
        opened = open_bench(request.bench, sim_overrides=overrides, sim_defaults=proc.sim_defaults(),
                            cycler_channel=request.channel)
    except BenchError as e:
        raise fail(str(e)) from None
    recorded = request.model_dump(mode="json", exclude={"schedule"}) | {"bench": _absolute(request.bench)}
    _follow(opened, request.procedure, store, as_json, lambda runner: runner.run(proc, opened, recorded))


def _absolute(bench: str) -> str:
    from labctl.request import SIM_LAYOUTS

    return bench if bench in SIM_LAYOUTS else str(Path(bench).resolve())


def _resume(run_id: str, store: Path | None, as_json: bool) -> None:
    """``labctl run --resume RUN_ID``: refuse (exit 2, nothing changed) unless the run can go on, then follow it."""
    from labctl.bench import load_config, open_bench
    from labctl.procedures import ParameterError
    from labctl.request import RequestError, RunRequest
    from labctl.roles import ResumeRefused
    from labctl.store import Store
    from labctl.store.reader import RunReader

    found = Store(store)
    record = found.registry.get(run_id) if found.has_registry() else None
    if record is None:
        raise fail(f"--resume: no run {run_id!r} in this store; `labctl runs list` lists them")
    if record.status != "interrupted":
        why = f"is still running (pid {record.pid})" if record.status == "running" else f"ended {record.status}"
        raise fail(f"--resume: run {run_id} {why}; only an interrupted run can be resumed")
    recorded = RunReader(Path(record.folder)).metadata().get("request")
    if not recorded:
        raise fail(f"--resume: run {run_id} was recorded without its run request (labctl before 0.2), so it cannot "
                   "be rebuilt; start a new run")
    try:
        request = RunRequest.model_validate(recorded)
        proc = request.build()
        if load_config(request.bench).sim is not None:
            raise ResumeRefused("its simulated bench ran inside its process and ended with it; runs on a bench "
                                "served by `labctl sim serve` can be resumed")
        opened = open_bench(request.bench, cycler_channel=request.channel)
    except (RequestError, ParameterError, BenchError, ResumeRefused) as e:
        raise fail(f"--resume: run {run_id}: {e}") from None

    def go(runner: Any) -> Any:
        try:
            return runner.resume(proc, opened, record)
        except ResumeRefused as e:
            raise fail(f"--resume: run {run_id}: {e}") from None

    _follow(opened, f"{request.procedure} (resumed)", store, as_json, go, resuming=True)


def _follow(opened: Any, title: str, store: Path | None, as_json: bool, start: Any, resuming: bool = False) -> None:
    """Run ``start(runner)`` on the opened bench with terminal progress and a live feed; Ctrl-C aborts, SIGTERM
    interrupts (the channel rests either way); print the outcome and exit with its code."""
    from labctl.cli.progress import TerminalProgress
    from labctl.engine.runner import TERMINATED_EARLY, Listeners, Runner
    from labctl.live.feed import RunFeed
    from labctl.store import Store

    with opened, TerminalProgress(f"{title} on {opened.name}") as progress:
        runner = Runner(Store(store), Listeners.merged(progress.listeners(), RunFeed().listeners()))
        previous = signal.signal(signal.SIGINT, lambda *_: runner.request_stop())
        previous_term = signal.signal(signal.SIGTERM, lambda *_: runner.request_stop("interrupted"))
        if TERMINATED_EARLY.is_set():  # told to terminate while starting: a resumed run still rests its channel
            if not resuming:
                raise typer.Exit(EXIT_TERMINATED)
            runner.request_stop("interrupted")
        try:
            outcome = start(runner)
        except BenchError as e:
            raise fail(str(e)) from None
        finally:
            signal.signal(signal.SIGINT, previous)
            signal.signal(signal.SIGTERM, previous_term)
    if as_json:
        print(json.dumps({"run_id": outcome.run_id, "status": outcome.status, "folder": str(outcome.folder),
                          "result": outcome.result, "error": outcome.error}, indent=2, default=str))
    else:
        _print_outcome(outcome)
    raise typer.Exit(outcome.exit_code)


def _print_outcome(outcome: Any) -> None:
    colour = {"finished": "green", "failed": "red", "aborted": "yellow", "interrupted": "yellow"}[outcome.status]
    out.print(Text.assemble("Run ", (outcome.run_id, "bold"), " ", (outcome.status, colour)))
    if outcome.result:
        out.print(Text(outcome.result["headline"], style="bold"))
    if outcome.error:
        out.print(Text(outcome.error, style="red"))
    out.print(Text(f"Data: {outcome.folder}"))


def _row(*cells: object) -> list[Text]:
    """Table cells as plain text: what users, files and instruments wrote is never read as markup or emoji codes
    (a film stack ``W:19.3:0.163:100:30:200`` must not show 💯)."""
    return [Text(str(cell)) for cell in cells]


@app.command()
def procedures(name: Annotated[str | None, typer.Argument(help="Show one procedure's parameters")] = None) -> None:
    """List procedures, or show one's parameters with units and defaults."""
    from labctl.procedures import PROCEDURES

    if name is None:
        for key, cls in PROCEDURES.items():
            out.print(Text.assemble((key, "bold"), "  ", (cls.__doc__ or "").strip().splitlines()[0]))
        return
    if name not in PROCEDURES:
        raise fail(f"unknown procedure {name!r}; procedures are {', '.join(PROCEDURES)}")
    table = Table("parameter", "label", "default", "units", "notes")
    table.columns[0].no_wrap = True
    for key, p in PROCEDURES[name]().parameter_objects().items():
        table.add_row(*_row(key, p.name, p.default, getattr(p, "units", None) or "", p.description or ""))
    out.print(table)


@sim_app.command("cells")
def sim_cells() -> None:
    """List the simulated cells a sim bench can hold (--cell), with what each reproduces."""
    from labctl.sim_instruments.catalog import KINDS

    table = Table("cell", "kind", "source")
    table.columns[0].no_wrap = True
    for name, cell in KINDS.items():
        table.add_row(*_row(name, cell.kind, getattr(cell.preset, "source", "").split(";")[0]))
    out.print(table)


@sim_app.command("serve")
def sim_serve(
    bench: Annotated[str, typer.Argument(help="sim, sim-sp200, sim-arbin-sp200, or a bench TOML file with a [sim] "
                                               "table")] = "sim",
    cell: Annotated[str | None, typer.Option(help="Cell preset in every channel")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed of the virtual cells")] = None,
) -> None:
    """Start a simulated bench's emulators and print their addresses and a bench config for them."""
    from labctl.bench import load_config, sim_settings, start_sim_bench

    try:
        config = load_config(bench)
        if config.sim is None:
            raise BenchError(f"{bench}: has no [sim] table, so there is nothing to simulate")
        sim = sim_settings(config.sim, {k: v for k, v in {"cell": cell, "seed": seed}.items() if v is not None})
        served = start_sim_bench(sim, free_running=True)
    except BenchError as e:
        raise fail(str(e)) from None
    with served:
        for role, address in served.addresses().items():
            print(f"# {role}: {address}")
        print("# bench config for these emulators (save as a .toml file and pass it to --bench):")
        print(served.config_toml(), flush=True)
        err.print("Serving on 127.0.0.1; Ctrl-C stops.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


@runs_app.command("list")
def runs_list(store: StoreOption = None, as_json: JsonOption = False) -> None:
    """List runs, newest last, with their status and headline result."""
    from labctl.store import Store

    records = Store(store).registry.list()
    if as_json:
        print(json.dumps([r.to_dict() for r in records], indent=2))
        return
    table = Table("run", "procedure", "status", "started (UTC)", "bench", "cell", "result")
    table.columns[0].no_wrap = True
    for r in records:
        summary = r.summary or {}
        table.add_row(*_row(r.id, r.procedure, r.status, r.started_at.replace("T", " "), r.bench, r.cell_id or "",
                            summary.get("brief") or summary.get("error") or ""))
    out.print(table)


@runs_app.command("show")
def runs_show(run_id: str, store: StoreOption = None, as_json: JsonOption = False) -> None:
    """Show one run: status, parameters, cell, instruments, safety limits, result and files."""
    from labctl.safety import UNITS
    from labctl.store import Store
    from labctl.store.reader import RunReader

    found = Store(store, desk=True)  # a run of another PC is read from its copy here
    record = found.registry.get(run_id) if found.has_registry() else None
    if record is None:
        raise fail(f"no run {run_id!r} in the store; `labctl runs list` shows the runs")
    folder = Path(record.folder)
    run = RunReader(folder)
    metadata, results = run.metadata(), run.results()
    if as_json:
        print(json.dumps({"run": record.to_dict(), "metadata": metadata, "results": results}, indent=2, default=str))
        return
    out.print(Text.assemble((record.id, "bold"), f"  {record.procedure}  status ", (record.status, "bold"),
                            f"  {record.started_at} → {record.ended_at or '…'}"))
    out.print(Text(f"Folder: {folder}"))
    table = Table("parameter", "value", "units")
    for key, p in metadata.get("parameters", {}).items():
        table.add_row(*_row(key, p["value"], p.get("units") or ""))
    out.print(table)
    out.print(Text(f"Cell: {metadata.get('cell')}"))
    if film_run := (metadata.get("cell") or {}).get("film_run"):
        out.print(Text(film_line(Store(store), film_run)))
    out.print(Text(f"Instruments: {metadata.get('instruments')}"))
    if "limits" in metadata:  # the tightest of the bench's, the channel's and the run's
        out.print(Text("Safety limits: " + (", ".join(f"{k} {v:g} {UNITS[k]}" for k, v in metadata["limits"].items())
                                            or "none")))
    if results:
        out.print(Text(results.get("headline", ""), style="bold"))
    if record.summary and record.summary.get("error"):
        out.print(Text(record.summary["error"], style="red"))


@analyze_app.command("eis")
def analyze_eis(
    file: Annotated[Path, typer.Argument(help="Spectrum CSV (Frequency / Hz, Real and Imaginary Impedance / ohm), "
                                              "a run's spectra.csv, or a run folder")],
    area: Annotated[float | None, typer.Option(help="Electrode area, cm² (default for a run folder: the run's)")]
    = None,
    thickness: Annotated[float | None, typer.Option(help="Pellet thickness, cm (for the conductivity)")] = None,
    circuit: Annotated[str | None, typer.Option(help="Circuit to fit, e.g. 'R0-p(R1,CPE1)-W1'")] = None,
    spectrum: Annotated[int | None, typer.Option(help="Fit only this spectrum of several (default: every one)")]
    = None,
    as_json: JsonOption = False,
) -> None:
    """Fit and validate spectra offline: R_b, R_tot, ASR per interface, σ, Kramers–Kronig; a file or run of several
    spectra gives the series of every spectrum against test time, cycle and step."""
    from labctl.analysis import eis_series
    from labctl.analysis.eis import analyze_eis as analyze
    from labctl.analysis.eis import load_spectrum_csv

    settings = eis_series.run_settings(file)
    area, circuit = area or settings.get("area_cm2"), circuit or settings.get("circuit")
    thickness = thickness or settings.get("thickness_cm")
    if area is None:
        raise fail("--area: give the electrode area in cm² (only a run folder records it)")
    try:
        df = load_spectrum_csv(eis_series.spectra_file(file))
        if spectrum is None and len(eis_series.spectrum_indices(df)) > 1:
            rows = eis_series.analyze_series(df, area, thickness, circuit, when=eis_series.spectrum_moments(file))
            return _show_series(rows, as_json, eis_series)
        outcome = analyze(df, area, thickness_cm=thickness, circuit=circuit, spectrum=spectrum)
    except (ValueError, OSError) as e:
        raise fail(str(e)) from None
    result = outcome.to_dict() | {"headline": outcome.headline()}
    if not _show(result, as_json):
        table = Table("parameter", "value", "standard error")
        for name, value in result["fit"]["parameters"].items():
            table.add_row(*_row(name, f"{value:.5g}",
                                f"{result['fit']['standard_errors'].get(name, float('nan')):.2g}"))
        out.print(table)


@analyze_app.command("ccd")
def analyze_ccd(
    file: Annotated[Path, typer.Argument(help="BDF CSV time series of a stepped test")],
    area: Annotated[float, typer.Option(help="Electrode area, cm²")],
    voltage_limit: Annotated[float, typer.Option(help="|V| safety limit of the test, V")] = 1.0,
    bulk_resistance: Annotated[float, typer.Option(help="R_b from EIS, Ω (0 = estimate)")] = 0.0,
    as_json: JsonOption = False,
) -> None:
    """Recompute a CCD result from a BDF CSV with the detector live runs use."""
    from labctl.analysis.ccd import CCDAnalyzer

    declared = _declared("ccd", CCDAnalyzer, area, {"voltage_limit_V": voltage_limit,
                                                    "ohmic_floor_ohm": bulk_resistance or None})
    _show(_replayed(declared, file), as_json)


@analyze_app.command("ce")
def analyze_ce(
    file: Annotated[Path, typer.Argument(help="BDF CSV time series of a CE test (half cell or full cell)")],
    area: Annotated[float, typer.Option(help="Electrode area, cm²")],
    protocol: Annotated[str, typer.Option(help="reservoir, cycling or fullcell")],
    cutoff: Annotated[float, typer.Option(help="Half cells: anodic cutoff of the strips, V")] = 0.2,
    lower: Annotated[float | None, typer.Option(help="Lower limit, V: plating safety (default -0.5) or discharge")]
    = None,
    upper: Annotated[float | None, typer.Option(help="Full cells: upper (charge) voltage limit, V")] = None,
    time_limit: Annotated[float | None, typer.Option(help="Half-cycle time limit, h")] = None,
    capacity: Annotated[float | None, typer.Option(help="Planned charge per plating or full-cell charge, mAh/cm²")]
    = None,
    cathode_mass: Annotated[float | None, typer.Option(help="Full cells: active cathode mass, mg (for mAh/g)")] = None,
    reference_cycle: Annotated[int | None, typer.Option(help="Full cells: retention relative to this cycle")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Print every cycle, not only the first and last")] = False,
    as_json: JsonOption = False,
) -> None:
    """Recompute a Coulombic-efficiency result from a BDF CSV with the analyzer live runs use."""
    from labctl.analysis.ce import CEAnalyzer, table
    from labctl.units import SECONDS_PER_HOUR

    declared = _declared("ce", CEAnalyzer, area, {
        "protocol": protocol, "cutoff_V": cutoff, "lower_V": lower, "upper_V": upper,
        "time_limit_s": None if time_limit is None else time_limit * SECONDS_PER_HOUR, "capacity_mAh_cm2": capacity,
        "cathode_mass_mg": cathode_mass, "reference_cycle": reference_cycle})  # fmt: skip
    result = _replayed(declared, file)
    _check_reference_cycle(reference_cycle, result)
    if not _show(result, as_json):
        headers, rows = table(result, all_rows=show_all)
        cycles = Table(*headers)
        for column in cycles.columns:
            column.overflow = "fold"  # a narrow terminal folds units and values, never cuts them
        for row in rows:
            cycles.add_row(*_row(*row))
        out.print(cycles)


def _check_reference_cycle(asked: int | None, result: dict[str, Any]) -> None:
    """A reference cycle the data never completed gives no retention: say so rather than print none (exit 2)."""
    if asked is None or result["retention_percent"] is not None:
        return
    complete = [row["cycle"] for row in result["cycles"] if row.get("retention_percent") is not None
                or row.get("ce_percent") is not None]
    held = f"cycles {complete[0]} to {complete[-1]}" if complete else "no complete cycle"
    raise fail(f"--reference-cycle: cycle {asked} is not among the data's complete cycles ({held}); give one of "
               "those, or leave the option out to take the first complete cycle")


def _declared(kind: str, factory: Any, area: float, settings: dict[str, Any]) -> Any:
    """The analysis the options ask for; a bad option exits 2 naming it (the analyzer checks its settings)."""
    from labctl.analysis.checks import SettingError
    from labctl.analysis.replay import OPTIONS, Analysis

    declared = Analysis(kind, factory, area, settings)
    try:
        declared.analyzer()
    except SettingError as e:
        raise fail(f"{OPTIONS[e.setting][0]}: {e}") from None
    return declared


def _replayed(declared: Any, file: Path) -> dict[str, Any]:
    """The result of ``file`` through the declared analysis, with its headline; unreadable data exits 2."""
    from labctl.analysis.timeseries import load_bdf_csv

    try:
        outcome = declared.replay(load_bdf_csv(file))
    except (ValueError, OSError) as e:
        raise fail(str(e)) from None
    return outcome.to_dict() | {"headline": outcome.headline()}


def _show(result: dict[str, Any], as_json: bool) -> bool:
    """Print an analysis result as JSON, or its headline; True if that was JSON."""
    if as_json:
        print(json.dumps(result, indent=2, default=str))
    else:
        out.print(Text(result["headline"], style="bold"))
    return as_json


def _show_series(rows: list, as_json: bool, eis_series: Any) -> None:
    """Print the fitted series of a run's spectra: JSON, or the headline and a row per spectrum."""
    if _show({"headline": eis_series.headline(rows), "spectra": [r.to_dict() for r in rows]}, as_json):
        return
    headers, lines = eis_series.table(rows)
    spectra = Table(*headers, box=box.SIMPLE_HEAD, pad_edge=False)
    for line in lines:
        spectra.add_row(*(Text(cell) for cell in line))  # text from files is never markup
    (out if out.is_terminal else Console(width=SERIES_WIDTH)).print(spectra)  # into a file: every column whole


app.command("serve")(serve)  # after run, procedures and sim in --help: the order a new user needs them
app.command("gui")(gui)
app.command("biologic-bridge")(biologic_bridge)
app.command("import")(import_files)
app.add_typer(follow_app, name="follow")
app.add_typer(schedule_app, name="schedule")
