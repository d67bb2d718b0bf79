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
    lab: Annotated[bool | None, typer.Option("--lab/--no-lab", help="Show the runs of every PC of the lab, their "
                                             "data copied through each PC's labctl serve [default: --lab when the "
                                             "store's database is a lab's]; --no-lab: connect to no other PC")] = None,
) -> None:
    """Open the bench window: queue runs, start and stop the daemon, watch runs live and their events, be alerted of
    shorts and ended runs, browse and export finished ones."""
    from labctl.cli.console import fail
    from labctl.gui.app import main
    from labctl.store import lab_config

    root = (store or default_root()).resolve()
    if lab and not lab_config(root).shared:
        raise fail("--lab: this store's database is its own SQLite file; set LABCTL_DB (or lab.toml's [database] url) "
                   "to the lab's PostgreSQL database, see the README's Several PCs")
    raise typer.Exit(main(root, bench, notify=notify, lab=lab is not False))
