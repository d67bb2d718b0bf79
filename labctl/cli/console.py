"""Where the command line writes: results on stdout, errors on stderr; text from users, files and instruments is
never read as rich markup."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

out = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` on stderr; the exit to raise (2: bad input, nothing was started)."""
    err.print(f"[red]error:[/] {escape(message)}", highlight=False, emoji=False)  # ':100:' stays as typed
    return typer.Exit(code)
