"""``labctl schedule …``: a labctl procedure as another cycler's schedule, for the instruments labctl cannot drive.

LAND cyclers have no public control interface; ``labctl schedule land PROCEDURE -p …`` prints the steps an operator
types into LANDMon, so a LAND test follows the same protocol as a labctl run (``docs/land.md``).
"""

from __future__ import annotations

import json

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from labctl.cli.console import fail, out
from labctl.cli.options import JsonOption, ParamOption, ProcedureArgument, cli_request, error_text

WIDTH = 140  # columns of a table written to a file or pipe: every row whole, as a terminal of that width shows it
NUMBERS = 7  # the first columns, step to cut-off capacity: typed as they are, never wrapped

schedule_app = typer.Typer(no_args_is_help=True, help="Print a procedure as the schedule of a cycler labctl cannot "
                                                      "drive.")


@schedule_app.command("land")
def land(procedure: ProcedureArgument, param: ParamOption = None, as_json: JsonOption = False) -> None:
    """Print the LANDMon step table of PROCEDURE with its parameters, and what a LAND cannot do of it.
    Bad parameters exit 2 as `labctl run` refuses them; so does a procedure a LAND cannot run (eis, insitu-eis,
    deposition)."""
    from labctl.cli.run_file import RunFileError
    from labctl.procedures.base import ParameterError
    from labctl.procedures.land_schedule import LandRefused, land_steps
    from labctl.request import RequestError

    try:
        schedule = land_steps(cli_request(procedure, bench=None, params=param, cell=None, seed=None,
                                          channel=None).build())
    except (RunFileError, RequestError, ParameterError) as e:
        raise fail(error_text(e)) from None
    except LandRefused as e:
        raise fail(f"procedure {e}") from None
    if as_json:
        print(json.dumps(schedule.to_dict(), indent=2))
        return
    table = Table(*schedule.headers(), box=box.SIMPLE_HEAD,
                  title=f"LANDMon steps of {schedule.procedure}: set values, then cut-offs (time, voltage, capacity)")
    for column in table.columns[:NUMBERS]:
        column.no_wrap = True
    for row in schedule.rows():
        table.add_row(*(Text(cell) for cell in row))  # parameter text is never markup
    console = out if out.is_terminal else Console(width=WIDTH)
    console.print(table)
    for note in schedule.notes:
        console.print(Text(f"• {note}"))
