"""Virtual time: substeps that land on events, the JSON-lines control channel, and the clients."""

from __future__ import annotations

import itertools
import json
import math
import socket
import time

import pytest

from labctl.clock import SimClock, WallClock
from labctl.roles import Clock
from labctl.sim_instruments.clock import ClockServer, VirtualClock


class Alarm:
    """A participant with events at fixed times; records the substeps it was given."""

    def __init__(self, *at: float) -> None:
        self.at = sorted(at)
        self.t = 0.0
        self.substeps: list[float] = []

    def max_step(self) -> float:
        return self.at[0] - self.t if self.at else math.inf

    def advance(self, dt: float) -> bool:
        self.t += dt
        self.substeps.append(dt)
        if self.at and self.t >= self.at[0] - 1e-12:
            self.at.pop(0)
            return True
        return False


class Broken:
    def max_step(self) -> float:
        return math.inf

    def advance(self, dt: float) -> bool:
        raise RuntimeError("cell model diverged")


def eventually(condition, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


# --- VirtualClock ---


def test_advance_stops_exactly_at_an_event_in_bounded_substeps():
    clock, alarm = VirtualClock(), Alarm(2.5)
    clock.register(alarm)
    assert clock.advance(10) == (2.5, True)
    assert alarm.substeps == [1.0, 1.0, 0.5]
    assert clock.advance(10) == (12.5, False)
    assert alarm.substeps[3:] == [1.0] * 10 and clock.now == 12.5


def test_advance_without_stop_on_event_runs_through_and_reports_the_event():
    clock, alarm = VirtualClock(), Alarm(2.5, 7.25)
    clock.register(alarm)
    assert clock.advance(10, stop_on_event=False) == (10.0, True)
    assert alarm.at == [] and alarm.t == pytest.approx(10.0)
    ends = list(itertools.accumulate(alarm.substeps))
    assert 2.5 in ends and 7.25 in ends  # both events were hit exactly


def test_substeps_never_exceed_max_substep():
    clock, alarm = VirtualClock(max_substep_s=0.25), Alarm()
    clock.register(alarm)
    clock.advance(1.1)
    assert max(alarm.substeps) <= 0.25 and sum(alarm.substeps) == pytest.approx(1.1)


def test_advance_by_zero_integrates_nothing():
    clock, alarm = VirtualClock(), Alarm(1.0)
    clock.register(alarm)
    assert clock.advance(0) == (0.0, False) and alarm.substeps == []


def test_unregistered_participant_is_left_alone():
    clock, alarm = VirtualClock(), Alarm()
    clock.register(alarm)
    clock.unregister(alarm)
    clock.advance(5)
    assert alarm.substeps == [] and clock.now == 5.0


def test_a_participant_joining_while_the_step_is_bounded_counts_from_the_start_of_the_advance():
    """As an analyzer taking in an SI at the start of a wait: its measurement runs from then, not a substep later."""
    clock, alarm = VirtualClock(), Alarm(4.0)

    class Door:
        def max_step(self) -> float:
            clock.unregister(self)
            clock.register(alarm)
            return math.inf

        def advance(self, dt: float) -> bool:
            return False

    clock.register(Door())
    assert clock.advance(10) == (4.0, True)


@pytest.mark.parametrize("dt", [-1.0, math.nan, math.inf])
def test_advance_refuses_bad_dt(dt):
    with pytest.raises(ValueError, match="dt must be a finite number of seconds >= 0"):
        VirtualClock().advance(dt)


def test_free_running_moves_time_until_a_client_holds_it():
    clock = VirtualClock()
    clock.run_free(speed=1000.0)
    try:
        assert eventually(lambda: clock.now > 1.0)
        clock.hold()
        held = clock.now
        time.sleep(0.2)
        assert clock.now == held and clock.stepped
        clock.release()
        assert eventually(lambda: clock.now > held + 1.0)
    finally:
        clock.stop()
    stopped = clock.now
    time.sleep(0.1)
    assert clock.now == stopped


# --- ClockServer ---


@pytest.fixture
def served():
    clock = VirtualClock()
    server = ClockServer(clock)
    yield clock, server
    server.close()


class Lines:
    def __init__(self, address):
        self.sock = socket.create_connection(address, timeout=5)
        self.reader = self.sock.makefile("rb")

    def raw(self, line: bytes) -> dict:
        self.sock.sendall(line)
        return json.loads(self.reader.readline())

    def ask(self, request: dict) -> dict:
        return self.raw(json.dumps(request).encode() + b"\n")

    def close(self):
        self.reader.close()
        self.sock.close()


def test_server_listens_on_loopback_only(served):
    assert served[1].address[0] == "127.0.0.1"


def test_now_and_advance(served):
    clock, server = served
    client = Lines(server.address)
    assert client.ask({"op": "now"}) == {"ok": True, "t": 0.0}
    assert client.ask({"op": "advance", "dt": 10}) == {"ok": True, "t": 10.0, "event": False}
    assert client.ask({"op": "now"})["t"] == 10.0 == clock.now
    client.close()


def test_advance_stops_at_an_emulator_event(served):
    clock, server = served
    clock.register(Alarm(2.5, 4.0))
    client = Lines(server.address)
    assert client.ask({"op": "advance", "dt": 10}) == {"ok": True, "t": 2.5, "event": True}
    assert client.ask({"op": "advance", "dt": 10, "stop_on_event": False}) == {"ok": True, "t": 12.5, "event": True}
    client.close()


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (b"advance 10\n", "not JSON"),
        (b"\xff\xfe\xfd\n", "not JSON"),
        (b"[1, 2]\n", "JSON object"),
        (b'{"op": "jump"}\n', "unknown op 'jump'"),
        (b'{"dt": 1}\n', "unknown op None"),
        (b'{"op": "advance"}\n', 'needs "dt"'),
        (b'{"op": "advance", "dt": "5"}\n', "'5'"),
        (b'{"op": "advance", "dt": true}\n', "True"),
        (b'{"op": "advance", "dt": -1}\n', ">= 0"),
        (b'{"op": "advance", "dt": NaN}\n', "finite"),
        (b'{"op": "advance", "dt": Infinity}\n', "finite"),
        (b'{"op": "advance", "dt": 1e400}\n', "finite"),
        (b'{"op": "advance", "dt": 1' + b"0" * 400 + b"}\n", "finite"),
        (b'{"op": "advance", "dt": 1, "stop_on_event": "yes"}\n', "stop_on_event"),
    ],
)
def test_malformed_requests_get_a_clear_error_and_change_nothing(served, line, words):
    clock, server = served
    client = Lines(server.address)
    reply = client.raw(line)
    assert reply["ok"] is False and words in reply["error"]
    assert client.ask({"op": "now"}) == {"ok": True, "t": 0.0}  # the connection still works
    assert not clock.stepped
    client.close()


def test_failure_inside_the_simulation_is_reported(served):
    clock, server = served
    clock.register(Broken())
    client = Lines(server.address)
    reply = client.ask({"op": "advance", "dt": 1})
    assert reply["ok"] is False and "cell model diverged" in reply["error"]
    client.close()


def test_a_stepping_client_holds_the_clock_until_it_disconnects(served):
    clock, server = served
    watcher, stepper = Lines(server.address), Lines(server.address)
    watcher.ask({"op": "now"})
    assert not clock.stepped  # asking the time does not take control
    stepper.ask({"op": "advance", "dt": 0})
    assert clock.stepped
    stepper.close()
    assert eventually(lambda: not clock.stepped)
    watcher.close()


# --- clients ---


def test_sim_clock_steps_the_bench(served):
    clock, server = served
    clock.register(Alarm(25.0))
    sim = SimClock(*server.address)
    assert isinstance(sim, Clock) and clock.stepped  # connecting takes the bench out of free running
    sim.wait(10)
    assert sim.now() == 10.0
    assert sim.advance(60) == (25.0, True)
    sim.close()
    assert eventually(lambda: not clock.stepped)


def test_sim_clock_in_the_process_of_its_bench_steps_it_by_a_call_not_a_round_trip(served, monkeypatch):
    clock, server = served
    lines = []
    reply = server._reply
    monkeypatch.setattr(server, "_reply", lambda line, session: (lines.append(line), reply(line, session))[1])
    clock.register(Alarm(25.0))
    sim = SimClock(*server.address)
    sim.wait(10)
    assert sim.now() == 10.0 and sim.advance(60) == (25.0, True) and sim.advance(5, stop_at_event=False) == (30.0, False)
    assert [json.loads(line)["op"] for line in lines] == ["advance"]  # only the one that takes hold of the clock
    sim.close()
    assert eventually(lambda: not clock.stepped)  # closing the connection still lets the clock run free


def test_sim_clock_reports_a_failure_inside_the_simulation(served):
    clock, server = served
    clock.register(Broken())
    with pytest.raises(RuntimeError, match="cell model diverged"):
        SimClock(*server.address).wait(1)


def test_sim_clock_refuses_bad_seconds_before_sending(served):
    sim = SimClock(*served[1].address)
    for bad in (-1, math.nan, math.inf, "10"):
        with pytest.raises(ValueError, match="finite number >= 0"):
            sim.wait(bad)  # type: ignore[arg-type]
    assert sim.now() == 0.0
    sim.close()


def test_sim_clock_names_an_unreachable_address(free_port):
    with pytest.raises(ConnectionError, match=f"127.0.0.1:{free_port}"):
        SimClock("127.0.0.1", free_port, timeout_s=2)


def test_sim_clock_reports_a_server_that_went_away(served):
    server = served[1]
    sim = SimClock(*server.address)
    server.close()
    with pytest.raises(ConnectionError, match=rf"127\.0\.0\.1:{server.port}"):
        sim.wait(1)
    sim.close()


def test_wall_clock_waits_and_refuses_negative_seconds():
    clock = WallClock()
    assert isinstance(clock, Clock)
    clock.wait(0)
    with pytest.raises(ValueError):
        clock.wait(-0.5)
    clock.close()


def test_the_clock_role_declares_now_which_both_clocks_tell():
    class WaitsOnly:
        def wait(self, seconds: float, *, stop_at_event: bool = True) -> None: ...

        def close(self) -> None: ...

    assert not isinstance(WaitsOnly(), Clock)  # a procedure may read the time (deposition does)
    wall = WallClock()
    before = wall.now()
    wall.wait(0.01)
    assert wall.now() - before >= 0.01
