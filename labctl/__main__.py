"""``python -m labctl``: the same as the ``labctl`` command."""

from labctl.cli import app

app(prog_name="labctl")
