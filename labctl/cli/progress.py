"""Terminal progress for foreground runs: a live bar on a terminal, a line per current level otherwise."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from labctl.engine.runner import Listeners

_SHOWN_EVENTS = {"hard_short", "soft_short", "contact_loss", "fault", "operator_action", "crystal_life_low",
                 "crystal_failure", "safety_limit"}


class TerminalProgress:
    """Listeners that draw a run's progress on stderr; use as a context manager around the run."""

    def __init__(self, title: str, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._live = self.console.is_terminal
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>5.1f} %"),
            TextColumn("{task.fields[state]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=self.console, transient=False, disable=not self._live,
        )  # fmt: skip
        self._task = self._progress.add_task(title, total=100, state="starting")
        self._level: float | None = None

    def listeners(self) -> Listeners:
        return Listeners(status=self._status, progress=self._percent, event=self._event)

    def _status(self, s: dict[str, Any]) -> None:
        state = (f"j {s['density_mA_cm2']:+.3g} mA/cm²  cycle {s['cycle']}  V {s['voltage_V']:+.4f} V  "
                 f"I {1000 * s['current_A']:+.4g} mA  t {s['test_time_s'] / 3600:.2f} h")
        self._progress.update(self._task, state=state)
        level = round(abs(s["density_mA_cm2"]), 6)
        if not self._live and level and level != self._level:
            self._level = level
            print(f"  {state}", file=sys.stderr, flush=True)

    def _percent(self, percent: float) -> None:
        self._progress.update(self._task, completed=percent)

    def _event(self, e: dict[str, Any]) -> None:
        if e.get("kind") in _SHOWN_EVENTS:
            detail = e.get("detail") or e.get("message") or ""
            # what instruments and users wrote is shown as written: never read as markup or emoji codes
            self._progress.console.print(Text.assemble((e["kind"].replace("_", " "), "yellow"), f": {detail}"),
                                         highlight=False)

    def __enter__(self) -> TerminalProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()
