"""``labctl biologic-bridge``: serve the BioLogic SP-200's EClib over TCP from the Windows PC beside it.

The bridge itself (protocol, safety rules, the client labctl uses) is labctl.drivers.biologic.bridge, standard
library only; this command only passes its options on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from labctl.drivers.biologic.bridge import DEFAULT_HOST, DEFAULT_IDLE_TIMEOUT_S, DEFAULT_PORT, TOKEN_ENV, main


def biologic_bridge(
    eclib: Annotated[Path | None, typer.Option(
        help="The EC-Lab Development Package's lib folder, which holds EClib64.dll", show_default=False)] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on (127.0.0.1: this PC only; the lab network's "
                                           "address to serve labctl on another machine)")] = DEFAULT_HOST,
    port: Annotated[int, typer.Option(help="TCP port", min=0, max=65535)] = DEFAULT_PORT,
    token: Annotated[str | None, typer.Option(
        help=f"Shared secret labctl must present (default: ${TOKEN_ENV}; one of the two is required)",
        show_default=False)] = None,
    idle_timeout: Annotated[float, typer.Option(
        help="Also take a client silent this many seconds for dead and stop its channels; make it longer than the "
             "procedures' sample intervals (up to 600 s). 0: never (TCP keep-alive still finds a vanished host)",
        min=0)] = DEFAULT_IDLE_TIMEOUT_S,
) -> None:
    """Serve the SP-200's EClib to labctl over TCP: run it on the Windows PC beside the instrument. A client that
    drops has the channels it started stopped; Ctrl-C stops them all and exits."""
    argv = ["--host", host, "--port", str(port), "--idle-timeout", str(idle_timeout)]
    argv += ["--eclib", str(eclib)] if eclib is not None else []
    argv += ["--token", token] if token else []  # else the bridge reads $LABCTL_BRIDGE_TOKEN
    raise typer.Exit(main(argv))
