"""The Solartron 1260 emulator over a raw socket and through PyVISA: commands, errors, results, virtual time.

Expected bytes are written out here from the wire contract (research/instruments.md §2), not produced with
the emulator's own helpers. Like the 1260, the emulator handles commands in order: while a point is measured,
later commands (queries too) wait for its result. "No line yet" is checked without waiting: while idle, a
``*IDN?`` sent afterwards must come back first; while measuring, nothing has arrived on the socket.
"""

from __future__ import annotations

import cmath
import math
import re
import select
import socket
from collections.abc import Iterator

import pytest

from labctl.sim_instruments.clock import VirtualClock
from labctl.sim_instruments.si1260_server import Si1260Emulator

IDN = "1260 IMPEDANCE ANALYZER, SOLARTRON, 0, 0"
COMMAND_ERROR, EXECUTION_ERROR = 32, 16
# The manual's record (GPIB chapter 2.4.2): frequency 8 significant digits, the parameters 5, error, limits.
RESULT = re.compile(r"([+-]\d\.\d{7}E[+-]\d{2}),([+-]\d\.\d{4}E[+-]\d{2}),([+-]\d\.\d{4}E[+-]\d{2}),0,00")
OPERATION_COMPLETE, MAV, ESB, MSS = 1, 16, 32, 64
SETUP = ("TT2", "OS0", "OT0", "OP2,1", "RH0", "SW0", "ME0", "BP0", "CE", "AU0", "GT0", "VA 0.01", "VB 0",
         "RA 1,0", "RA 3,0", "DC 1,0", "DC 3,0", "SO1,3", "CZ0", "UW0", "IS 0.1", "MS 0")  # fmt: skip


class RCCell:
    """R ‖ C with exact, noise-free readings; remembers the frequencies it was measured at."""

    def __init__(self, r: float = 100.0, c: float = 1e-6) -> None:
        self.r, self.c = r, c
        self.measured: list[float] = []

    def impedance(self, frequency_Hz: float) -> complex:
        return self.r / (1 + 2j * math.pi * frequency_Hz * self.r * self.c)

    def measured_impedance(self, frequency_Hz: float) -> complex:
        self.measured.append(frequency_Hz)
        return self.impedance(frequency_Hz)


class Raw:
    """A 1260 client made of socket calls."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def send(self, *commands: str | bytes) -> None:
        for command in commands:
            data = command if isinstance(command, bytes) else command.encode("ascii")
            self.sock.sendall(data + b"\r\n")

    def line(self) -> str:
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            assert chunk, "the emulator closed the connection"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line.decode("ascii")

    def query(self, command: str) -> str:
        self.send(command)
        return self.line()

    def esr(self) -> int:
        return int(self.query("*ESR?"))

    def nothing_waiting(self) -> bool:
        """True if no line is queued ahead of the reply to a new query (only while no point is measured)."""
        return self.query("*IDN?") == IDN

    def nothing_received(self) -> bool:
        """True if no byte has arrived (the emulator writes under the clock's lock, so after an advance
        whatever it output is already on the socket)."""
        return not self.buffer and not select.select([self.sock], [], [], 0)[0]

    def setup(self, *extra: str) -> None:
        self.send(*SETUP, *extra)
        assert self.esr() == 0

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def cell() -> RCCell:
    return RCCell()


@pytest.fixture
def analyzer(clock: VirtualClock, cell: RCCell) -> Iterator[Si1260Emulator]:
    with Si1260Emulator(clock, cell) as emulator:
        yield emulator


@pytest.fixture
def client(analyzer: Si1260Emulator) -> Iterator[Raw]:
    raw = Raw(analyzer.address)
    yield raw
    raw.close()


def expected_line(frequency: float, a: float, b: float) -> str:
    return f"{frequency:+.7E},{a:+.4E},{b:+.4E},0,00"


def measure(client: Raw, clock: VirtualClock, *commands: str) -> str:
    """Send ``commands`` (checked), then SI, let the measurement finish on the clock, read the result line."""
    client.send(*commands)
    assert client.esr() == 0
    client.send("SI")  # no query after it: it would wait for the point
    clock.advance(1e6)
    return client.line()


def start(client: Raw, *settings: str) -> None:
    """Set the instrument up (checked), then trigger a point."""
    client.setup(*settings)
    client.send("SI")


# --- identity, status register ---


def test_identity_any_case_any_spacing(client):
    assert client.query("*IDN?") == IDN
    assert client.query("*idn?") == IDN
    assert client.query("  *IDN?  ") == IDN


def test_a_bare_lf_ends_a_command_too(client):
    client.sock.sendall(b"*IDN?\n")
    assert client.line() == IDN


def test_esr_reads_and_clears_and_cls_clears(client):
    client.send("XX", "FR 1e9")
    assert client.esr() == COMMAND_ERROR | EXECUTION_ERROR
    assert client.esr() == 0
    client.send("XX", "*CLS")
    assert client.esr() == 0


def test_ieee_488_2_common_commands(client):
    """The manual's IEEE 488 commands (§2.7): enable registers set and read back, *OPC sets bit 0 of the event
    status register, *OPC? answers 1 once idle, *TST? answers 1 (the manual: 1 pass, 0 fail)."""
    client.send("*ESE 36", "*SRE 48")
    assert (client.query("*ESE?"), client.query("*SRE?")) == ("36", "48")
    client.send("*OPC")
    assert client.esr() == OPERATION_COMPLETE
    assert client.query("*OPC?") == "1"
    assert client.query("*TST?") == "1"
    client.send("*CLS")  # clears the event status register, not the enable registers
    assert (client.esr(), client.query("*ESE?")) == (0, "36")


def test_status_byte_summarises_the_event_status_register(client):
    """*STB? (IEEE 488.2): ESB (32) when an enabled event bit is set, MSS (64) when an enabled summary bit is
    set; reading it changes nothing, *ESR? clears the events and so the summary."""
    assert client.query("*STB?") == "0"
    client.send("XX")  # command error, bit 32 of the event status register
    assert client.query("*STB?") == "0"  # not enabled
    client.send("*ESE 32")
    assert client.query("*STB?") == str(ESB)
    client.send("*SRE 32")
    assert client.query("*STB?") == client.query("*STB?") == str(ESB | MSS)
    assert client.esr() == COMMAND_ERROR
    assert client.query("*STB?") == "0"


def test_status_byte_reports_a_result_waiting_as_mav(client, clock):
    """MAV (16): a *STB? sent with SI is answered after the point, behind the result line it reports."""
    start(client)
    client.send("*STB?")
    clock.advance(10.0)
    assert RESULT.fullmatch(client.line())
    assert client.line() == str(MAV)
    assert client.query("*STB?") == "0"  # a later query: the client has read what came before


# --- configuration ---


def test_every_configuration_command_is_accepted_and_kept(client, analyzer):
    client.send("TT 2", "TT1", "os 0", "OT1", "OP 2, 1", "OP3,0", "OP1,0", "rh0", "SW0", "ME0", "BP0", "ce", "AU0",
                "FR 1.0000000E+03", "VA .25", "VB -1.5", "gt0", "IS 2.0E-1", "MS5", "RA 1,3", "RA2,2", "RA 3,5",
                "DC 1,1", "DC3,1", "IP 1,1", "IP 2,1", "OU 1,1", "OU2,0", "SO 2,3", "CZ1", "UW1")  # fmt: skip
    assert client.esr() == 0
    s = analyzer.settings
    assert (s.frequency_Hz, s.amplitude_V, s.bias_V, s.integration_s, s.delay_s) == (1000.0, 0.25, -1.5, 0.2, 5.0)
    assert (s.terminator, s.output_gpib, s.source, s.coordinates, s.unwrap) == (1, True, (2, 3), 1, 1)
    assert s.input_range == {1: 3, 2: 2, 3: 5} and s.coupling == {1: 1, 2: 0, 3: 1}
    assert s.input_mode == {1: 1, 2: 1} and s.outer == {1: 1, 2: 0}


@pytest.mark.parametrize("text", ["FR 1.0E3", "FR1000", "FR 1.0000000E+03", "fr 1e+03", "FR +1000.", "FR 0.1e4",
                                  "FR 1E3", "FR 1000000E-3"])
def test_numbers_in_any_float_notation(client, analyzer, text):
    client.send("FR 5", text)
    assert client.esr() == 0
    assert analyzer.settings.frequency_Hz == 1000.0


@pytest.mark.parametrize("reset", ["TT2", "TT1", "TT 1"])
def test_tt1_and_tt2_restore_power_on_settings(client, analyzer, clock, reset):
    client.setup("FR 5e3", "VA 0.5", "CZ1", "IS 2")
    assert measure(client, clock).startswith("+5.0000000E+03,")
    client.send(reset)
    assert client.esr() == 0
    s = analyzer.settings
    assert (s.frequency_Hz, s.amplitude_V, s.integration_s, s.coordinates, s.output_gpib) == (1000.0, 0.0, 1.0, 0, False)
    assert analyzer.last_result is None


@pytest.mark.parametrize("command", [
    "XX", "FREQ 1000", "FR", "FR abc", "FR 1,2", "FR 1e3x", "FR 1e", "FR --1", "FR 0x10", "F R 1000", "SI 1", "RA 1",
    "RA 1,,0", "*IDN", "*ESR", "*IDN? 1", "FR 1000;VA 0.1", "FR nan", "FR inf", "VA 1 0", b"FR \xb51000", b"FR\r1000",
])  # fmt: skip
def test_unknown_or_malformed_commands_set_the_command_error_bit_only(client, analyzer, command):
    client.send(command)
    assert client.esr() == COMMAND_ERROR
    assert client.nothing_waiting()
    assert analyzer.settings.frequency_Hz == 1000.0 and analyzer.settings.amplitude_V == 0.0


@pytest.mark.parametrize("command", [
    "FR 9e-6", "FR 3.3e7", "VA 3.01", "VA -0.1", "VB 41", "VB -40.96", "IS 0.009", "IS 1.1e5", "MS -1", "MS 2e5",
    "RA 0,0", "RA 1,4", "RA 2,4", "RA 3,6", "RA 4,0", "RA 1,0.5", "DC 4,0", "DC 1,2", "IP 3,0", "OU 1,2",
    "SO 1,2", "SO 2,1", "SO 3,3", "SO 1,4", "GT1", "GT2", "CZ2", "UW2", "OS1", "OT2", "OP 2,2", "OP 4,1", "TT3",
    "RH1", "SW1", "AU1", "FR 1e99999", "*ESE 256", "*ESE -1", "*ESE 1.5", "*SRE 256",
])  # fmt: skip
def test_values_out_of_range_set_the_execution_error_bit_and_change_nothing(client, analyzer, command):
    before = repr(analyzer.settings)
    client.send(command)
    assert client.esr() == EXECUTION_ERROR
    assert client.nothing_waiting()
    assert repr(analyzer.settings) == before


def test_more_than_one_volt_only_up_to_10_mhz(client, analyzer):
    client.send("VA 2", "FR 2e7")
    assert client.esr() == EXECUTION_ERROR
    client.send("VA 1", "FR 2e7")
    assert client.esr() == 0
    client.send("VA 1.5")
    assert client.esr() == EXECUTION_ERROR
    assert (analyzer.settings.amplitude_V, analyzer.settings.frequency_Hz) == (1.0, 2e7)


@pytest.mark.parametrize("length", [1100, 5000, 20000])
def test_an_over_long_line_is_one_command_error_and_the_connection_stays_usable(client, analyzer, length):
    client.send("FR " + "1" * length)
    assert client.esr() == COMMAND_ERROR
    assert client.query("*IDN?") == IDN
    assert client.esr() == 0 and analyzer.settings.frequency_Hz == 1000.0


# --- results ---


def test_result_line_rectangular(client, clock, cell):
    line = measure(client, clock, *SETUP, "FR 1.0E3")
    z = cell.impedance(1000.0)
    assert line == expected_line(1000.0, z.real, z.imag)
    assert RESULT.fullmatch(line) and z.imag < 0  # capacitive: Z'' negative
    assert len(line) == 43  # the manual's fixed-length record: 14 + 11 + 11 characters, error, limits
    assert cell.measured == [1000.0]


def test_result_line_polar(client, clock, cell):
    line = measure(client, clock, *SETUP, "CZ1", "FR 2512.5")
    z = cell.impedance(2512.5)
    assert line == expected_line(2512.5, abs(z), math.degrees(cmath.phase(z)))
    assert -90 < float(line.split(",")[2]) < 0


def test_source_v2_over_i_measures_the_cell_too(client, clock, cell):
    z = cell.impedance(1000.0)
    assert measure(client, clock, *SETUP, "SO2,3") == expected_line(1000.0, z.real, z.imag)


def test_do_outputs_the_last_result_again_in_the_present_coordinates(client, clock, cell):
    first = measure(client, clock, *SETUP, "FR 100")
    assert client.query("DO") == first
    client.send("CZ1", "FR 7")  # coordinates apply to the output; the frequency is the measured point's
    z = cell.impedance(100.0)
    assert client.query("DO") == expected_line(100.0, abs(z), math.degrees(cmath.phase(z)))
    assert cell.measured == [100.0]  # DO measures nothing


def test_do_before_any_result_is_an_execution_error(client):
    client.send(*SETUP, "DO")
    assert client.esr() == EXECUTION_ERROR
    assert client.nothing_waiting()


def test_results_are_not_output_unless_op2_is_on(client, clock, cell):
    start(client, "OP2,0")
    assert clock.advance(10.0)[1]  # measured ...
    assert client.nothing_waiting()  # ... but not output
    assert cell.measured == [1000.0]
    client.send("OP2,1")
    z = cell.impedance(1000.0)
    assert client.query("DO") == expected_line(1000.0, z.real, z.imag)


def test_the_cell_is_measured_when_the_result_is_due(client, clock, cell):
    start(client)
    cell.r = 200.0  # the cell changes during the integration: the result is the cell at its end
    clock.advance(1.0)
    z = RCCell(r=200.0).impedance(1000.0)
    assert client.line() == expected_line(1000.0, z.real, z.imag)


# --- timing on the virtual clock ---


@pytest.mark.parametrize(("frequency", "integration", "delay", "duration"), [
    (1000.0, 0.1, 0.0, 0.1),  # integration time rules
    (1.0, 0.1, 0.0, 3.0),  # three periods rule
    (0.1, 0.1, 2.0, 32.0),  # delay, then three periods
    (2.0, 5.0, 1.5, 6.5),
    (1e-5, 0.01, 0.0, 3e5),
])  # fmt: skip
def test_result_appears_exactly_after_delay_plus_integration(client, clock, frequency, integration, delay, duration):
    start(client, f"FR {frequency:.7E}", f"IS {integration}", f"MS {delay}")
    clock.advance(duration * (1 - 1e-4))
    assert client.nothing_received()
    t, event = clock.advance(10 * duration)  # a stepped clock stops on the result
    assert event and t == pytest.approx(duration, rel=1e-6)
    assert client.line().startswith(f"{frequency:+.7E},")
    assert clock.advance(duration)[1] is False  # nothing left pending


def test_a_client_that_waits_for_the_frequency_it_meant_gets_the_point_its_8_digits_asked_for(client, clock):
    meant = 25.118864315095795  # sent as 2.5118864E+01, a little lower: 3/f a little longer
    start(client, f"FR {meant:.7E}", "IS 0.01")
    clock.advance(3 / meant)
    assert client.line().startswith("+2.5118864E+01,")


def test_the_clock_lands_on_the_result_in_one_long_substep_or_many(analyzer, client):
    clock = analyzer.clock
    start(client, "FR 0.01")  # 300 s, integrated in the clock's 1 s substeps
    assert clock.advance(1000.0) == (pytest.approx(300.0, rel=1e-6), True)
    assert client.line().startswith("+1.0000000E-02,")


def test_a_free_running_clock_delivers_the_result(cell):
    clock = VirtualClock()
    with Si1260Emulator(clock, cell) as analyzer:
        raw = Raw(analyzer.address)
        start(raw, "IS 1")
        clock.run_free(speed=1000.0)
        try:
            assert raw.line().startswith("+1.0000000E+03,")
        finally:
            clock.stop()
            raw.close()


def test_a_result_nobody_read_comes_first_after_the_next_trigger(client, clock):
    start(client, "FR 1000")
    clock.advance(5.0)  # the 1 kHz result is output, and nobody reads it
    client.send("FR 100", "SI", "*ESR?")
    assert client.line().startswith("+1.0000000E+03,")  # a read after the new trigger: the stale point
    clock.advance(5.0)
    assert client.line().startswith("+1.0000000E+02,")  # the point just asked for
    assert client.line() == "0"  # *ESR? waited for it


def test_commands_sent_during_a_measurement_wait_for_its_result(client, clock, cell):
    """Issue 14: the 1260 handles commands in order; *ESR?, *IDN? and settings sent while a point is measured
    are executed after it, and their replies follow the result line."""
    start(client, "FR 0.1")  # 30 s
    client.send("*ESR?", "FR 1000", "XX", "*IDN?", "*ESR?")
    clock.advance(29.0)
    assert client.nothing_received()
    assert clock.advance(10.0) == (pytest.approx(30.0), True)
    assert client.line().startswith("+1.0000000E-01,")
    assert [client.line(), client.line(), client.line()] == ["0", IDN, str(COMMAND_ERROR)]
    assert cell.measured == [0.1]


def test_a_second_trigger_waits_for_the_first_point(client, clock, cell):
    start(client, "FR 0.1")  # 30 s, then the 1 kHz point (0.1 s)
    client.send("FR 1000", "SI")
    assert clock.advance(100.0) == (pytest.approx(30.0), True)
    assert client.line().startswith("+1.0000000E-01,")
    assert clock.advance(100.0) == (pytest.approx(30.1), True)  # the clock's time: 30 s, then 0.1 s
    assert client.line().startswith("+1.0000000E+03,")
    assert cell.measured == [0.1, 1000.0]


@pytest.mark.parametrize("command", ["BK", "*RST", "TT2", "TT1", "bk"])
def test_break_reset_cancel_a_pending_measurement_at_once(client, clock, cell, command):
    start(client, "FR 0.01")  # 300 s
    client.send(command)
    assert client.esr() == 0  # answered without the clock moving: the point was ended
    assert clock.advance(1000.0) == (1000.0, False)  # no longer a participant: nothing stops the clock
    assert client.nothing_waiting()
    assert cell.measured == []


def test_a_client_that_leaves_before_its_result_does_not_disturb_the_bench(analyzer, clock, cell):
    raw = Raw(analyzer.address)
    start(raw)
    raw.close()
    assert clock.advance(10.0)[1]  # measured, output dropped
    assert analyzer.last_result == (1000.0, cell.impedance(1000.0))
    again = Raw(analyzer.address)
    try:
        again.send("OP2,1")
        assert again.query("DO").startswith("+1.0000000E+03,")
    finally:
        again.close()


def test_closing_the_emulator_leaves_the_clock(clock, cell):
    analyzer = Si1260Emulator(clock, cell)
    raw = Raw(analyzer.address)
    start(raw)
    raw.close()
    analyzer.close()
    assert clock.advance(10.0) == (10.0, False)


def test_one_instrument_many_connections_results_go_to_the_trigger(analyzer, client, clock):
    other = Raw(analyzer.address)
    try:
        other.send("FR 250")  # settings are the instrument's, whoever sets them
        assert other.esr() == 0
        start(client, "FR 250")
        clock.advance(1.0)
        assert client.line().startswith("+2.5000000E+02,")
        assert other.nothing_waiting()
        other.send("XX")
        assert other.nothing_waiting()  # XX has been handled
        assert client.esr() == COMMAND_ERROR  # one status register
    finally:
        other.close()


# --- PyVISA, as labctl's driver and other programs reach the instrument ---


def test_pyvisa_socket_resource(analyzer, clock, cell):
    pyvisa = pytest.importorskip("pyvisa")
    rm = pyvisa.ResourceManager("@py")
    inst = rm.open_resource(f"TCPIP::127.0.0.1::{analyzer.port}::SOCKET", read_termination="\r\n",
                            write_termination="\r\n", timeout=5000)
    try:
        assert inst.query("*IDN?") == IDN
        for command in SETUP:
            inst.write(command)
        inst.write("FR 1.0000000E+04")
        assert inst.query("*ESR?") == "0"
        inst.write("SI")
        clock.advance(1.0)
        z = cell.impedance(1e4)
        assert inst.read() == expected_line(1e4, z.real, z.imag)
        assert inst.query("*ESR?") == "0"
        inst.write("FR 1e8")
        assert int(inst.query("*ESR?")) == EXECUTION_ERROR
    finally:
        inst.close()
        rm.close()
