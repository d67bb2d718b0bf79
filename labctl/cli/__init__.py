"""The command line (``labctl``): typer commands over the store, the queue, the engine and the analysis."""

from labctl.cli.main import app

__all__ = ["app"]
