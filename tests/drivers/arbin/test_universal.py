"""UniversalScheduleChannel: the universal-schedule contract (shared brief) checked frame by frame.

Every MV write is a hand-written SET_MV_VALUE frame (ArbinCTI_Protocol v1.1; meta codes MV_UD1..4 = 52..55,
MV_UD5..16 = 105..116), so these tests fix the exact order of writes. Physical channel 2 = wire index 1.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

import pytest

from labctl.drivers.arbin.cti import ATTEMPTS, CTIClient, CTIError, CTIResultError
from labctl.drivers.arbin.universal import UNWATCHED_LIMIT_S, UniversalScheduleChannel
from labctl.roles import CyclerChannel

CH2 = "01 00 00 00"
IDLE, CHARGE, DISCHARGE, REST, UNSAFE, START = 0, 2, 3, 4, 8, 21  # channel status codes
META = {1: "34 00 00 00", 2: "35 00 00 00", 3: "36 00 00 00", 4: "37 00 00 00", 5: "69 00 00 00", 6: "6A 00 00 00",
        7: "6B 00 00 00", 8: "6C 00 00 00"}


@pytest.fixture
def login(cti):
    return (cti.login_request(), cti.login_feedback(channels=8))


@pytest.fixture
def begun(cti, login):
    """Transcript of begin("ccd cell-7"): assign the universal schedule, start, read the channel at rest."""
    return [
        login,
        (cti.assign_request(CH2, "labctl_universal.sdx"), cti.result_feedback(cti.ASSIGN_FB, 1, 0)),
        (cti.start_request("ccd cell-7", ["01 00"]), cti.result_feedback(cti.START_FB, 1, 0)),
        info(cti, REST),
    ]


def info(cti, status: int, **record) -> tuple[bytes, bytes]:
    """GET_CHANNELS_INFO for channel 2, answered with one record."""
    return cti.channel_info_request("01 00"), cti.channels_feedback(cti.channel_record(1, status, **record))


def mv(cti, index: int, value: float, result: int = 0) -> tuple[bytes, bytes]:
    """SET_MV_VALUE of MV_UD<index> on channel 2, answered with ``result``."""
    return cti.set_mv_request(CH2, META[index], cti.f32(value)), cti.result_feedback(cti.SET_MV_FB, 1, result)


def commanded(cti, current, *, high=0.5, low=-0.5, until_time=UNWATCHED_LIMIT_S, until_charge=0.0, t_cmd=100.0) -> list:
    """Transcript of apply_current: the reading that fixes t_cmd, then MV writes in contract order."""
    return [info(cti, REST, test_time=t_cmd, step_time=t_cmd), mv(cti, 1, 0.0), mv(cti, 2, current),
            mv(cti, 3, high), mv(cti, 4, low), mv(cti, 5, until_time), mv(cti, 6, until_charge), mv(cti, 1, 1.0)]


@contextmanager
def channel(cti, transcript, sleeps=None):
    with cti.replay(transcript) as server, CTIClient("127.0.0.1", server.port) as client:
        yield UniversalScheduleChannel(client, 2, sleep=(sleeps if sleeps is not None else []).append)


def run_segment(ch, current=0.001, **limits) -> None:
    ch.begin("ccd cell-7")
    ch.apply_current(current, max_voltage_V=0.5, min_voltage_V=-0.5, **limits)


def test_channel_satisfies_cycler_channel_role(cti, login):
    """labctl.roles.CyclerChannel is what procedures ask for."""
    with channel(cti, [login]) as ch:
        assert isinstance(ch, CyclerChannel)


def test_identity_names_make_model_serial_and_channel(cti, login):
    """Serial number from the USER_LOGIN feedback; channel as the physical number."""
    with channel(cti, [login]) as ch:
        assert ch.identity() == {"make": "Arbin", "model": "MITS Pro (CTI)", "serial_number": "ARB-0042",
                                 "channel": "2"}


def test_begin_assigns_starts_and_waits_for_rest(cti, begun):
    """ASSIGN labctl_universal.sdx, START, then poll until the channel rests in "Idle"."""
    sleeps: list[float] = []
    transcript = [*begun[:3], info(cti, START), begun[3]]
    with channel(cti, transcript, sleeps) as ch:
        ch.begin("ccd cell-7")
    assert len(sleeps) == 1  # one poll found it still starting


def test_begin_raises_when_channel_goes_unsafe(cti, begun):
    """A channel that is Unsafe right after START is reported, not waited for."""
    with channel(cti, [*begun[:3], info(cti, UNSAFE)]) as ch, pytest.raises(CTIError, match="'Unsafe' right after"):
        ch.begin("ccd cell-7")


def test_refused_start_leaves_nothing_for_end_to_stop(cti, begun):
    """START refused (0x14 schedule not compatible): end() must not stop whatever else runs there."""
    transcript = [*begun[:2], (cti.start_request("ccd cell-7", ["01 00"]), cti.result_feedback(cti.START_FB, 1, 0x14))]
    with channel(cti, transcript) as ch:
        with pytest.raises(CTIResultError, match="0x14"):
            ch.begin("ccd cell-7")
        ch.end()


def test_apply_current_writes_meta_variables_in_contract_order(cti, begun):
    """MV_UD1 = 0, then MV_UD2..MV_UD6 (A, V, V, s, Ah; 0 = no limit; no time limit asked: the unwatched
    limit), then MV_UD1 = 1."""
    transcript = [
        *begun,
        info(cti, REST, test_time=100.0, step_time=100.0),
        mv(cti, 1, 0.0), mv(cti, 2, -0.00157), mv(cti, 3, 1.0), mv(cti, 4, -1.0),
        mv(cti, 5, UNWATCHED_LIMIT_S), mv(cti, 6, 0.000785), mv(cti, 1, 1.0),
    ]  # fmt: skip
    with channel(cti, transcript) as ch:
        ch.begin("ccd cell-7")
        ch.apply_current(-0.00157, max_voltage_V=1.0, min_voltage_V=-1.0, until_charge_Ah=0.000785)


@pytest.mark.parametrize(("arguments", "match"), [
    ({"current_A": 0.0}, "use rest"),
    ({"current_A": float("nan")}, "current_A"),
    ({"max_voltage_V": -0.5}, "must be above"),
    ({"until_time_s": 0.0}, "until_time_s"),
    ({"until_charge_Ah": -1e-4}, "until_charge_Ah"),
])  # fmt: skip
def test_apply_current_rejects_bad_arguments_before_io(cti, begun, arguments, match):
    """Nothing is written to the channel for an invalid segment."""
    kwargs = {"current_A": 0.001, "max_voltage_V": 0.5, "min_voltage_V": -0.5, **arguments}
    with channel(cti, begun) as ch:
        ch.begin("ccd cell-7")
        with pytest.raises(ValueError, match=match):
            ch.apply_current(**kwargs)


def test_apply_current_before_begin_raises(cti, login):
    """SET_MV needs a running test; say so before sending anything."""
    with channel(cti, [login]) as ch, pytest.raises(RuntimeError, match="call begin"):
        ch.apply_current(0.001, max_voltage_V=0.5, min_voltage_V=-0.5)


def test_rest_sets_mode_zero_and_ends_the_segment(cti, begun):
    """Rest now: MV_UD1 = 0; the segment is over without an end reason."""
    transcript = [*begun, *commanded(cti, 0.001), mv(cti, 1, 0.0), info(cti, REST, test_time=130.0, step_time=5.0)]
    with channel(cti, transcript) as ch:
        run_segment(ch)
        ch.rest()
        reading = ch.read()
    assert (reading.segment_active, reading.end_reason) == (False, None)


def test_rest_on_channel_that_stopped_is_quiet(cti, begun):
    """SET_MV result 0x12 (channel not running) means the current is already zero."""
    with channel(cti, [*begun, mv(cti, 1, 0.0, result=0x12)]) as ch:
        ch.begin("ccd cell-7")
        ch.rest()


def test_end_sets_mode_nine_then_stops_once(cti, begun):
    """End: MV_UD1 = 9, then STOP_SCHEDULE; a second end() sends nothing."""
    transcript = [*begun, mv(cti, 1, 9.0), (cti.stop_request(CH2), cti.result_feedback(cti.STOP_FB, 1, 0))]
    with channel(cti, transcript) as ch:
        ch.begin("ccd cell-7")
        ch.end()
        ch.end()


def test_end_before_begin_sends_nothing(cti, login):
    """No test of ours runs, so there is nothing to end."""
    with channel(cti, [login]) as ch:
        ch.end()


def test_end_after_lost_connection_logs_and_can_be_retried(cti, begun, login, caplog):
    """Best effort: failures are logged, end() does not raise, and a later end() tries again."""
    stop = cti.stop_request(CH2)
    nine = mv(cti, 1, 9.0)[0]
    every_send = ATTEMPTS - 1  # drops after the first of each command's sends, each on a new login
    transcript = [
        *begun, (nine, cti.DROP), *[login, (nine, cti.DROP)] * every_send, login, (stop, cti.DROP),
        *[login, (stop, cti.DROP)] * every_send, login, mv(cti, 1, 9.0), (stop, cti.result_feedback(cti.STOP_FB, 1, 0)),
    ]  # fmt: skip
    with channel(cti, transcript) as ch, caplog.at_level(logging.WARNING):
        ch.begin("ccd cell-7")
        ch.end()
        assert "STOP could not reach the cycler" in caplog.text
        ch.end()


def test_read_while_passing_current_reports_active_segment(cti, begun):
    """Constant current shows as Charge (I > 0): the segment is running."""
    reading_entry = info(cti, CHARGE, test_time=150.0, step_time=50.0, voltage=0.05, current=0.001, charge=1.4e-5)
    with channel(cti, [*begun, *commanded(cti, 0.001, until_time=600.0), reading_entry]) as ch:
        run_segment(ch, until_time_s=600.0)
        r = ch.read()
    assert (r.segment_active, r.end_reason, r.status) == (True, None, "Charge")
    assert (r.test_time_s, r.step_time_s) == (150.0, 50.0)
    assert r.voltage_V == pytest.approx(0.05) and r.current_A == pytest.approx(0.001)
    assert r.charge_capacity_Ah == pytest.approx(1.4e-5)


def test_read_at_rest_in_idle_since_before_command_is_still_active(cti, begun):
    """REST with a step time as long as the time since the command: still "Idle", the segment has not begun."""
    reading_entry = info(cti, REST, test_time=100.5, step_time=100.5)
    with channel(cti, [*begun, *commanded(cti, 0.001, until_time=600.0), reading_entry]) as ch:
        run_segment(ch, until_time_s=600.0)
        assert ch.read().segment_active


def test_read_detects_time_limit_end_and_keeps_it(cti, begun):
    """REST entered after the command (step time < test time - t_cmd), having run 600 s: end_reason "time"."""
    later = [info(cti, REST, test_time=700.5, step_time=0.5), info(cti, REST, test_time=760.0, step_time=60.0)]
    with channel(cti, [*begun, *commanded(cti, 0.001, until_time=600.0), *later]) as ch:
        run_segment(ch, until_time_s=600.0)
        first, second = ch.read(), ch.read()
    assert (first.segment_active, first.end_reason) == (False, "time")
    assert (second.segment_active, second.end_reason) == (False, "time")


def test_read_detects_charge_limit_end(cti, begun):
    """1 mA for 360 s passes 1e-4 Ah = the charge limit: end_reason "charge"."""
    limits = {"until_time": 540.0, "until_charge": 1e-4}
    end = info(cti, REST, test_time=461.0, step_time=1.0, voltage=0.02, charge=1e-4)
    with channel(cti, [*begun, *commanded(cti, 0.001, **limits), end]) as ch:
        run_segment(ch, until_time_s=540.0, until_charge_Ah=1e-4)
        assert ch.read().end_reason == "charge"


def test_read_detects_voltage_high_end_from_reading(cti, begun):
    """Ended early with the voltage at the upper limit: end_reason "voltage_high"."""
    end = info(cti, REST, test_time=200.0, step_time=10.0, voltage=0.51, exit_condition=b"something else")
    with channel(cti, [*begun, *commanded(cti, 0.001, until_time=600.0), end]) as ch:
        run_segment(ch, until_time_s=600.0)
        assert ch.read().end_reason == "voltage_high"


def test_read_detects_voltage_low_end_from_reading(cti, begun):
    """Discharging, ended early with the voltage at the lower limit: end_reason "voltage_low"."""
    end = info(cti, REST, test_time=200.0, step_time=10.0, voltage=-0.52)
    with channel(cti, [*begun, *commanded(cti, -0.001, until_time=600.0), end]) as ch:
        run_segment(ch, current=-0.001, until_time_s=600.0)
        assert ch.read().end_reason == "voltage_low"


def test_read_falls_back_to_exit_condition_when_reading_is_inconclusive(cti, begun):
    """Voltage relaxed inside the limits at rest: the exit condition text decides."""
    end = info(cti, REST, test_time=200.0, step_time=10.0, voltage=0.05, exit_condition=b"Voltage<=Limit")
    with channel(cti, [*begun, *commanded(cti, 0.001, until_time=600.0), end]) as ch:
        run_segment(ch, until_time_s=600.0)
        assert ch.read().end_reason == "voltage_low"


def test_read_falls_back_to_current_direction_without_exit_condition(cti, begun):
    """Neither time nor charge nor a known exit text: a charging segment stopped at its upper voltage."""
    end = info(cti, REST, test_time=200.0, step_time=10.0, voltage=0.05)
    with channel(cti, [*begun, *commanded(cti, 0.001, until_time=600.0), end]) as ch:
        run_segment(ch, until_time_s=600.0)
        assert ch.read().end_reason == "voltage_high"


def test_read_treats_rest_after_seen_current_as_end(cti, begun):
    """Once the segment was seen passing current, the next rest is "Segment done"."""
    later = [info(cti, CHARGE, test_time=150.0, step_time=50.0, current=0.001),
             info(cti, REST, test_time=200.0, step_time=100.0, voltage=0.51)]
    with channel(cti, [*begun, *commanded(cti, 0.001, until_time=600.0), *later]) as ch:
        run_segment(ch, until_time_s=600.0)
        assert ch.read().segment_active
        assert ch.read().end_reason == "voltage_high"


def test_read_reports_stopped_channel_as_ended_without_reason(cti, begun):
    """The test no longer runs (here Unsafe): the segment is over and the status says why."""
    with channel(cti, [*begun, *commanded(cti, 0.001), info(cti, UNSAFE, test_time=120.0, voltage=5.1)]) as ch:
        run_segment(ch)
        r = ch.read()
    assert (r.segment_active, r.end_reason, r.status) == (False, None, "Unsafe")


def test_read_detects_segment_that_ended_at_command_instant(cti, begun):
    """Step time = test time - t_cmd: only the exit condition tells "Segment done" from "Idle"."""
    end = info(cti, REST, test_time=100.0, step_time=0.0, voltage=0.3, exit_condition=b"Voltage>=Limit")
    with channel(cti, [*begun, *commanded(cti, 0.001), end]) as ch:
        run_segment(ch)
        assert ch.read().end_reason == "voltage_high"


def test_read_at_command_instant_in_idle_is_still_active(cti, begun):
    """Step time = test time - t_cmd and the last step ended on MV_UD1: the channel is in "Idle"."""
    idle = info(cti, REST, test_time=100.0, step_time=0.0, voltage=0.0, exit_condition=b"MV_UD1")
    with channel(cti, [*begun, *commanded(cti, 0.001), idle]) as ch:
        run_segment(ch)
        assert ch.read().segment_active


# --- constant voltage ---


def held(cti, voltage, *, clamp=0.002, until_time=UNWATCHED_LIMIT_S, until_current=0.0, t_cmd=100.0) -> list:
    """Transcript of apply_voltage: the reading that fixes t_cmd, MV_UD1 = 0, MV_UD2/5/7/8, then MV_UD1 = 2."""
    return [info(cti, REST, test_time=t_cmd, step_time=t_cmd), mv(cti, 1, 0.0), mv(cti, 2, clamp),
            mv(cti, 5, until_time), mv(cti, 7, voltage), mv(cti, 8, until_current), mv(cti, 1, 2.0)]


def run_hold(ch, voltage=0.1, **limits) -> None:
    ch.begin("ccd cell-7")
    ch.apply_voltage(voltage, max_current_A=0.002, **limits)


def test_apply_voltage_writes_meta_variables_in_contract_order(cti, begun):
    """MV_UD1 = 0, then the clamp (MV_UD2, A), time (MV_UD5, s), voltage (MV_UD7, V), |I| limit (MV_UD8, A),
    then MV_UD1 = 2; a negative setpoint is written as given, the clamp as a magnitude; a time limit beyond the
    unwatched limit goes to the instrument as the unwatched limit (renewed by reads)."""
    transcript = [
        *begun,
        info(cti, REST, test_time=100.0, step_time=100.0),
        mv(cti, 1, 0.0), mv(cti, 2, 0.001), mv(cti, 5, UNWATCHED_LIMIT_S), mv(cti, 7, -0.25), mv(cti, 8, 1e-5),
        mv(cti, 1, 2.0),
    ]  # fmt: skip
    with channel(cti, transcript) as ch:
        ch.begin("ccd cell-7")
        ch.apply_voltage(-0.25, max_current_A=0.001, until_time_s=3600.0, until_current_A=1e-5)


def test_apply_voltage_without_limits_bounds_time_by_the_unwatched_limit(cti, begun):
    """No time and no current limit: MV_UD5 = the unwatched limit, MV_UD8 = 0 (the schedule's "none")."""
    with channel(cti, [*begun, *held(cti, 4.2, clamp=0.001)]) as ch:
        ch.begin("ccd cell-7")
        ch.apply_voltage(4.2, max_current_A=0.001)


@pytest.mark.parametrize(("arguments", "match"), [
    ({"voltage_V": float("inf")}, "voltage_V"),
    ({"voltage_V": "4.2 V"}, "voltage_V"),
    ({"max_current_A": 0.0}, "max_current_A"),
    ({"max_current_A": -0.001}, "max_current_A"),
    ({"until_time_s": -5.0}, "until_time_s"),
    ({"until_current_A": 0.0}, "until_current_A"),
    ({"until_current_A": 0.002}, "until_current_A .* must be below max_current_A"),
])  # fmt: skip
def test_apply_voltage_rejects_bad_arguments_before_io(cti, begun, arguments, match):
    """Nothing is written to the channel for an invalid hold, and the error names the argument."""
    kwargs = {"voltage_V": 0.1, "max_current_A": 0.002, **arguments}
    with channel(cti, begun) as ch:
        ch.begin("ccd cell-7")
        with pytest.raises(ValueError, match=match):
            ch.apply_voltage(**kwargs)


def test_apply_voltage_before_begin_raises(cti, login):
    with channel(cti, [login]) as ch, pytest.raises(RuntimeError, match="call begin"):
        ch.apply_voltage(0.1, max_current_A=0.002)


def test_read_while_holding_reports_active_segment(cti, begun):
    """A hold passing current shows as Charge: the segment runs, the reading carries the actual current."""
    reading = info(cti, CHARGE, test_time=160.0, step_time=60.0, voltage=0.1, current=0.0013)
    with channel(cti, [*begun, *held(cti, 0.1, until_time=600.0), reading]) as ch:
        run_hold(ch, until_time_s=600.0)
        r = ch.read()
    assert (r.segment_active, r.end_reason, r.current_A) == (True, None, pytest.approx(0.0013))


def test_hold_drawing_no_current_is_still_active(cti, begun):
    """Rest in step 3 (zero current), entered on MV_UD1 after the command: the hold runs on, even after it was
    seen passing current."""
    later = [info(cti, CHARGE, test_time=130.0, step_time=29.0, current=1e-6),
             info(cti, REST, test_time=160.0, step_time=59.0, voltage=0.005, exit_condition=b"MV_UD1")]
    with channel(cti, [*begun, *held(cti, 0.005, until_time=600.0), *later]) as ch:
        run_hold(ch, voltage=0.005, until_time_s=600.0)
        assert ch.read().segment_active
        assert ch.read().segment_active


def test_hold_ends_on_time(cti, begun):
    """Segment done entered 600 s after the command: end_reason "time"."""
    end = info(cti, REST, test_time=701.0, step_time=1.0, exit_condition=b"StepTime>=Limit")
    with channel(cti, [*begun, *held(cti, 0.1, until_time=600.0, until_current=1e-5), end]) as ch:
        run_hold(ch, until_time_s=600.0, until_current_A=1e-5)
        r = ch.read()
    assert (r.segment_active, r.end_reason) == (False, "time")


def test_hold_ends_on_current_low_from_exit_condition(cti, begun):
    """Ended before its time with the emulator's "Current<=Limit": end_reason "current_low"."""
    end = info(cti, REST, test_time=330.0, step_time=0.0, exit_condition=b"Current<=Limit")
    with channel(cti, [*begun, *held(cti, 0.1, until_time=600.0, until_current=1e-5), end]) as ch:
        run_hold(ch, until_time_s=600.0, until_current_A=1e-5)
        assert ch.read().end_reason == "current_low"


def test_hold_end_without_known_text_is_the_current_limit(cti, begun):
    """Ended before its time, exit condition unknown: the current limit is the only one left."""
    end = info(cti, REST, test_time=330.0, step_time=2.0, exit_condition=b"Step limit 3")
    with channel(cti, [*begun, *held(cti, 0.1, until_time=600.0, until_current=1e-5), end]) as ch:
        run_hold(ch, until_time_s=600.0, until_current_A=1e-5)
        assert ch.read().end_reason == "current_low"


def test_hold_that_ended_at_command_instant(cti, begun):
    """Step time = test time - t_cmd: the limit text tells Segment done (|I| already below the limit)."""
    end = info(cti, REST, test_time=100.0, step_time=0.0, exit_condition=b"PV_CHAN_Current<=MV_UD8")
    with channel(cti, [*begun, *held(cti, 0.1, until_current=1e-5), end]) as ch:
        run_hold(ch, until_current_A=1e-5)
        assert ch.read().end_reason == "current_low"


def test_rest_aborts_a_hold(cti, begun):
    """rest(): MV_UD1 = 0; the hold is over without an end reason."""
    transcript = [*begun, *held(cti, 0.1), mv(cti, 1, 0.0), info(cti, REST, test_time=130.0, step_time=5.0)]
    with channel(cti, transcript) as ch:
        run_hold(ch)
        ch.rest()
        r = ch.read()
    assert (r.segment_active, r.end_reason) == (False, None)


def test_constant_current_after_a_hold_is_judged_as_constant_current(cti, begun):
    """A CC segment after a hold: seen passing current, now resting -> ended on its upper voltage."""
    later = [*commanded(cti, 0.001, until_time=600.0, t_cmd=400.0),
             info(cti, CHARGE, test_time=450.0, step_time=50.0, current=0.001),
             info(cti, REST, test_time=500.0, step_time=100.0, voltage=0.51)]
    with channel(cti, [*begun, *held(cti, 0.1), *later]) as ch:
        run_hold(ch)
        ch.apply_current(0.001, max_voltage_V=0.5, min_voltage_V=-0.5, until_time_s=600.0)
        assert ch.read().segment_active
        assert ch.read().end_reason == "voltage_high"
