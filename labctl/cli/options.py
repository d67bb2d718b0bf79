"""Options that several labctl commands share, declared once so their names and help read the same everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from labctl.request import RequestError, RunRequest


def _checked_store(root: Path | None) -> Path | None:
    """The ``--store`` given, checked before any command uses it: a file or a corrupt registry exits 2."""
    from labctl.store import StoreError, check_store, default_root

    try:
        check_store(root or default_root())
    except StoreError as e:
        raise typer.BadParameter(f"{e}{'' if root else ' (the store of $LABCTL_HOME)'}") from None
    return root


StoreOption = Annotated[Path | None, typer.Option("--store", help="Store folder (default $LABCTL_HOME or ~/labctl-data)",
                                                  callback=_checked_store)]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables")]
PROCEDURE_HELP = "Procedure name, e.g. ccd (see `labctl procedures`), or a run file (.toml; options given here win over it)"
ProcedureArgument = Annotated[str, typer.Argument(help=PROCEDURE_HELP)]
MaybeProcedureArgument = Annotated[str | None, typer.Argument(help=PROCEDURE_HELP, show_default=False)]
BenchOption = Annotated[str | None, typer.Option(
    help="A bench TOML file, or a simulated bench: sim (Arbin + Solartron 1260), sim-sp200 (an SP-200 alone), "
         "sim-arbin-sp200 (Arbin cycling, SP-200 measuring) [default: the run file's, else sim]")]
ParamOption = Annotated[list[str] | None, typer.Option("--param", "-p", help="name=value; repeat for several")]
CellOption = Annotated[str | None, typer.Option(help="Sim benches: cell preset (`labctl sim cells` lists them)")]
SeedOption = Annotated[int | None, typer.Option(help="Sim benches: random seed of the virtual cell")]
LimitOption = Annotated[list[str] | None, typer.Option(
    "--limit", help="Safety limit of the run, NAME=VALUE (voltage_max_V, voltage_min_V, current_max_A, "
                    "capacity_per_step_Ah, test_time_max_h); repeat for several")]

# how the command line names each run-request field, for errors that name the field to fix
OPTION_NAMES = {"procedure": "procedure", "bench": "--bench", "cell": "--cell", "seed": "--seed",
                "channel": "--channel", "count": "--count", "after": "--after", "rest_s": "--rest",
                "limits": "--limit"}  # fmt: skip


def cli_request(argument: str, *, bench: str | None, params: list[str] | None, cell: str | None, seed: int | None,
                channel: int | None, limits: list[str] | None = None) -> RunRequest:
    """The request a procedure name or run file describes, with the command line's options on top; RunFileError,
    ParameterError (a ``-p`` that is no ``name=value``) or RequestError (a bad ``--limit``)."""
    from labctl.cli.run_file import request_of
    from labctl.procedures.base import parse_params
    from labctl.safety import LimitError, parse_limit_texts

    request = request_of(argument)
    try:
        given = parse_limit_texts(limits or [])
    except LimitError as e:
        raise RequestError("limits", str(e)) from None
    return request.with_options(bench=bench, params=parse_params(params or []), cell=cell, seed=seed,
                                channel=channel, limits=given)  # fmt: skip


def error_text(error: Exception) -> str:
    """A request's error in the command line's words: the option (or ``--param``) to fix, then why."""
    from labctl.procedures.base import ParameterError

    if isinstance(error, ParameterError):
        return f"--param {error}"
    if isinstance(error, RequestError):
        return f"{'/'.join(OPTION_NAMES[f] for f in error.fields)}: {error.detail}"
    return str(error)
