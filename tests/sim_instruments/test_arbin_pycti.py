"""Interoperability: pycti-arbin 0.0.13, an independent CTI client, against the emulator.

pycti-arbin's quirks, which the emulator deliberately does not copy: it never verifies feedback checksums;
its set-MV decoder swaps 0x11 and 0x12 (it words 0x12, "channel not running" in the protocol document, as
"Meta code does not exist"); ``ChannelInterface`` sends its ``channel`` setting as the 0-based wire index
(so channel=1 is the cycler's second channel) while ``CyclerInterface.read_channel_status`` counts from 1;
and its assign request presets user variables 1-4 (MV_UD1..4) to 1.0.
"""

from __future__ import annotations

import pytest

pyctiarbin = pytest.importorskip("pyctiarbin")


@pytest.fixture
def env_file(tmp_path, monkeypatch):
    # pycti-arbin loads credentials into os.environ; monkeypatch restores the environment afterwards
    monkeypatch.setenv("ARBIN_CTI_USERNAME", "admin")
    monkeypatch.setenv("ARBIN_CTI_PASSWORD", "000000")
    path = tmp_path / ".env"
    path.write_text("ARBIN_CTI_USERNAME=admin\nARBIN_CTI_PASSWORD=000000\n", encoding="utf-8")
    return str(path)


@pytest.fixture
def emulator(make_emulator, linear_cell):
    return make_emulator({1: linear_cell(e=0.01), 2: linear_cell(e=0.02)}, serial_number="SIM-7")


def test_cycler_interface_logs_in_and_reads_channel_status(emulator, env_file):
    host, port = emulator.address
    cycler = pyctiarbin.CyclerInterface({"ip_address": host, "port": port}, env_path=env_file)
    assert cycler.get_num_channels() == 2
    assert cycler.get_login_feedback()["cycler_sn"] == "SIM-7"
    status = cycler.read_channel_status(channel=2)
    assert status["channel"] == 1 and status["status"] == "Idle"
    assert status["voltage_v"] == pytest.approx(0.021)


def test_channel_interface_assigns_starts_sets_mvs_and_stops(emulator, clock, env_file):
    host, port = emulator.address
    config = {"channel": 1, "test_name": "interop", "schedule_name": "labctl_universal.sdx",
              "ip_address": host, "port": port}
    channel = pyctiarbin.ChannelInterface(config, env_path=env_file)
    assert channel.start_test()  # assigns, then starts
    status = channel.read_channel_status()
    # its preset MV_UD1..4 = 1.0 start a 1 A segment whose lower limit (1 V) is met at once
    assert (status["status"], status["testname"], status["exit_condition"]) == ("Rest", "interop", "Voltage<=Limit")

    for mv, value in ((1, 0.0), (2, 0.5), (3, 4.0), (4, -4.0), (5, 30.0), (6, 0.0), (1, 1.0)):
        assert channel.set_meta_variable(mv, value)
    status = channel.read_channel_status()
    assert (status["status"], status["current_a"]) == ("Charge", 0.5)
    assert clock.advance(60) == (30.0, True)
    status = channel.read_channel_status()
    assert (status["status"], status["exit_condition"]) == ("Rest", "StepTime>=Limit")

    assert channel.stop_test()
    assert channel.read_channel_status()["status"] == "Idle"
    assert not channel.set_meta_variable(1, 0.0)  # 0x12: channel not running
    assert emulator.channels[0].status == 0  # channel=1 addressed the second channel only
