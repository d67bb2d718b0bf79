"""Options that several labctl commands share, declared once so their names and help read the same everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

StoreOption = Annotated[Path | None, typer.Option("--store", help="Store folder (default $LABCTL_HOME or ~/labctl-data)")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables")]
ProcedureArgument = Annotated[str, typer.Argument(help="Procedure name, e.g. ccd (see `labctl procedures`), or a "
                                                  "protocol file (.toml; options given here win over it)")]
BenchOption = Annotated[str | None, typer.Option(help="'sim' or a bench TOML file [default: the protocol's, else sim]")]
ParamOption = Annotated[list[str] | None, typer.Option("--param", "-p", help="name=value; repeat for several")]
CellOption = Annotated[str | None, typer.Option(help="Sim benches: cell preset (`labctl sim cells` lists them)")]
SeedOption = Annotated[int | None, typer.Option(help="Sim benches: random seed of the virtual cell")]
