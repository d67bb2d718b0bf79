"""A whole simulated bench: its config, and a run stepped through the real control channel and real CTI."""

from __future__ import annotations

import socket
import time
import tomllib

import pytest

from labctl.bench import validate_config
from labctl.clock import SimClock
from labctl.sim_instruments.bench import SimBench

REST, CHARGE = 4, 2


@pytest.fixture
def linear_cell(linear_cell):
    """conftest's linear cell, measurable by the bench's impedance analyzer: a pure resistor ``r``."""

    class MeasurableLinearCell(linear_cell):
        def measured_impedance(self, frequency_Hz: float) -> complex:
            return complex(self.r, 0.0)

    return MeasurableLinearCell


@pytest.fixture
def bench(linear_cell):
    made: list[int] = []

    def factory(channel: int):
        made.append(channel)
        return linear_cell(e=0.001 * channel)

    with SimBench(factory, channels=3) as sim:
        sim.made = made
        yield sim


def test_each_channel_gets_its_own_cell(bench, connect):
    assert bench.made == [1, 2, 3]
    cti = connect(bench.cycler.address)
    cti.login()
    assert [round(r["voltage"], 6) for r in cti.info(-1)] == [0.002, 0.003, 0.004]  # E + 1 mV reading offset


def test_config_points_at_the_emulators(bench):
    config = bench.config()
    addresses = bench.addresses()
    assert config["clock"] == {"kind": "sim", "resource": addresses["clock"]}
    cycler = config["roles"]["cycler"]
    assert (cycler["driver"], cycler["resource"], cycler["channel"]) == ("arbin-cti", addresses["cycler"], 1)
    assert cycler["options"] == {"username": "admin", "password": "000000", "current_range_A": 5.0,
                                 "voltage_range_V": 10.0}  # the channel's full scale, which CTI does not report
    for address in addresses.values():
        host, port = address.split(":")
        assert host == "127.0.0.1"
        socket.create_connection((host, int(port)), timeout=2).close()


def test_config_toml_reads_back_as_config_and_labctl_accepts_it(bench):
    text = bench.config_toml()
    assert tomllib.loads(text) == bench.config()
    assert validate_config(tomllib.loads(text), "sim bench").roles["cycler"].channel == 1


def test_a_run_stepped_by_the_sim_clock_is_exact(bench, connect):
    host, port = bench.addresses()["clock"].split(":")
    clock = SimClock(host, int(port))
    cti = connect(bench.cycler.address)
    assert cti.login() == 1 and cti.assign(0, "labctl_universal.sdx") == 0 and cti.start("run", [0]) == 0
    cti.segment(0, 0.001, time_s=3600.0)
    seen = []
    while (record := cti.info(0)[0])["status"] == CHARGE:
        seen.append(record["test_time"])
        clock.wait(600)
    assert seen == [0.0, 600.0, 1200.0, 1800.0, 2400.0, 3000.0]
    assert (record["status"], record["exit_condition"], record["test_time"]) == (REST, "StepTime>=Limit", 3600.0)
    clock.close()


def test_a_bench_without_speed_does_not_run_free(linear_cell):
    with SimBench(lambda n: linear_cell(), channels=1, speed=None) as sim:
        time.sleep(0.1)
        assert sim.clock.now == 0.0


def test_a_bench_nobody_steps_runs_free(linear_cell):
    with SimBench(lambda n: linear_cell(), channels=1, speed=1000.0) as sim:
        deadline = time.monotonic() + 5
        while sim.clock.now == 0.0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sim.clock.now > 0.0


def test_closed_bench_stops_listening(linear_cell):
    sim = SimBench(lambda n: linear_cell(), channels=1)
    addresses = sim.addresses()
    sim.close()
    for address in addresses.values():
        host, port = address.split(":")
        with pytest.raises(OSError):
            socket.create_connection((host, int(port)), timeout=2)


def test_bench_needs_a_channel(linear_cell):
    with pytest.raises(ValueError, match="channels must be at least 1"):
        SimBench(lambda n: linear_cell(), channels=0)


# --- the impedance analyzer on the bench ---


def test_config_has_the_impedance_role_as_a_pyvisa_socket(bench):
    host, port = bench.addresses()["impedance"].split(":")
    assert (host, int(port)) == bench.impedance.address
    assert bench.config()["roles"]["impedance"] == {
        "driver": "solartron-1260",
        "resource": f"TCPIP::127.0.0.1::{port}::SOCKET",
        "options": {"visa_library": "@py"},
    }
    text = bench.config_toml()
    assert f'[roles.impedance]\ndriver = "solartron-1260"\nresource = "TCPIP::127.0.0.1::{port}::SOCKET"\n' in text
    assert '[roles.impedance.options]\nvisa_library = "@py"\n' in text
    assert validate_config(tomllib.loads(text), "sim bench").roles["impedance"].driver == "solartron-1260"


def test_the_analyzer_measures_its_channels_cell_in_time_stepped_by_the_sim_clock(linear_cell):
    pyvisa = pytest.importorskip("pyvisa")
    with SimBench(lambda n: linear_cell(r=10.0 * n), channels=3, speed=None, impedance_channel=2) as sim:
        config = sim.config()
        rm = pyvisa.ResourceManager(config["roles"]["impedance"]["options"]["visa_library"])
        inst = rm.open_resource(config["roles"]["impedance"]["resource"], read_termination="\r\n",
                                write_termination="\r\n", timeout=5000)
        host, port = sim.addresses()["clock"].split(":")
        clock = SimClock(host, int(port))
        try:
            for command in ("TT2", "OP2,1", "CZ0", "IS 0.5", "MS 1", "FR 1"):
                inst.write(command)
            assert inst.query("*ESR?") == "0"  # asked before SI: the 1260 answers nothing while it measures
            inst.write("SI")
            clock.wait(4.0 - 1e-3)  # MS + max(IS, 3/FR) = 4 s
            inst.timeout = 200
            with pytest.raises(pyvisa.errors.VisaIOError):
                inst.read()  # no result yet
            inst.timeout = 5000
            clock.wait(10.0)  # stops at the result
            assert clock.now() == pytest.approx(4.0, rel=1e-12)
            assert inst.read() == "+1.0000000E+00,+2.0000E+01,+0.0000E+00,0,00"  # channel 2: r = 20 ohm
        finally:
            clock.close()
            inst.close()
            rm.close()


def test_a_bench_without_analyzer(linear_cell):
    with SimBench(lambda n: linear_cell(), channels=1, speed=None, impedance_channel=None) as sim:
        assert sim.impedance is None
        assert set(sim.addresses()) == {"clock", "cycler"}
        assert set(sim.config()["roles"]) == {"cycler"}


@pytest.mark.parametrize("channel", [0, 4])
def test_the_impedance_channel_must_be_a_cycler_channel(linear_cell, channel):
    with pytest.raises(ValueError, match="impedance_channel must be a cycler channel 1..3"):
        SimBench(lambda n: linear_cell(), channels=3, impedance_channel=channel)


def test_the_analyzed_cell_needs_an_impedance_model():
    class VoltageOnly:
        def advance(self, current_A: float, dt_s: float) -> None:
            pass

        def voltage(self, current_A: float) -> float:
            return 0.0

        def measured_voltage(self, current_A: float) -> float:
            return 0.0

    with pytest.raises(ValueError, match="channel 1 .*VoltageOnly.* has no impedance model"):
        SimBench(lambda n: VoltageOnly(), channels=1, speed=None)
    SimBench(lambda n: VoltageOnly(), channels=1, speed=None, impedance_channel=None).close()
