"""``labctl channel …``: act on a cycler channel directly, whatever runs (or ran) there."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from labctl.cli.console import fail, out

channel_app = typer.Typer(no_args_is_help=True, help="Act on a cycler channel directly.")


@channel_app.command("rest")
def channel_rest(
    bench: Annotated[str, typer.Argument(help="Bench name or file (as `labctl run --bench` takes it)")],
    channel: Annotated[int, typer.Argument(min=1, help="Cycler channel, physical numbering from 1")],
) -> None:
    """Put CHANNEL at rest (zero current) and end the test running there, even one a live labctl run holds
    (that run then ends as its test did). Exit 1 if the cycler could not be told."""
    from labctl.bench import BenchError
    from labctl.drivers.arbin.cti import CTIError
    from labctl.queue.watchdog import rest_channel

    try:
        rested = rest_channel(bench, channel, force=True)
    except BenchError as e:
        raise fail(str(e)) from None
    except (CTIError, OSError) as e:
        raise fail(f"channel {channel} of {bench}: could not put it at rest: {e}; stop it at the cycler (MITS Pro)",
                   code=1) from None
    if rested.simulated:
        said = "a simulated bench ends with its run; nothing is left running"
    elif rested.was_running:
        said = "at rest (0 A), its test ended"
    else:
        said = "runs no test; nothing to rest (0 A)"
    out.print(escape(f"channel {channel} of {bench}: {said}"), highlight=False, soft_wrap=True)
