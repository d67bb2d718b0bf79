"""Safety limits and the supervisor, checked against a scripted channel: what is refused before it is sent, what
goes to the instrument, which readings breach which limit, and that the channel rests before the breach is raised."""

from __future__ import annotations

import pytest

from labctl.engine.supervisor import Supervisor
from labctl.procedures.cycling import InstrumentFault
from labctl.roles import CyclerReading
from labctl.safety import ChannelRange, LimitError, Limits, SafetyLimitBreach, limits_of, parse_limit_texts, tightest

RANGE = {"current_range_A": "0.5", "voltage_range_V": "10.0"}


def reading(voltage_V: float = 0.1, current_A: float = 1e-3, *, t: float = 10.0, charge_Ah: float = 0.0,
            active: bool = True, end_reason: str | None = None) -> CyclerReading:
    return CyclerReading(test_time_s=t, step_time_s=t, voltage_V=voltage_V, current_A=current_A,
                         charge_capacity_Ah=charge_Ah, discharge_capacity_Ah=0.0,
                         status="Charge" if active else "Rest", segment_active=active, end_reason=end_reason)


class ScriptedChannel:
    """A cycler channel that records what it is told and returns the readings it is given, in turn."""

    def __init__(self, *readings: CyclerReading, identity: dict[str, str] = RANGE) -> None:
        self.readings, self.calls, self._identity = list(readings), [], {"make": "test", **identity}

    def identity(self) -> dict[str, str]:
        return self._identity

    def begin(self, test_name: str) -> None:
        self.calls.append(("begin", test_name))

    def apply_current(self, current_A: float, **limits: float | None) -> None:
        self.calls.append(("apply_current", current_A, limits))

    def apply_voltage(self, voltage_V: float, **limits: float | None) -> None:
        self.calls.append(("apply_voltage", voltage_V, limits))

    def rest(self) -> None:
        self.calls.append(("rest",))

    def read(self) -> CyclerReading:
        return self.readings.pop(0)

    def end(self) -> None:
        self.calls.append(("end",))

    def close(self) -> None:
        pass


def supervised(*readings: CyclerReading, identity: dict[str, str] = RANGE, **limits: float):
    channel = ScriptedChannel(*readings, identity=identity)
    return Supervisor(channel, Limits(**limits)), channel


# --- limits ---

@pytest.mark.parametrize("values, limit", [
    ({"voltage_max_V": float("inf")}, "voltage_max_V"),
    ({"voltage_min_V": float("nan")}, "voltage_min_V"),
    ({"current_max_A": 0.0}, "current_max_A"),
    ({"capacity_per_step_Ah": -1.0}, "capacity_per_step_Ah"),
    ({"test_time_max_h": True}, "test_time_max_h"),  # a TOML true is no number
    ({"voltage_max_V": 1.0, "voltage_min_V": 1.0}, "voltage_min_V"),  # no window left
    ({"voltage_max": 1.0}, "voltage_max"),  # unknown: units are part of the name
])  # fmt: skip
def test_bad_limits_are_refused_naming_the_limit(values, limit):
    with pytest.raises(LimitError) as e:
        limits_of(values)
    assert e.value.limit == limit and str(e.value).startswith(f"{limit}: ")


def test_limit_texts_name_a_bad_value():
    assert parse_limit_texts(["voltage_max_V=4.3", " current_max_A = 0.01 "]) == {"voltage_max_V": 4.3,
                                                                                  "current_max_A": 0.01}
    with pytest.raises(LimitError, match=r"^voltage_max_V: 'high' is not a number \(in V\)"):
        parse_limit_texts(["voltage_max_V=high"])
    with pytest.raises(LimitError, match="NAME=VALUE"):
        parse_limit_texts(["voltage_max_V"])


def test_the_tightest_limits_keep_every_set():
    bench = Limits(voltage_max_V=5.0, voltage_min_V=-1.0, current_max_A=0.1)
    channel = Limits(voltage_max_V=4.3, test_time_max_h=100.0)
    run = Limits(voltage_min_V=2.8, current_max_A=0.2)
    assert tightest(bench, channel, run) == Limits(voltage_max_V=4.3, voltage_min_V=2.8, current_max_A=0.1,
                                                   test_time_max_h=100.0)
    with pytest.raises(LimitError, match="voltage_min_V = 4.5 V must be below voltage_max_V = 4.3 V"):
        tightest(channel, Limits(voltage_min_V=4.5))


def test_the_channel_range_comes_from_the_identity_text():
    assert ChannelRange.of({"make": "Arbin", **RANGE}) == ChannelRange(current_range_A=0.5, voltage_range_V=10.0)
    assert ChannelRange.of({"make": "Arbin"}) == ChannelRange()


# --- before anything is sent ---

def test_a_current_beyond_the_range_is_refused_before_it_is_sent_and_the_channel_rests():
    sup, channel = supervised()
    with pytest.raises(SafetyLimitBreach) as e:
        sup.apply_current(10.0, max_voltage_V=1.0, min_voltage_V=-1.0)
    assert (e.value.limit, e.value.value, e.value.limit_value, e.value.how) == ("current_range_A", 10.0, 0.5, "refused")
    assert "refused 10 A before sending it" in str(e.value)
    assert channel.calls == [("rest",)]


def test_a_current_above_the_limit_is_refused_whatever_its_sign():
    sup, channel = supervised(current_max_A=0.01)
    with pytest.raises(SafetyLimitBreach, match="current_max_A = 0.01 A"):
        sup.apply_current(-0.02, max_voltage_V=1.0, min_voltage_V=-1.0)
    assert not [c for c in channel.calls if c[0] == "apply_current"]


def test_a_segment_goes_out_with_the_run_limits_tightened_into_its_own():
    sup, channel = supervised(reading(t=1800.0), voltage_max_V=0.5, voltage_min_V=-2.0, capacity_per_step_Ah=1e-3,
                              test_time_max_h=1.0)  # fmt: skip
    sup.read()  # test time 1800 s: half an hour of the test is left
    sup.apply_current(1e-3, max_voltage_V=1.0, min_voltage_V=-1.0, until_time_s=7200.0, until_charge_Ah=0.01)
    assert channel.calls[-1] == ("apply_current", 1e-3, {"max_voltage_V": 0.5, "min_voltage_V": -1.0,
                                                         "until_time_s": 1800.0, "until_charge_Ah": 1e-3})


def test_a_hold_outside_the_voltage_limits_is_refused_and_its_clamp_kept_to_the_current_limit():
    sup, channel = supervised(voltage_max_V=4.3, current_max_A=2e-3)
    with pytest.raises(SafetyLimitBreach, match="voltage_max_V = 4.3 V"):
        sup.apply_voltage(4.5, max_current_A=0.01)
    sup.apply_voltage(4.2, max_current_A=0.01, until_time_s=60.0)
    assert channel.calls[-1] == ("apply_voltage", 4.2, {"max_current_A": 2e-3, "until_time_s": 60.0,
                                                        "until_current_A": None})


def test_no_segment_starts_once_the_test_time_is_used_up():
    sup, channel = supervised(reading(t=3600.0, active=False), test_time_max_h=1.0)
    with pytest.raises(SafetyLimitBreach, match="test_time_max_h = 1 h"):
        sup.read()
    with pytest.raises(SafetyLimitBreach) as e:
        sup.apply_current(1e-3, max_voltage_V=1.0, min_voltage_V=-1.0)
    assert e.value.how == "refused"
    assert not [c for c in channel.calls if c[0] == "apply_current"]


# --- every reading ---

@pytest.mark.parametrize("limits, r, limit", [
    ({"voltage_max_V": 0.5}, reading(0.52), "voltage_max_V"),
    ({"voltage_min_V": -0.5}, reading(-0.52), "voltage_min_V"),
    ({"current_max_A": 1e-3}, reading(current_A=-1.1e-3), "current_max_A"),
    ({"capacity_per_step_Ah": 1e-4}, reading(charge_Ah=1.2e-4), "capacity_per_step_Ah"),
    ({"test_time_max_h": 1.0}, reading(t=3600.0), "test_time_max_h"),
])  # fmt: skip
def test_a_reading_past_a_limit_rests_the_channel_then_raises_the_breach(limits, r, limit):
    sup, channel = supervised(r, **limits)
    sup.apply_current(1e-3, max_voltage_V=1.0, min_voltage_V=-1.0)
    with pytest.raises(SafetyLimitBreach) as e:
        sup.read()
    assert (e.value.limit, e.value.how, e.value.test_time_s) == (limit, "read", r.test_time_s)
    assert channel.calls[-1] == ("rest",)
    assert e.value.event()["limit"] == limit


def test_readings_within_the_margin_of_a_limit_the_instrument_holds_are_no_breach():
    sup, _ = supervised(reading(0.505), reading(0.49, active=False, end_reason="voltage_high"), voltage_max_V=0.5)
    sup.apply_current(1e-3, max_voltage_V=0.5, min_voltage_V=-1.0)  # the procedure's own limit: nothing tightened
    assert sup.read().voltage_V == 0.505  # noise at the limit
    assert sup.read().end_reason == "voltage_high"  # the procedure's own end, for it to judge


def test_a_segment_the_instrument_ended_on_a_run_limit_is_a_breach_not_the_procedures_end():
    sup, channel = supervised(reading(0.28, 0.0, active=False, end_reason="voltage_high"), voltage_max_V=0.3)
    sup.apply_current(1e-3, max_voltage_V=1.0, min_voltage_V=-1.0)
    assert channel.calls[-1][2]["max_voltage_V"] == 0.3
    with pytest.raises(SafetyLimitBreach) as e:
        sup.read()
    assert (e.value.limit, e.value.how) == ("voltage_max_V", "held")
    assert "the cycler ended the segment at it" in str(e.value)


@pytest.mark.parametrize("r", [reading(30.0), reading(current_A=0.6)])
def test_a_reading_outside_the_channel_range_is_an_instrument_fault_not_a_breach(r):
    sup, channel = supervised(r, voltage_max_V=0.5, current_max_A=1e-3)
    with pytest.raises(InstrumentFault, match="instrument fault, not the cell"):
        sup.read()
    assert channel.calls == [("rest",)]
