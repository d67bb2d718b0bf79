"""``labctl import`` (other instruments' files into the store) and ``labctl follow land`` (a running LAND test
through its export)."""

from __future__ import annotations

import json
import math
import signal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from labctl.cli.console import err, fail, out
from labctl.cli.options import JsonOption, ParamOption, StoreOption

follow_app = typer.Typer(help="Follow a running test of an instrument labctl cannot drive, through its export file",
                         no_args_is_help=True)

FormatOption = Annotated[str | None, typer.Option("--format", help="land, eclab-mpr, eclab-mpt, arbin-res, arbin-xlsx "
                                                  "or versastudio-par (default: from the file)", show_default=False)]
AreaOption = Annotated[float | None, typer.Option(help="Electrode area, cm² (default: the file's, if it has one)",
                                                  show_default=False)]
DiameterOption = Annotated[float | None, typer.Option(help="Electrode diameter, mm (instead of --area)",
                                                      show_default=False)]
CellIdOption = Annotated[str | None, typer.Option(help="Cell id (default: the file's name)", show_default=False)]


def import_files(
    files: Annotated[list[Path], typer.Argument(help="Files to import (each becomes a run)", show_default=False)],
    file_format: FormatOption = None,
    area: AreaOption = None,
    diameter: DiameterOption = None,
    cell_id: CellIdOption = None,
    invert_current: Annotated[bool, typer.Option(help="Flip the current's sign (a file written with discharge "
                                                      "positive); charge and discharge capacities swap with it")] = False,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import another instrument's files (LAND, EC-Lab, Arbin, VersaStudio) into the store as runs: a BDF time
    series, spectra, the source's name, checksum and header. Every file is read and checked before anything is
    stored; a file that is not what it claims to be is refused (exit 2) and nothing is stored."""
    from labctl.imports.formats import format_of
    from labctl.imports.imported import FormatError, check_series, inverted
    from labctl.imports.store import store_import
    from labctl.store import Store

    given_area = _area(area, diameter)
    _check_cell_id(cell_id)
    read = []
    for path in files:
        try:
            if not path.is_file():
                raise FormatError(f"{path}: {'a folder, not a file' if path.is_dir() else 'no such file'}")
            imported = format_of(path, file_format).read(path)
            if imported.series is not None:
                check_series(imported.series, path)
                if invert_current:
                    imported.series = inverted(imported.series)
            elif not imported.spectra:
                raise FormatError(f"{path}: neither a time series nor a spectrum in it")
        except (FormatError, OSError) as e:
            raise fail(f"{e}; nothing was imported") from None
        read.append(imported)
    stored = [store_import(Store(store), imported, cell_id=cell_id or imported.source.stem,
                           area_cm2=given_area or imported.area_cm2, inverted_current=invert_current)
              for imported in read]  # fmt: skip
    if as_json:
        print(json.dumps([{"run_id": s.run_id, "folder": str(s.folder), "rows": s.rows, "spectra": s.spectra}
                          for s in stored], indent=2))
        return
    for imported, s in zip(read, stored, strict=True):
        out.print(Text.assemble("Imported ", (imported.source.name, "bold"), f" ({imported.format}) as run ",
                                (s.run_id, "bold"), f": {s.rows} rows, {s.spectra} spectra"))
        for note in imported.notes:
            out.print(Text(f"  note: {note}"))
        if not (given_area or imported.area_cm2):
            out.print(Text("  no electrode area: give --area to `labctl analyze` (or import again with --area)"))


@follow_app.command("land")
def follow_land(
    source: Annotated[Path, typer.Argument(help="The LANDdt export file, or the folder it is exported into (its "
                                                "newest export is followed)", show_default=False)],
    cell_id: CellIdOption = None,
    area: AreaOption = None,
    diameter: DiameterOption = None,
    procedure: Annotated[str | None, typer.Option(help="Run this procedure's detector on the rows: ccd or ce-cycling "
                                                       "(its -p parameters apply)", show_default=False)] = None,
    param: ParamOption = None,
    idle: Annotated[float, typer.Option(help="End when the export has not grown for this long, min")] = 30.0,
    poll: Annotated[float, typer.Option(help="How often the export is looked at, s")] = 5.0,
    notify: Annotated[str | None, typer.Option(help="Run `CMD RUN_ID WHAT` at a short and at the end",
                                               show_default=False)] = None,
    store: StoreOption = None,
) -> None:
    """Follow a running LAND test through the export LANDdt rewrites: a live run in the store (the GUI shows it like
    any run) with the procedure's detector on every new row. labctl cannot stop a LAND channel: a short is an event
    and a --notify call, and the operator stops the test in LANDMon."""
    from labctl.engine.runner import Listeners
    from labctl.imports.follow import Follower
    from labctl.imports.imported import FormatError
    from labctl.imports.land import read_land
    from labctl.live.feed import RunFeed
    from labctl.store import Store

    given_area = _area(area, diameter)
    _check_cell_id(cell_id)
    for name, value, unit in (("--idle", idle, "min"), ("--poll", poll, "s")):
        if not (math.isfinite(value) and value > 0):
            raise fail(f"{name}: {value!r} {unit}; give a positive number")
    path = _newest_export(source)
    analysis = _analysis(procedure, param, given_area)
    follower = Follower(Store(store), path, read_land, cell_id or path.stem, given_area, analysis,
                        procedure=f"follow-{procedure or 'land'}", idle_s=idle * 60, poll_s=poll, notify=notify,
                        listeners=Listeners.merged(_printing(), RunFeed().listeners()))
    stopping: list[bool] = []
    previous = signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    follower.should_stop = lambda: bool(stopping)
    try:
        outcome = follower.run()
    except (FormatError, OSError) as e:
        raise fail(f"{e}; nothing was started") from None
    finally:
        signal.signal(signal.SIGINT, previous)
    out.print(Text.assemble("Run ", (outcome.run_id, "bold"), f" {outcome.status}"))
    if outcome.result:
        out.print(Text(outcome.result["headline"], style="bold"))
    out.print(Text(f"Data: {outcome.folder}"))
    raise typer.Exit(0 if outcome.status in ("finished", "aborted") else 1)


def _check_cell_id(cell_id: str | None) -> None:
    from labctl.text import shown, unprintable

    if cell_id is not None and (not cell_id.strip() or unprintable(cell_id)):
        raise fail(f"--cell-id: {shown(cell_id)!r} is empty or holds control characters; type it as plain text")


def _area(area: float | None, diameter: float | None) -> float | None:
    from labctl.units import area_from_diameter_cm2

    if area is not None and diameter is not None:
        raise fail("--area/--diameter: give one of them, not both")
    for name, value, unit in (("--area", area, "cm²"), ("--diameter", diameter, "mm")):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise fail(f"{name}: {value!r} {unit}; give a positive number")
    return area if diameter is None else area_from_diameter_cm2(diameter)


def _newest_export(source: Path) -> Path:
    from labctl.imports.formats import FORMATS

    if source.is_file():
        return source
    if not source.is_dir():
        raise fail(f"{source}: no such file or folder; give the LANDdt export or the folder it exports into")
    exports = [p for p in source.iterdir() if p.is_file() and p.suffix.lower() in FORMATS["land"].extensions]
    if not exports:
        raise fail(f"{source}: no LAND export in it ({', '.join(FORMATS['land'].extensions)}); point LANDdt's "
                   "export at this folder first")
    return max(exports, key=lambda p: p.stat().st_mtime)


def _analysis(procedure: str | None, params: list[str] | None, area_cm2: float | None) -> Any:
    """The declared analysis of ``procedure`` with ``params`` at this area, or None."""
    from labctl.procedures import PROCEDURES, ParameterError
    from labctl.procedures.base import parse_params, set_parameters

    if procedure is None:
        if params:
            raise fail("--param: give --procedure too; parameters set the detector of a procedure")
        return None
    if procedure not in ("ccd", "ce-cycling"):
        raise fail(f"--procedure: {procedure!r} cannot be followed; give ccd or ce-cycling")
    if area_cm2 is None:
        raise fail("--area: give the electrode area (cm²) or --diameter (mm); the detector needs current densities")
    try:
        instance = PROCEDURES[procedure]()
        set_parameters(instance, parse_params(params or []) | {"electrode_area": str(area_cm2)})
    except ParameterError as e:
        raise fail(f"--param {e}") from None
    return instance.analysis()


def _printing() -> Any:
    """Listeners that print each event as it comes (a short, the export's end)."""
    from labctl.engine.runner import Listeners

    def event(record: dict[str, Any]) -> None:
        err.print(Text(f"{record.get('kind')}: {record.get('message') or record.get('detail') or ''}".rstrip(": ")))

    return Listeners(event=event)
