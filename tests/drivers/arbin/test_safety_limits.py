"""Safety limits on the Arbin emulator over real CTI: the run's limits reach the cycler with every segment and it holds
them with labctl gone; the cycler's own safety makes the channel Unsafe on a current beyond its range; the bench file's
range reaches the driver's identity."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from labctl.bench import BenchError, open_bench
from labctl.drivers.arbin.cti import CTIClient
from labctl.drivers.arbin.messages import META_CODES, ChannelStatus
from labctl.drivers.arbin.universal import UniversalScheduleChannel
from labctl.engine.supervisor import Supervisor
from labctl.safety import Limits
from labctl.sim_instruments.bench import SimBench

CURRENT_A = 1e-3


@pytest.fixture(autouse=True)
def private_locks(tmp_path, monkeypatch):
    monkeypatch.setenv("LABCTL_LOCK_DIR", str(tmp_path / "locks"))


class ChargingCell:
    """A 1 F capacitor behind 0.5 Ω, without noise: V = q/C + I·R, so a constant current raises the voltage steadily
    (1 mV/s at 1 mA), and a held voltage V draws (V - q/C)/R."""

    R_OHM = 0.5

    def __init__(self) -> None:
        self.q_C = 0.0

    def advance(self, current_A: float, dt_s: float) -> None:
        self.q_C += current_A * dt_s

    def voltage(self, current_A: float) -> float:
        return self.q_C + self.R_OHM * current_A

    def measured_voltage(self, current_A: float) -> float:
        return self.voltage(current_A)

    def current_at(self, voltage_V: float) -> float:
        return (voltage_V - self.q_C) / self.R_OHM


@pytest.fixture
def sim() -> Iterator[SimBench]:
    with SimBench(lambda n: ChargingCell(), channels=1, speed=None, impedance_channel=None) as bench:
        yield bench


def channel_of(sim: SimBench) -> UniversalScheduleChannel:
    host, port = sim.cycler.address
    return UniversalScheduleChannel(CTIClient(host, port), 1, sleep=lambda s: sim.clock.advance(s),
                                    current_range_A=sim.cycler.current_range_A)  # fmt: skip


def test_the_cycler_holds_the_runs_voltage_limit_while_labctl_is_gone(sim):
    supervisor = Supervisor(channel_of(sim), Limits(voltage_max_V=0.3))
    supervisor.begin("labctl ccd cell-1")
    supervisor.apply_current(CURRENT_A, max_voltage_V=1.0, min_voltage_V=-1.0, until_time_s=3600.0)
    supervisor.close()  # labctl is gone: nobody reads, nobody rests the channel
    sim.clock.advance(600.0, stop_on_event=False)  # at 1 mV/s the cell would pass 0.6 V
    channel = sim.cycler.channels[0]
    assert (channel.status, channel.current_A, channel.exit_condition) == (ChannelStatus.REST, 0.0, "Voltage>=Limit")
    assert channel.mvs[META_CODES[3]] == pytest.approx(0.3)
    assert channel.cell.voltage(0.0) == pytest.approx(0.3, abs=0.002)  # charged to the limit (0.5 mV of IR drop)


def test_a_current_beyond_the_channels_range_makes_the_emulated_cycler_unsafe_without_passing_it(sim):
    channel = channel_of(sim)  # the driver alone: nothing refuses 10 A before it reaches the cycler
    channel.begin("labctl ccd cell-1")
    channel.apply_current(10.0, max_voltage_V=4.0, min_voltage_V=-4.0)
    emulated = sim.cycler.channels[0]
    assert (emulated.status, emulated.current_A, emulated.exit_condition) == (ChannelStatus.UNSAFE, 0.0,
                                                                               "|Current|>SafetyLimit")
    assert emulated.cell.q_C == 0.0 and emulated.charge_Ah == 0.0
    assert channel.read().status == "Unsafe"
    channel.end()


def test_a_hold_never_passes_more_than_the_channels_range(sim):
    channel = channel_of(sim)
    channel.begin("labctl hold cell-1")
    channel.apply_voltage(2.0, max_current_A=50.0, until_time_s=60.0)  # draws 4 A of the 5 A range
    assert sim.cycler.channels[0].current_A == pytest.approx(4.0)
    channel.apply_voltage(4.0, max_current_A=50.0, until_time_s=60.0)  # would draw 8 A
    assert sim.cycler.channels[0].current_A == pytest.approx(5.0)
    channel.end()


def test_the_bench_files_range_reaches_the_drivers_identity_and_a_bad_one_is_refused(sim, tmp_path):
    path = tmp_path / "bench.toml"
    path.write_text(sim.config_toml(), encoding="utf-8")
    with open_bench(str(path)) as bench:
        identity = bench.cycler.identity()
    assert (identity["current_range_A"], identity["voltage_range_V"]) == ("5.0", "10.0")
    path.write_text(sim.config_toml().replace("current_range_A = 5.0", 'current_range_A = "5 A"'), encoding="utf-8")
    with pytest.raises(BenchError, match=r"roles\.cycler\.options\.current_range_A: '5 A'"):
        open_bench(str(path))
