"""A channel is never left running for long without labctl: every segment's time limit on the instrument is a
lease renewed by reads, and ``begin`` takes over a test whose labctl process died. Driven against the Arbin
emulator over real CTI, its clock stepped by hand."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from labctl.drivers.arbin.cti import CTIClient, CTIError
from labctl.drivers.arbin.universal import UniversalScheduleChannel
from labctl.sim_instruments.bench import SimBench
from labctl.sim_instruments.catalog import make_cell

LIMIT_S = 60.0  # the unwatched limit these tests give the channel, s
CURRENT_A = 1e-4
REST, CHARGE = 4, 2  # channel status codes


@pytest.fixture(autouse=True)
def private_locks(tmp_path, monkeypatch):
    monkeypatch.setenv("LABCTL_LOCK_DIR", str(tmp_path / "locks"))


@pytest.fixture
def bench() -> Iterator[SimBench]:
    with SimBench(lambda n: make_cell("bare", area_cm2=1.13, seed=n), channels=2, speed=None,
                  impedance_channel=None) as sim:  # fmt: skip
        yield sim


def client(bench: SimBench) -> CTIClient:
    host, port = bench.cycler.address
    return CTIClient(host, port)


def channel(bench: SimBench) -> UniversalScheduleChannel:
    return UniversalScheduleChannel(client(bench), 1, sleep=lambda s: bench.clock.advance(s),
                                    unwatched_limit_s=LIMIT_S)  # fmt: skip


def charge(ch: UniversalScheduleChannel, **limits: float) -> None:
    ch.begin("labctl ccd cell-7")
    ch.apply_current(CURRENT_A, max_voltage_V=5.0, min_voltage_V=-5.0, **limits)


def advance(bench: SimBench, seconds: float) -> None:
    bench.clock.advance(seconds, stop_on_event=False)


def status_seen_by_another_client(bench: SimBench) -> tuple[int, float]:
    with client(bench) as other:
        info = other.channel_info(1)
    return info.status, info.current_A


def test_a_segment_nobody_reads_rests_on_the_instrument_within_the_unwatched_limit(bench):
    """The run's process died right after commanding an hour of charge: the cycler rests the cell by itself."""
    ch = channel(bench)
    charge(ch, until_time_s=3600.0)
    advance(bench, LIMIT_S - 5)
    assert status_seen_by_another_client(bench) == (CHARGE, pytest.approx(CURRENT_A))
    advance(bench, 10)
    assert status_seen_by_another_client(bench) == (REST, 0.0)


def test_reads_renew_the_limit_so_a_watched_segment_runs_to_its_own_time(bench):
    ch = channel(bench)
    charge(ch, until_time_s=5 * LIMIT_S)
    reading = ch.read()
    while reading.segment_active:
        advance(bench, LIMIT_S / 3)
        reading = ch.read()
    assert reading.end_reason == "time"
    assert reading.test_time_s == pytest.approx(5 * LIMIT_S, abs=LIMIT_S / 3 + 1)


def test_a_segment_without_a_time_limit_still_has_one_on_the_instrument(bench):
    ch = channel(bench)
    charge(ch)
    advance(bench, LIMIT_S + 1)
    assert status_seen_by_another_client(bench) == (REST, 0.0)


def test_a_segment_the_instrument_ended_because_labctl_fell_silent_is_an_error_not_a_limit(bench):
    ch = channel(bench)
    charge(ch, until_time_s=3600.0)
    advance(bench, LIMIT_S + 5)
    with pytest.raises(CTIError, match=r"unwatched limit.*did not read the channel within 60 s"):
        ch.read()


def test_begin_takes_over_and_rests_a_test_whose_labctl_process_died(bench, caplog):
    dead = channel(bench)
    charge(dead, until_time_s=3600.0)
    dead.close()  # its process died: the connection and the channel lock are gone, the test runs on
    assert status_seen_by_another_client(bench)[0] == CHARGE
    ch = channel(bench)
    ch.begin("labctl ccd cell-8")  # before: CTIResultError 0x14 "channel running"
    assert status_seen_by_another_client(bench) == (REST, 0.0)
    assert "was still running" in caplog.text
    ch.end()


def test_begin_refuses_a_channel_whose_labctl_process_lives(bench):
    live = channel(bench)
    charge(live, until_time_s=3600.0)
    with pytest.raises(CTIError, match=r"live labctl process \(pid \d+\) runs a test on this channel"):
        channel(bench).begin("labctl ccd cell-8")
    assert status_seen_by_another_client(bench)[0] == CHARGE
    live.end()


def test_begin_refuses_a_test_labctl_did_not_start(bench):
    with client(bench) as other:
        other.assign_schedule(1, "labctl_universal.sdx")
        other.start(1, "operator formation")
    with pytest.raises(CTIError, match=r"runs test 'operator formation', which labctl did not start"):
        channel(bench).begin("labctl ccd cell-8")
