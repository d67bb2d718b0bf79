"""Which queued entries may start now: a pure function of the entries and the time, so tests need no sleeping.

An entry is due when it is ``queued``, its start time (``not_before``) has come, the entry it waits for
(``after``) has ended (in any way) at least ``rest_s`` ago, and none of the instruments it claims is held by a
running entry. Due entries start in queue order, each taking its claims before the next is considered, so
two runs that need one impedance analyzer take turns, a run at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from labctl.queue.db import ENDED, Entry, iso


def due(entries: list[Entry], now: datetime, hosted: Callable[[str], bool] | None = None) -> list[Entry]:
    """The entries to start now, in queue order; with ``hosted``, only those of the benches it accepts (an agent's:
    the others' entries are left to their agents, and reserve nothing here)."""
    by_id = {e.id: e for e in entries}
    busy = busy_claims(entries)
    chosen = []
    for entry in sorted(entries, key=lambda e: (e.position, e.id)):
        if hosted is not None and not hosted(entry.bench):
            continue
        if entry.state == "queued" and waiting_for(entry, by_id, busy, now) is None:
            chosen.append(entry)
            busy.update(entry.claims)
    return chosen


def waiting_for(entry: Entry, by_id: dict[int, Entry], busy: set[str], now: datetime) -> str | None:
    """What a queued entry still waits for, in words; None if nothing."""
    when = entry.schedule
    if when.not_before and now < when.not_before:
        return f"start at {iso(when.not_before)}"
    if when.after is not None:
        before = by_id.get(when.after)
        if before is None or before.state not in ENDED or before.ended_at is None:
            return f"entry {when.after} to end"
        free_at = datetime.fromisoformat(before.ended_at) + timedelta(seconds=when.rest_s)
        if now < free_at:
            return f"rest until {free_at.isoformat(timespec='seconds')}"
    taken = [claim for claim in entry.claims if claim in busy]
    if taken:
        return ", ".join(taken)
    return None


def busy_claims(entries: list[Entry]) -> set[str]:
    return {claim for e in entries if e.active for claim in e.claims}
