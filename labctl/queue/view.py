"""What ``labctl queue list`` shows of an entry: why it waits, how far its run is, or how it ended."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

from labctl.bdf_columns import CURRENT, CYCLE, TIME, VOLTAGE
from labctl.queue.db import Entry
from labctl.queue.schedule import busy_claims, due, waiting_for
from labctl.store.reader import RunReader
from labctl.units import SECONDS_PER_HOUR, percent_done

__all__ = ["progress_text", "status_text"]


def status_text(entry: Entry, entries: list[Entry], now: datetime, folder: Path | None) -> str:
    """One line: what a waiting entry waits for, a running run's progress, or an ended run's headline."""
    if entry.state == "queued":
        starting = due(entries, now)
        if entry in starting:
            return "due: starts at the daemon's next look"
        busy = busy_claims(entries) | {claim for e in starting for claim in e.claims}
        return f"waits for {waiting_for(entry, {e.id: e for e in entries}, busy, now)}"
    if entry.state == "held":
        return "held: `labctl queue release` lets it start"
    if entry.state == "running":
        if entry.stop_requested:
            return "stopping (cancelled)"
        return progress_text(folder) if folder else "starting"
    outcome = entry.outcome or {}
    return outcome.get("error") or outcome.get("brief") or outcome.get("headline") or ""


def progress_text(folder: Path) -> str:
    """A running run's latest sample (test time, cycle, voltage, current) and its share of the planned time."""
    run = RunReader(folder)
    row = run.last_row()
    if not row:
        return "running, no sample yet"
    t_s = float(row.get(TIME) or 0)
    parts = [f"t {t_s / SECONDS_PER_HOUR:.2f} h"]
    if row.get(CYCLE):
        parts.append(f"cycle {row[CYCLE]}")
    if row.get(VOLTAGE):
        parts.append(f"V {float(row[VOLTAGE]):+.4f} V")
    if row.get(CURRENT):
        parts.append(f"I {1000 * float(row[CURRENT]):+.4g} mA")
    try:
        planned_s = float(run.metadata().get("estimated_duration_s") or math.inf)
    except (OSError, ValueError):
        planned_s = math.inf
    if math.isfinite(planned_s) and planned_s > 0:
        parts.insert(0, f"{percent_done(t_s, planned_s):.0f} %")
    return "  ".join(parts)

