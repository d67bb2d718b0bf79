"""``labctl gui``: the bench window. Qt is imported only when the command runs, so ``labctl run`` and
``labctl serve`` never load it."""

from __future__ import annotations

from typing import Annotated

import typer

from labctl.cli.options import StoreOption
from labctl.store import default_root


def gui(
    store: StoreOption = None,
    bench: Annotated[str, typer.Option(help="'sim' or a bench TOML file: the bench new runs are queued on")] = "sim",
    notify: Annotated[str | None, typer.Option(help="Shell command run as `CMD RUN_ID WHAT` while the window is open, "
                                               "WHAT being hard_short or contact_loss (a short that ended a test), "
                                               "failed or finished")] = None,
) -> None:
    """Open the bench window: queue runs, start and stop the daemon, watch runs live and their events, be alerted of
    shorts and ended runs, browse and export finished ones."""
    from labctl.gui.app import main

    raise typer.Exit(main((store or default_root()).resolve(), bench, notify=notify))
