"""Every cycler channel of a bench at a glance: what each channel is doing (idle, waiting, running, finished,
failed, aborted, interrupted, short), with which cell and procedure, its latest values and how long its test has
left. The GUI's channel grid draws this; no Qt.

Which channels a bench has:

- a simulated bench: 1..``SimConfig.channels`` (8 for ``sim``; a bench file's ``[sim] channels``, up to 64);
- a real bench: its cycler's channel count is only known over a CTI connection (a second login beside the runs',
  see docs/gui.md), so the channels are the bench file's cycler channel and every channel a run in the registry or
  an entry in the queue has used on the same cycler (same resource), or 1..``channels`` when the caller gives a
  count.

It is all read cheaply on each look: the registry and the queue (one query each), the last line of a running run's
time series, the events its run appended since the previous look, and its live values when the caller follows its
feed. What a run's folder says once (its channel, cell area, plan) and how an ended run ended are kept.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from labctl.bdf_columns import CURRENT, CYCLE, STEP, TIME, VOLTAGE
from labctl.bench import load_config
from labctl.live.holders import bench_instruments, parse_claim, run_instruments
from labctl.live.state import FAILURE_KINDS
from labctl.queue.db import WAITING, Entry, QueueDB
from labctl.store import Registry, RunReader, RunRecord
from labctl.store.folder import EVENTS
from labctl.store.registry import UNREACHABLE
from labctl.units import density_mA_cm2

Live = Callable[[str], dict[str, Any] | None]
SHORT_KINDS = frozenset({"hard_short", "eis_short"})  # a CCD's or CE run's short, the EIS short signal
ALERT_KINDS = FAILURE_KINDS | SHORT_KINDS | {"safety_limit", "resume_refused"}  # shown until a newer alert
STICKY = frozenset({"short", "failed", "interrupted"})  # a cell that needs a hand: shown even while entries wait
STATES = ("running", "unreachable", "short", "failed", "interrupted", "waiting", "finished", "aborted",
          "idle")  # as the grid counts them; unreachable: running on a PC not heard of (labctl.store.registry)
ROW_VALUES = {TIME: "test_time_s", VOLTAGE: "voltage_V", CURRENT: "current_A", CYCLE: "cycle", STEP: "step"}


@dataclass(frozen=True)
class ChannelStatus:
    """One cycler channel now. The run fields describe its running or latest run, or for ``waiting`` the next
    queue entry; values are None when unknown (before the first sample, or never measured)."""

    channel: int
    state: str = "idle"  # one of STATES
    run_id: str | None = None
    entry_id: int | None = None  # the queue entry of the run shown, or the next waiting one
    entry_state: str | None = None  # that entry's queue state (queued, held, running)
    procedure: str = ""
    cell_id: str = ""
    voltage_V: float | None = None
    current_A: float | None = None
    density_mA_cm2: float | None = None  # from the current and the run's electrode area
    cycle: int | None = None
    step: int | None = None
    test_time_s: float | None = None  # time in test
    left_s: float | None = None  # the planned test time still to go (None: no plan, or ended)
    event: str = ""  # the last event (the last alert, once there is one): kind and a few words
    event_detail: str = ""  # its full text, if it has one
    event_at: float | None = None  # its Unix time
    result: str = ""  # an ended run's result in brief, or its error
    ended_at: str | None = None  # ISO, UTC
    waiting: int = 0  # queue entries waiting for this channel


@dataclass(frozen=True)
class RunFacts:
    """What a run's folder says once: where it ran and what it planned."""

    channel: int | None  # on this bench's cycler; None: elsewhere, or no cycler
    area_cm2: float | None
    planned_s: float | None


class EventTail:
    """A run's ``events.jsonl``, read on from where the previous look stopped (only complete lines)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.shown: dict[str, Any] | None = None  # the last alert, else the last event
        self.shorted = False

    def read(self) -> EventTail:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return self  # no event yet
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        for line in complete.splitlines():
            try:
                self._take(json.loads(line))
            except ValueError:
                continue  # a damaged line: the others still count
        return self

    def _take(self, event: dict[str, Any]) -> None:
        kind = event.get("kind")
        self.shorted |= kind in SHORT_KINDS
        if kind in ALERT_KINDS or self.shown is None or self.shown.get("kind") not in ALERT_KINDS:
            self.shown = event


def event_text(event: dict[str, Any]) -> str:
    """An event in a few words: its kind and its label, the limit it hit, its current density or its cycle."""
    text = str(event.get("kind", "event")).replace("_", " ")
    density = event.get("current_density_mA_cm2")
    for key in ("label", "limit"):
        if event.get(key):
            return f"{text} {event[key]}"
    if isinstance(density, int | float):
        return f"{text} at {density:g} mA/cm²"
    if isinstance(event.get("cycle"), int):
        return f"{text}, cycle {event['cycle']}"
    return text


class ChannelBoard:
    """The cycler channels of the bench ``spec`` (``sim``, ``sim-sp200``, a bench file) and what each is doing, from
    the store's ``registry`` and ``queue``. ``channels``: how many a real cycler has (see the module's text).
    BenchError for a bench that cannot be read."""

    def __init__(self, spec: str, queue: QueueDB, registry: Registry, channels: int | None = None) -> None:
        self.config = load_config(spec)
        self.name = self.config.name
        self.queue = queue
        self.registry = registry
        self.cycler = bench_instruments(self.config).get("cycler")  # None: a bench without a cycler
        sim = self.config.sim
        self.count = sim.channels if sim is not None and channels is None else channels
        configured = self.config.roles["cycler"].channel if "cycler" in self.config.roles else None
        self.configured = configured or 1
        self._facts: dict[str, RunFacts] = {}
        self._tails: dict[str, EventTail] = {}
        self._ended: dict[tuple[str, str], ChannelStatus] = {}

    def statuses(self, live: Live = lambda _: None) -> list[ChannelStatus]:
        """Every channel in order; ``live(run_id)`` gives a followed run's latest live values (or None)."""
        if self.cycler is None:
            return []
        runs: dict[int, list[RunRecord]] = {}
        for record in self.registry.list():  # in order of start
            if (channel := self._facts_of(record).channel) is not None:
                runs.setdefault(channel, []).append(record)
        entries: dict[int, list[Entry]] = {}
        for entry in self.queue.entries():  # in queue order
            if (entry.active or entry.state in WAITING) and (channel := self._claimed(entry)) is not None:
                entries.setdefault(channel, []).append(entry)
        numbers = set(range(1, (self.count or 0) + 1)) | {self.configured} | set(runs) | set(entries)
        return [self._status(n, runs.get(n, []), entries.get(n, []), live) for n in sorted(numbers)]

    def _claimed(self, entry: Entry) -> int | None:
        for claim in entry.claims:
            name, channel = parse_claim(claim)
            if name == self.cycler and channel is not None:
                return channel
        return None

    def _status(self, n: int, runs: list[RunRecord], entries: list[Entry], live: Live) -> ChannelStatus:
        """Running > (a latest run that needs a hand) > waiting > the latest run's end > idle."""
        waiting = [e for e in entries if e.state in WAITING]
        running = [r for r in runs if r.status in ("running", UNREACHABLE)]
        if running:
            return self._running(n, running[-1], entries, live, len(waiting))
        if starting := [e for e in entries if e.state == "running" and e.run_id is None]:
            return replace(_of_entry(n, starting[0], "running"), event="starting", waiting=len(waiting))
        latest = self._ended_status(n, runs[-1]) if runs else None
        if latest is not None and (latest.state in STICKY or not waiting):
            return replace(latest, waiting=len(waiting))
        if waiting:
            return replace(_of_entry(n, waiting[0], "waiting"), waiting=len(waiting))
        return ChannelStatus(n)

    def _running(self, n: int, record: RunRecord, entries: list[Entry], live: Live, waiting: int) -> ChannelStatus:
        facts = self._facts_of(record)
        tail = self._tails.setdefault(record.id, EventTail(Path(record.folder) / EVENTS)).read()
        values = _reading(Path(record.folder), live(record.id), facts.area_cm2)
        left = None
        if facts.planned_s is not None:
            left = max(0.0, facts.planned_s - (values.get("test_time_s") or 0.0))
        entry = next((e for e in entries if e.run_id == record.id), None)
        return ChannelStatus(
            n, "short" if tail.shorted else record.status, record.id, procedure=record.procedure,
            cell_id=record.cell_id or "", entry_id=entry.id if entry else None,
            entry_state=entry.state if entry else None, left_s=None if tail.shorted else left, waiting=waiting,
            **values, **_event_fields(tail.shown),
        )  # fmt: skip

    def _ended_status(self, n: int, record: RunRecord) -> ChannelStatus:
        """How an ended run ended, read once (an interrupted run may be resumed: then it is read again)."""
        key = (record.id, record.status)
        if key not in self._ended:
            self._tails.pop(record.id, None)
            folder = Path(record.folder)
            tail = EventTail(folder / EVENTS).read()
            result = RunReader(folder).results() or {}
            shorted = tail.shorted or result.get("failure_mode") in SHORT_KINDS
            summary = record.summary or {}
            values = _reading(folder, None, self._facts_of(record).area_cm2)
            self._ended[key] = ChannelStatus(
                n, "short" if shorted else record.status, record.id, procedure=record.procedure,
                cell_id=record.cell_id or "", result=summary.get("error") or summary.get("brief") or "",
                ended_at=record.ended_at, **values, **_event_fields(tail.shown),
            )  # fmt: skip
        return self._ended[key]

    def _facts_of(self, record: RunRecord) -> RunFacts:
        if record.id not in self._facts:
            self._facts[record.id] = self._read_facts(Path(record.folder))
        return self._facts[record.id]

    def _read_facts(self, folder: Path) -> RunFacts:
        try:
            metadata = RunReader(folder).metadata()
        except (OSError, ValueError):
            return RunFacts(None, None, None)
        if "cycler" not in (metadata.get("instruments") or {}):
            return RunFacts(None, None, None)  # a run that drove no cycler (a deposition, an imported file)
        channel = run_instruments(folder).get(self.cycler or "")
        area = (metadata.get("cell") or {}).get("area_cm2")
        planned = metadata.get("estimated_duration_s")
        return RunFacts(
            channel,
            float(area) if isinstance(area, int | float) and area > 0 else None,
            float(planned) if isinstance(planned, int | float) and 0 < planned < math.inf else None,
        )


def _of_entry(n: int, entry: Entry, state: str) -> ChannelStatus:
    return ChannelStatus(n, state, entry.run_id, entry_id=entry.id, entry_state=entry.state, procedure=entry.procedure,
                         cell_id=entry.params.get("cell_id", ""))  # fmt: skip


def _reading(folder: Path, live: dict[str, Any] | None, area_cm2: float | None) -> dict[str, Any]:
    """The latest values of a run: its live feed's over its last stored row's (the row also gives the step)."""
    row = RunReader(folder).last_row() or {}
    values: dict[str, Any] = {}
    for column, key in ROW_VALUES.items():
        try:
            values[key] = float(row[column])
        except (KeyError, ValueError):
            continue
    live = live or {}
    for key in ("test_time_s", "voltage_V", "current_A", "cycle"):
        if isinstance(live.get(key), int | float):
            values[key] = float(live[key])
    values = {key: value for key, value in values.items() if math.isfinite(value)}  # NaN: not measured
    for key in ("cycle", "step"):
        if key in values:
            values[key] = int(values[key])
    if area_cm2 and isinstance(values.get("current_A"), float):
        values["density_mA_cm2"] = density_mA_cm2(values["current_A"], area_cm2)
    return values


def _event_fields(event: dict[str, Any] | None) -> dict[str, Any]:
    if event is None:
        return {}
    detail = event.get("detail") or event.get("message") or ""
    at = event.get("wall_time")
    return {"event": event_text(event), "event_detail": str(detail),
            "event_at": float(at) if isinstance(at, int | float) else None}
