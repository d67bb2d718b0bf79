"""What ``labctl queue list`` and the window's queue panel show of an entry: why it waits, how far its run is, or
how it ended."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

from labctl.bdf_columns import CURRENT, CYCLE, TIME, VOLTAGE
from labctl.queue.db import UNREACHABLE, Entry
from labctl.queue.schedule import due, waiting_for
from labctl.store.reader import RunReader
from labctl.units import SECONDS_PER_HOUR, percent_done

__all__ = ["progress_text", "status_text"]


ROLE_WORDS = {"cycler": "the cycler", "impedance": "the impedance analyzer", "rate_monitor": "the rate monitor"}


def status_text(entry: Entry, entries: list[Entry], now: datetime, folder: Path | None, window: bool = False) -> str:
    """One line: what a waiting entry waits for, a running run's progress, or an ended run's headline. ``window``:
    in the GUI's words (its buttons, instruments by name) rather than the command line's (commands, claims)."""
    if entry.state == "queued":
        starting = due(entries, now)
        if entry in starting:
            return "due: starts at the daemon's next look"
        return f"waits for {_waits_for(entry, entries, starting, now, window)}"
    if entry.state == "held":
        return "held: Release lets it start" if window else "held: `labctl queue release` lets it start"
    if entry.state == UNREACHABLE:
        return (f"unreachable: agent {entry.agent} not heard from; never started elsewhere, its agent takes it back "
                "when it returns")
    if entry.state == "running":
        if entry.stop_requested:
            return "stopping (cancelled)"
        return progress_text(folder) if folder else "starting"
    outcome = entry.outcome or {}
    return outcome.get("error") or outcome.get("brief") or outcome.get("headline") or ""


def _waits_for(entry: Entry, entries: list[Entry], starting: list[Entry], now: datetime, window: bool) -> str:
    users = [e for e in entries if e.active] + starting
    busy = {claim for e in users for claim in e.claims}
    reason = waiting_for(entry, {e.id: e for e in entries}, busy, now)
    taken = [claim for claim in entry.claims if claim in busy]
    if not window or reason != ", ".join(taken):
        return str(reason)
    return "; ".join(f"{claim_words(c)} (entry {', '.join(str(e.id) for e in users if c in e.claims)} uses it)"
                     for c in taken)  # fmt: skip


def claim_words(claim: str) -> str:
    """A queue claim in words: ``cycler@sim#5`` → "channel 5 of the cycler", ``impedance@…`` → "the impedance
    analyzer"."""
    role, _, resource = claim.partition("@")
    name = ROLE_WORDS.get(role, role.replace("_", " "))
    _, mark, channel = resource.rpartition("#")
    return f"channel {channel} of {name}" if role == "cycler" and mark else name


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
