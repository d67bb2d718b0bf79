"""Which instruments running runs hold, so that a viewer (the GUI's bench panel) opens only the ones nobody holds.

Two sources, because runs started by hand (``labctl run`` in a shell) never go through the queue:

- the claims of running queue entries (``cycler@192.168.1.20:9031#3``, ``impedance@GPIB0::4::INSTR``), which hold
  from the moment the daemon starts the entry, before its run has registered;
- every run the registry shows ``running``: its process holds every role it opened, which is every role of its
  bench file (``metadata.json``'s bench), not only those its procedure uses. A simulated bench is private to its
  run, so there a run holds what the queue would claim for it: its procedure's roles, by the bench's name
  (``cycler@sim#1``), as if every run shared one bench.

An instrument is named by role and resource, without the cycler channel: holding any channel of a cycler holds
the cycler, because channels of one cycler share its connection and its login (see docs/gui.md). No Qt.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from labctl.bdf_columns import CURRENT, CYCLE, RATE, THICKNESS, TIME, VOLTAGE
from labctl.bench import ROLES, BenchConfig
from labctl.queue.db import Entry
from labctl.queue.entries import claims
from labctl.store import RunRecord
from labctl.store.reader import RunReader
from labctl.store.registry import UNREACHABLE

log = logging.getLogger(__name__)

# time-series columns of a run's latest reading -> keys of its live ``status`` records (and rate-monitor logs)
READING_COLUMNS = {
    TIME: "test_time_s",
    VOLTAGE: "voltage_V",
    CURRENT: "current_A",
    CYCLE: "cycle",
    RATE: "rate_A_s",
    THICKNESS: "thickness_nm",
}


@dataclass(frozen=True)
class Holder:
    """A running run (or a queue entry whose run is starting) that holds an instrument."""

    run_id: str | None  # None: the daemon started the entry, its run has not registered yet
    procedure: str
    entry_id: int | None = None  # None: started by hand
    channel: int | None = None  # the cycler channel it drives, for a cycler
    folder: Path | None = None

    def describe(self) -> str:
        """``run RUN_ID (entry N, procedure, channel C)`` with the parts that are known."""
        parts = [f"entry {self.entry_id}" if self.entry_id is not None else "by hand", self.procedure]
        if self.channel is not None:
            parts.append(f"channel {self.channel}")
        who = f"run {self.run_id}" if self.run_id else "a starting run"
        return f"{who} ({', '.join(parts)})"


def instrument(role: str, resource: str) -> str:
    """The name an instrument is held by: ``role@resource``, blanks and letter case ignored (VISA names are not
    case-sensitive; treating two spellings of one port as one errs on the safe side)."""
    return f"{role}@{resource.strip().casefold()}"


def parse_claim(claim: str) -> tuple[str, int | None]:
    """A queue claim as (instrument, cycler channel or None)."""
    role, _, resource = claim.partition("@")
    channel = None
    if role == "cycler" and "#" in resource:
        resource, _, number = resource.rpartition("#")
        channel = int(number) if number.isdigit() else None
    return instrument(role, resource), channel


def bench_roles(config: BenchConfig) -> tuple[str, ...]:
    """The roles a bench has: a simulated bench serves every role."""
    return ROLES if config.sim is not None else tuple(config.roles)


def bench_instruments(config: BenchConfig) -> dict[str, str]:
    """Role -> the instrument that plays it on this bench (named as the queue claims it)."""
    roles = bench_roles(config)
    return {role: parse_claim(claim)[0] for role, claim in zip(roles, claims(config, roles, None), strict=True)}


def holders(entries: list[Entry], records: list[RunRecord]) -> dict[str, list[Holder]]:
    """Instrument -> the running runs that hold it, queue entries first, each run once per instrument."""
    held: dict[str, list[Holder]] = {}
    running = [e for e in entries if e.active]
    for entry in running:
        folder = next((Path(r.folder) for r in records if r.id == entry.run_id), None)
        for claim in entry.claims:
            name, channel = parse_claim(claim)
            _add(held, name, Holder(entry.run_id, entry.procedure, entry.id, channel, folder))
    for record in (r for r in records if r.status in ("running", UNREACHABLE)):
        # the daemon learns its child's run id a moment after the run registers: match by process too
        queued = next((e.id for e in running if record.id == e.run_id or record.pid == e.pid), None)
        for name, channel in run_instruments(Path(record.folder)).items():
            _add(held, name, Holder(record.id, record.procedure, queued, channel, Path(record.folder)))
    return held


def run_instruments(folder: Path) -> dict[str, int | None]:
    """Instrument -> cycler channel (None for others) of what a run's process opened, from its metadata."""
    try:
        metadata = RunReader(folder).metadata()
        if "bench" not in metadata and metadata.get("followed"):
            return {}  # a test labctl follows through an export holds none of labctl's instruments
        config = BenchConfig.model_validate(metadata["bench"]["config"])
    except (OSError, ValueError, KeyError, TypeError, ValidationError) as e:  # written before the run registers,
        # so only a damaged folder gets here
        log.warning("cannot tell what the run in %s holds: %s", folder, e)
        return {}
    roles = tuple(metadata.get("instruments") or ()) if config.sim is not None else tuple(config.roles)
    channel = config.roles["cycler"].channel if "cycler" in config.roles else None
    return dict(parse_claim(claim) for claim in claims(config, roles, channel))


def latest_reading(folder: Path) -> dict[str, float]:
    """A run's last stored sample, in the keys of its live ``status`` records (empty before its first sample)."""
    row = RunReader(folder).last_row() or {}
    reading = {}
    for column, key in READING_COLUMNS.items():
        try:
            reading[key] = float(row[column])
        except (KeyError, ValueError):
            continue
    return reading


def reading_of(holder: Holder, live: dict[str, Any] | None) -> dict[str, Any]:
    """The freshest values of a holder: its live feed's last status when the caller follows it, else its folder's
    last sample."""
    if live:
        return live
    return latest_reading(holder.folder) if holder.folder is not None else {}


def _add(held: dict[str, list[Holder]], name: str, holder: Holder) -> None:
    """Add a holder of an instrument, merged with what is known of the same run (by run id or queue entry)."""
    others = held.setdefault(name, [])
    for n, h in enumerate(others):
        if (h.run_id and h.run_id == holder.run_id) or (h.entry_id is not None and h.entry_id == holder.entry_id):
            others[n] = replace(
                h,
                run_id=h.run_id or holder.run_id,
                folder=h.folder or holder.folder,
                channel=h.channel if h.channel is not None else holder.channel,
            )
            return
    others.append(holder)
