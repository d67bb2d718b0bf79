"""An Arbin channel as a labctl cycler channel, through one pre-made schedule driven by meta-variables.

MITS Pro cannot receive a new schedule step over CTI, so labctl runs one schedule, ``labctl_universal.sdx``
(how to build it: docs/arbin-universal-schedule.md), whose steps read setpoint, limits and mode from
meta-variables that labctl sets with SET_MV:

    MV_UD1 mode: 0 idle at rest, 1 constant current, 2 constant voltage, 9 end the test
    MV_UD2 current setpoint, A (positive charges); in constant voltage the |I| clamp, A (> 0)
    MV_UD3 upper voltage limit, V                    MV_UD4 lower voltage limit, V
    MV_UD5 step time limit, s (0 = none)             MV_UD6 charge limit, Ah of |charge| in the step (0 = none)
    MV_UD7 voltage setpoint, V                       MV_UD8 hold ends when |I| <= this, A (0 = none)

Steps: 1 "Idle" (rest) -> 2 "Constant current" when MV_UD1 = 1, -> 3 "Constant voltage" when MV_UD1 = 2;
step 2 or 3 -> 4 "Segment done" (rest) at the first limit (2: MV_UD3..6; 3: MV_UD5, MV_UD8); 2 or 3 -> 1 when
MV_UD1 = 0; 1 or 4 end the test when MV_UD1 = 9; 4 -> 1 when MV_UD1 = 0.

End of a segment, without trusting MITS's wording: a segment commanded at test time t_cmd has ended when
the channel rests and its step time is shorter than (test time - t_cmd), i.e. it entered "Segment done"
after the command; or it was seen passing current and now rests; or the test is no longer running. A held
voltage that draws no current may read "Rest" in step 3, so for constant voltage neither "seen passing
current" counts nor a step entered on MV_UD1 (the exit condition of the Idle -> 3 jump). Why it ended is
inferred from the reading against the commanded limits (time run, charge passed) first; the exit-condition
text and then the current's direction (constant voltage: the one limit left) are fallbacks.

A channel is never left running for long without labctl (docs/queue.md, "What the cell experiences"):
- Every segment's step time limit on the instrument (MV_UD5) is a lease of at most ``UNWATCHED_LIMIT_S`` beyond
  the last read, renewed by the reads while the segment runs, down to the requested time limit. A process that
  dies or stops reading leaves the cycler to end the segment (rest) within that bound; a segment ended by the
  lease while labctl still reads is an error (labctl fell silent for longer than the bound).
- A process holds an flock on a per-channel lock file while its test runs there; the lock goes with the
  process, even on kill -9. ``begin()`` on a channel still running a labctl test whose lock is free (its
  process died) takes that test over, rests and ends it, then starts; a test whose owner lives, or that
  labctl did not start, is refused.
"""

from __future__ import annotations

import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from labctl import pidlock
from labctl.drivers.arbin.cti import (
    ChannelInfo,
    CTIClient,
    CTIConnectionError,
    CTIError,
    CTIResultError,
    check_float,
    check_text,
)
from labctl.drivers.arbin.messages import ChannelStatus
from labctl.roles import CyclerReading, ResumeRefused

log = logging.getLogger(__name__)

DEFAULT_SCHEDULE = "labctl_universal.sdx"
MV_MODE, MV_CURRENT, MV_MAX_VOLTAGE, MV_MIN_VOLTAGE, MV_TIME, MV_CHARGE = 1, 2, 3, 4, 5, 6
MV_VOLTAGE, MV_CURRENT_LOW = 7, 8
MODE_IDLE, MODE_CONSTANT_CURRENT, MODE_CONSTANT_VOLTAGE, MODE_END = 0.0, 1.0, 2.0, 9.0
TIME_TOL_S = 1e-3  # test and step times are reported to the millisecond
CHARGE_RTOL = 1e-3
SET_MV_NOT_RUNNING = 0x12  # SET_MV result: channel not running
PASSING_CURRENT = (ChannelStatus.CHARGE, ChannelStatus.DISCHARGE)
FAILED_AT_START = (ChannelStatus.UNSAFE, ChannelStatus.ERROR, ChannelStatus.DAQ_MEMORY_UNSAFE, ChannelStatus.FINISHED)
ASSIGN_CHANNEL_RUNNING = 0x14  # ASSIGN_SCHEDULE result: a test runs on the channel
# Longest a segment runs on the instrument past labctl's last read (s): above the longest sample interval
# any procedure allows (600 s), so a live run always renews the lease in time.
UNWATCHED_LIMIT_S = 900.0
TEST_NAME_PREFIX = "labctl "  # every test labctl starts is named so (procedures/cycling.py)
LOCK_DIR_ENV = "LABCTL_LOCK_DIR"  # where channel locks live (default: a per-user folder in the temp dir)


def reason_from_exit_condition(text: str) -> str | None:
    """Map an exit-condition text to an end reason, or None if it names none of the segment's limits.

    Knows the emulator's wording ("StepTime>=Limit", "Charge>=Limit", "Voltage>=Limit", "Voltage<=Limit",
    "Current<=Limit") and limit equations such as "PV_CHAN_Voltage>=MV_UD3"; MITS's real wording is unconfirmed.
    """
    t = text.replace(" ", "").lower()
    if "steptime" in t or "step_time" in t:
        return "time"
    if "current" in t and "<" in t:
        return "current_low"
    if "voltage" in t:
        return "voltage_high" if ">" in t else "voltage_low" if "<" in t else None
    if "charge" in t or "capacity" in t:
        return "charge"
    return None


@dataclass
class _Segment:
    """A commanded segment (constant current; constant voltage when ``voltage_V`` is set) and what labctl has
    seen of it."""

    current_A: float  # the setpoint; for constant voltage the |I| clamp
    until_time_s: float | None
    t_cmd_s: float  # test time read just before the MV writes
    counters_Ah: float  # charge + discharge capacity counters at t_cmd
    max_voltage_V: float = math.inf
    min_voltage_V: float = -math.inf
    until_charge_Ah: float | None = None
    voltage_V: float | None = None
    until_current_A: float | None = None
    lease_s: float = UNWATCHED_LIMIT_S  # the step time limit on the instrument now (MV_UD5), s
    seen_current: bool = False
    ended: bool = False
    end_reason: str | None = None


class UniversalScheduleChannel:
    """One Arbin channel playing labctl's ``CyclerChannel`` role through the universal schedule.

    ``channel`` is the physical channel number, 1-based. ``start_timeout_s`` (wall time) bounds the wait
    for the channel to rest in "Idle" after START, polling every ``poll_interval_s`` with ``sleep``.
    ``unwatched_limit_s`` bounds how long a segment runs on the instrument past the last read (s).
    ``current_range_A`` and ``voltage_range_V`` are the channel's full scale (A, ±V), which CTI does not report; the
    bench file gives them, and the identity passes them on to the safety supervisor (None: not known).
    """

    def __init__(
        self,
        client: CTIClient,
        channel: int,
        *,
        schedule: str = DEFAULT_SCHEDULE,
        start_timeout_s: float = 30.0,
        poll_interval_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        unwatched_limit_s: float = UNWATCHED_LIMIT_S,
        current_range_A: float | None = None,
        voltage_range_V: float | None = None,
    ) -> None:
        if isinstance(channel, bool) or not isinstance(channel, int) or not 1 <= channel <= client.channel_count:
            raise ValueError(f"channel = {channel!r}: the cycler at {client.where} has channels "
                             f"1..{client.channel_count} (physical numbering, 1-based)")
        self._client, self._channel = client, channel
        self._schedule = check_text("schedule", schedule, 200)
        self._start_timeout_s, self._poll_interval_s, self._sleep = start_timeout_s, poll_interval_s, sleep
        self._started = False  # a START of ours may be running on the channel: end() must stop it
        self._segment: _Segment | None = None
        if not check_float("unwatched_limit_s", unwatched_limit_s) > 0:
            raise ValueError(f"unwatched_limit_s = {unwatched_limit_s!r} s must be > 0")
        self._unwatched_s = unwatched_limit_s
        self._lock = ChannelLock(client.where, channel)
        self._range = {name: str(value) for name, value in (("current_range_A", current_range_A),
                                                             ("voltage_range_V", voltage_range_V)) if value is not None}

    def identity(self) -> dict[str, str]:
        """Make, model, serial number (from login), physical channel and its range (as configured)."""
        return {"make": "Arbin", "model": "MITS Pro (CTI)", "serial_number": self._client.serial_number,
                "channel": str(self._channel), **self._range}

    def begin(self, test_name: str) -> None:
        """Assign the universal schedule, start it as ``test_name`` (<= 72 characters), wait until it rests."""
        check_text("test_name", test_name, 72)
        self._lock.acquire()
        try:
            self._client.assign_schedule(self._channel, self._schedule)
        except CTIResultError as e:
            if e.code != ASSIGN_CHANNEL_RUNNING:
                raise
            self._rest_dead_test()
            self._client.assign_schedule(self._channel, self._schedule)
        self._started = True
        try:
            self._client.start(self._channel, test_name)
        except CTIResultError:
            self._started = False  # the cycler refused: nothing of ours runs there
            raise
        self._segment = None
        self._await_rest()

    def apply_current(
        self,
        current_A: float,
        *,
        max_voltage_V: float,
        min_voltage_V: float,
        until_time_s: float | None = None,
        until_charge_Ah: float | None = None,
    ) -> None:
        """Start a constant-current segment (A, positive charges) that the schedule ends at its first limit.

        Limits: voltage in V, ``until_time_s`` in s and ``until_charge_Ah`` in Ah of |charge| (None = no limit).
        """
        current = check_float("current_A", current_A)
        if current == 0:
            raise ValueError("current_A is 0; use rest() for zero current")
        high, low = check_float("max_voltage_V", max_voltage_V), check_float("min_voltage_V", min_voltage_V)
        if not high > low:
            raise ValueError(f"max_voltage_V = {high} V must be above min_voltage_V = {low} V")
        _check_limits(until_time_s=until_time_s, until_charge_Ah=until_charge_Ah)
        self._require_test()
        info = self._client.channel_info(self._channel)
        self._set(MV_MODE, MODE_IDLE)  # back to Idle first, so no step runs on half-written limits
        lease = self._lease(until_time_s, 0.0)
        for index, value in ((MV_CURRENT, current), (MV_MAX_VOLTAGE, high), (MV_MIN_VOLTAGE, low),
                             (MV_TIME, lease), (MV_CHARGE, until_charge_Ah or 0.0)):
            self._set(index, value)
        self._set(MV_MODE, MODE_CONSTANT_CURRENT)
        self._segment = _Segment(current, until_time_s, info.test_time_s,
                                 info.charge_capacity_Ah + info.discharge_capacity_Ah, max_voltage_V=high,
                                 min_voltage_V=low, until_charge_Ah=until_charge_Ah, lease_s=lease)

    def apply_voltage(
        self,
        voltage_V: float,
        *,
        max_current_A: float,
        until_time_s: float | None = None,
        until_current_A: float | None = None,
    ) -> None:
        """Hold ``voltage_V`` (V) with |I| clamped to ``max_current_A`` (A) until the schedule ends the segment at
        its first limit: step time ``until_time_s`` (s), or |I| fallen to ``until_current_A`` (A); None = no limit.
        """
        voltage = check_float("voltage_V", voltage_V)
        clamp = check_float("max_current_A", max_current_A)
        if not clamp > 0:
            raise ValueError(f"max_current_A = {max_current_A!r} must be > 0: the |I| clamp of the hold, A")
        _check_limits(until_time_s=until_time_s, until_current_A=until_current_A)
        if until_current_A is not None and until_current_A >= clamp:
            raise ValueError(f"until_current_A = {until_current_A!r} A must be below max_current_A = {clamp!r} A, "
                             "or the hold ends as soon as it starts")
        self._require_test()
        info = self._client.channel_info(self._channel)
        self._set(MV_MODE, MODE_IDLE)  # back to Idle first, so no step runs on half-written limits
        lease = self._lease(until_time_s, 0.0)
        for index, value in ((MV_CURRENT, clamp), (MV_TIME, lease), (MV_VOLTAGE, voltage),
                             (MV_CURRENT_LOW, until_current_A or 0.0)):
            self._set(index, value)
        self._set(MV_MODE, MODE_CONSTANT_VOLTAGE)
        self._segment = _Segment(clamp, until_time_s, info.test_time_s,
                                 info.charge_capacity_Ah + info.discharge_capacity_Ah, voltage_V=voltage,
                                 until_current_A=until_current_A, lease_s=lease)

    def rest(self) -> None:
        """End any segment now (MV_UD1 = 0): zero current, the channel rests in "Idle"."""
        self._segment = None
        if not self._started:
            return
        try:
            self._set(MV_MODE, MODE_IDLE)
        except CTIResultError as e:
            if e.code != SET_MV_NOT_RUNNING:
                raise
            log.info("channel %d: the test is not running, so the current is already zero", self._channel)

    def read(self) -> CyclerReading:
        """Measure the channel; say whether the last segment still runs and, if it ended, why."""
        info = self._client.channel_info(self._channel)
        active, reason = self._segment_state(info)
        if active:
            self._renew_lease(info)
        return CyclerReading(
            test_time_s=info.test_time_s, step_time_s=info.step_time_s, voltage_V=info.voltage_V,
            current_A=info.current_A, charge_capacity_Ah=info.charge_capacity_Ah,
            discharge_capacity_Ah=info.discharge_capacity_Ah, status=info.status_word,
            segment_active=active, end_reason=reason,
        )  # fmt: skip

    def take_over(self, *, force: bool = False) -> bool:
        """Adopt a test left running on this channel by a process that died, so that rest() and end() act on
        it; True if one was running. CTIError if a live labctl process still runs its test there, unless
        ``force`` (the operator's ``labctl channel rest``: that run then sees its test ended)."""
        try:
            self._lock.acquire()
        except CTIError as e:
            if not force:
                raise
            log.warning("channel %d: %s; taking it over anyway", self._channel, e)
        self._started = self._client.channel_info(self._channel).running
        return self._started

    def resume(self, test_name: str, after_test_time_s: float) -> CyclerReading:
        """Take over our test ``test_name`` left on the channel by a process that died, and rest it (MV_UD1 = 0) so
        the next segment starts clean; returns the reading from before the rest. ResumeRefused if a live process
        holds the channel, no test or another one runs there, or its test time is below ``after_test_time_s``
        (the test was restarted: time went backwards)."""
        try:
            self._lock.acquire()
        except CTIError as e:
            raise ResumeRefused(str(e)) from None
        info = self._client.channel_info(self._channel)
        where = f"channel {self._channel}"
        if not info.running:
            why = f"{where} runs no test ({info.status_word}): its test was ended, so the run cannot go on in it"
        elif info.test_name != test_name:
            why = f"{where} runs test {info.test_name!r}, not {test_name!r}: it was used meanwhile"
        elif info.test_time_s < after_test_time_s - TIME_TOL_S:
            why = (f"{where}: the test time went backwards ({info.test_time_s:.0f} s now, {after_test_time_s:.0f} s "
                   "stored): the test was restarted")
        else:
            self._started, self._segment = True, None
            before = self.read()
            self.rest()
            return before
        self._lock.release()
        raise ResumeRefused(why)

    def end(self) -> None:
        """End the test (MV_UD1 = 9, then STOP); best effort, never raises, safe to call again."""
        self._segment = None
        if not self._started:
            return
        try:
            self._set(MV_MODE, MODE_END)
        except CTIError as e:
            log.warning("channel %d: setting MV_UD1 = 9 to end the test failed (%s); stopping it", self._channel, e)
        try:
            self._client.stop(self._channel)
        except CTIConnectionError as e:
            log.error("channel %d: STOP could not reach the cycler (%s); call end() again or stop it in MITS",
                      self._channel, e)
            return
        except CTIError as e:
            log.warning("channel %d: the cycler refused STOP (%s)", self._channel, e)
        self._started = False
        self._lock.release()

    def close(self) -> None:
        """Close the CTI connection (does not stop the test; call end() for that)."""
        self._client.close()
        self._lock.release()

    # --- internals ---

    def _set(self, index: int, value: float) -> None:
        self._client.set_meta_variable(self._channel, index, value)

    def _lease(self, until_time_s: float | None, ran_s: float) -> float:
        """The step time limit to put on the instrument (s): the requested one, or ``UNWATCHED_LIMIT_S`` past
        ``ran_s`` (an upper bound of the segment's step time now), whichever comes first."""
        lease = ran_s + self._unwatched_s
        return min(until_time_s, lease) if until_time_s else lease

    def _renew_lease(self, info: ChannelInfo) -> None:
        """Push the segment's time limit forward once half the bound is used, so it never ends while read."""
        seg = self._segment
        assert seg is not None
        ran = info.test_time_s - seg.t_cmd_s
        if seg.lease_s == seg.until_time_s or seg.lease_s - ran > self._unwatched_s / 2:
            return
        seg.lease_s = self._lease(seg.until_time_s, ran)
        self._set(MV_TIME, seg.lease_s)

    def _rest_dead_test(self) -> None:
        """ASSIGN found a test running: rest and end it if labctl started it and its process died (the lock is
        ours now), else say who holds the channel."""
        info = self._client.channel_info(self._channel)
        if not info.test_name.startswith(TEST_NAME_PREFIX):
            raise CTIError(f"channel {self._channel} runs test {info.test_name!r}, which labctl did not start; "
                           f"stop it in MITS Pro or with `labctl channel rest BENCH {self._channel}`")
        log.warning("channel %d: test %r of a labctl process that died was still running (%s); resting and "
                    "ending it before starting", self._channel, info.test_name, info.status_word)
        self._started = True
        self.rest()
        self.end()
        self._lock.acquire()

    def _require_test(self) -> None:
        if not self._started:
            raise RuntimeError(f"channel {self._channel} runs no test of ours; call begin() first")

    def _await_rest(self) -> None:
        deadline = time.monotonic() + self._start_timeout_s
        while True:
            info = self._client.channel_info(self._channel)
            if info.status == ChannelStatus.REST:
                return
            if info.status in FAILED_AT_START:
                raise CTIError(f"channel {self._channel} went {info.status_word!r} right after START of "
                               f"{self._schedule}; check the cell and the schedule's safety limits")
            if time.monotonic() >= deadline:
                raise CTIError(f"channel {self._channel} did not rest within {self._start_timeout_s:g} s of START "
                               f"(last status {info.status_word!r}); check that {self._schedule} begins with "
                               "the 'Idle' rest step")
            self._sleep(self._poll_interval_s)

    def _segment_state(self, info: ChannelInfo) -> tuple[bool, str | None]:
        """(segment_active, end_reason) for this reading; an ended segment stays ended."""
        seg = self._segment
        if seg is None:
            return False, None
        if seg.ended:
            return False, seg.end_reason
        if not info.running:
            seg.ended = True  # stopped from outside, finished or unsafe: the status says why
            return False, None
        if info.status in PASSING_CURRENT:
            seg.seen_current = True
            return True, None
        if info.status != ChannelStatus.REST:
            return True, None
        elapsed = info.test_time_s - seg.t_cmd_s
        entered_after_command = info.step_time_s < elapsed - TIME_TOL_S
        # A segment that ended at the very instant it was commanded leaves only the exit condition to tell.
        ended_at_once = abs(info.step_time_s - elapsed) <= TIME_TOL_S and bool(
            reason_from_exit_condition(info.exit_condition))
        if seg.voltage_V is None:
            ended = seg.seen_current or entered_after_command or ended_at_once
        else:  # a hold drawing no current rests in step 3 too: it is over only if a limit, not MV_UD1, moved it
            ended = ended_at_once or (entered_after_command and "mv_ud1" not in info.exit_condition.lower())
        if ended:
            ran_s = elapsed - info.step_time_s
            seg.ended, seg.end_reason = True, _end_reason(seg, info, ran_s)
            if _lease_expired(seg, info, ran_s):
                raise CTIError(f"channel {self._channel}: the cycler ended the segment after {seg.lease_s:g} s, "
                               f"its unwatched limit: labctl did not read the channel within "
                               f"{self._unwatched_s:g} s; the channel rests")
            return False, seg.end_reason
        return True, None


def _check_limits(**limits: float | None) -> None:
    """ValueError naming the first limit that is neither None nor a number > 0."""
    for name, value in limits.items():
        if value is not None and not check_float(name, value) > 0:
            raise ValueError(f"{name} = {value!r} must be > 0, or None for no limit")


def _end_reason(seg: _Segment, info: ChannelInfo, ran_s: float) -> str | None:
    """Which limit ended the segment, from how long it ran (s) and the reading; text and sign are fallbacks."""
    if seg.until_time_s and ran_s >= seg.until_time_s - TIME_TOL_S:
        return "time"
    if seg.voltage_V is not None:
        return _hold_end_reason(seg, info)
    # At rest the voltage has relaxed from the limit that ended the step.
    return (_limit_in_reading(seg, info, ran_s) or reason_from_exit_condition(info.exit_condition)
            or ("voltage_high" if seg.current_A > 0 else "voltage_low"))


def _limit_in_reading(seg: _Segment, info: ChannelInfo, ran_s: float) -> str | None:
    """The constant-current limit the reading shows reached (charge passed, voltage), or None."""
    if seg.voltage_V is not None:
        return None
    counters = info.charge_capacity_Ah + info.discharge_capacity_Ah
    measured = counters - seg.counters_Ah if counters >= seg.counters_Ah else counters  # fell: schedule reset them
    passed_Ah = max(measured, abs(seg.current_A) * ran_s / 3600.0)
    if seg.until_charge_Ah and passed_Ah >= seg.until_charge_Ah * (1 - CHARGE_RTOL):
        return "charge"
    if info.voltage_V >= seg.max_voltage_V:
        return "voltage_high"
    if info.voltage_V <= seg.min_voltage_V:
        return "voltage_low"
    return None


def _lease_expired(seg: _Segment, info: ChannelInfo, ran_s: float) -> bool:
    """Whether the instrument ended the segment on its unwatched limit (before the requested time), not on a
    limit the procedure set."""
    if seg.lease_s == seg.until_time_s or ran_s < seg.lease_s - TIME_TOL_S:
        return False
    if seg.voltage_V is not None:
        return reason_from_exit_condition(info.exit_condition) in ("time", None)
    return _limit_in_reading(seg, info, ran_s) is None


def _hold_end_reason(seg: _Segment, info: ChannelInfo) -> str | None:
    """Why a constant-voltage segment ended before its time limit: the exit-condition text, else the one limit
    left (the current limit if set; otherwise the time limit, however short it looks)."""
    reason = reason_from_exit_condition(info.exit_condition)
    if reason in ("time", "current_low"):
        return reason
    return "current_low" if seg.until_current_A else "time" if seg.until_time_s else None


class ChannelLock:
    """An flock on a per-channel file (cycler address and channel) while this process runs a test there; it
    goes with the process, so a free lock on a running channel means its labctl process died."""

    def __init__(self, where: str, channel: int) -> None:
        name = re.sub(r"[^A-Za-z0-9.-]", "_", f"{where}-ch{channel}") + ".lock"
        self.path = lock_dir() / name
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Hold the lock (again: no-op); CTIError naming the holder's pid if a live process holds it."""
        if self._file is not None:
            return
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            self._file = pidlock.hold(self.path)
        except pidlock.LockHeld as e:
            raise CTIError(f"{self.path.stem}: a live labctl process (pid {e.pid}) runs a test on this channel; "
                           f"stop that run first (Ctrl-C, `labctl queue cancel`, or `kill {e.pid}`)") from None

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def lock_dir() -> Path:
    """Where channel locks live: ``$LABCTL_LOCK_DIR``, else a per-user folder in the temp dir."""
    configured = os.environ.get(LOCK_DIR_ENV)
    return Path(configured) if configured else Path(tempfile.gettempdir()) / f"labctl-{os.getuid()}" / "channels"
