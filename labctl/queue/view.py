"""What ``labctl queue list`` shows of an entry: why it waits, how far its run is, or how it ended."""

from __future__ import annotations

import csv
import io
import math
from datetime import datetime
from pathlib import Path

from labctl.queue.db import Entry
from labctl.queue.schedule import busy_claims, due, waiting_for
from labctl.store.folder import METADATA, PLAIN_TIMESERIES, TIMESERIES, read_json

_TAIL_BYTES = 4096


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
    row = last_row(folder / TIMESERIES) or last_row(folder / PLAIN_TIMESERIES)
    if not row:
        return "running, no sample yet"
    t_s = float(row.get("Test Time / s") or 0)
    parts = [f"t {t_s / 3600:.2f} h"]
    if row.get("Cycle Count / 1"):
        parts.append(f"cycle {row['Cycle Count / 1']}")
    if row.get("Voltage / V"):
        parts.append(f"V {float(row['Voltage / V']):+.4f} V")
    if row.get("Current / A"):
        parts.append(f"I {1000 * float(row['Current / A']):+.4g} mA")
    try:
        planned_s = float(read_json(folder / METADATA).get("estimated_duration_s") or math.inf)
    except (OSError, ValueError):
        planned_s = math.inf
    if math.isfinite(planned_s) and planned_s > 0:
        parts.insert(0, f"{min(100.0, 100 * t_s / planned_s):.0f} %")
    return "  ".join(parts)


def last_row(path: Path) -> dict[str, str] | None:
    """The header and last complete line of a CSV that is being appended to, without reading it whole."""
    try:
        with path.open("rb") as f:
            header = f.readline().decode("utf-8").strip()
            header_end = f.tell()
            start = max(header_end, f.seek(0, io.SEEK_END) - _TAIL_BYTES)
            f.seek(start)
            chunks = f.read().decode("utf-8", errors="replace").split("\n")
    except OSError:
        return None
    complete = chunks[:-1]  # after the last newline: a line still being written
    if start > header_end:
        complete = complete[1:]  # the first chunk may start mid-line
    complete = [line for line in complete if line.strip()]
    if not header or not complete:
        return None
    return dict(zip(next(csv.reader([header])), next(csv.reader([complete[-1]])), strict=False))
