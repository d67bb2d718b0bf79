"""CTIClient against frames written by hand from ArbinCTI_Protocol v1.1.

Docstrings cite the protocol's message (and the summary in research/instruments.md §3.2-3.5). Channels:
the API takes physical channel 2; the wire carries index 1.
"""

from __future__ import annotations

import math

import pytest

from labctl.drivers.arbin.cti import (
    ATTEMPTS,
    ChannelInfo,
    CTIClient,
    CTIConnectionError,
    CTILoginError,
    CTIProtocolError,
    CTIResultError,
    CTITimeoutError,
)  # fmt: skip

CH2 = "01 00 00 00"  # physical channel 2 as a u32/i32 wire index


@pytest.fixture
def login(cti):
    """The transcript entry every connection starts with: USER_LOGIN answered with 8 channels."""
    return (cti.login_request(), cti.login_feedback(channels=8))


def connect(server, **options) -> CTIClient:
    return CTIClient("127.0.0.1", server.port, **options)


def test_login_reports_serial_number_and_channel_count(cti, login):
    """USER_LOGIN feedback: char[16] serial number at 28, u32 channel count at 8664 (§3.4)."""
    with cti.replay([login]) as server, connect(server) as client:
        assert client.serial_number == "ARB-0042"
        assert client.channel_count == 8


def test_login_sends_configured_credentials(cti):
    """USER_LOGIN request: char[32] user name at 20, char[32] password at 52, zero-padded (§3.4)."""
    with cti.replay([(cti.login_request(b"labctl", b"s3cret"), cti.login_feedback())]) as server:
        connect(server, username="labctl", password="s3cret").close()


def test_login_failure_names_result_code(cti):
    """USER_LOGIN feedback result 2 = fail (§3.4)."""
    with cti.replay([(cti.login_request(), cti.login_feedback(result=2))]) as server:
        with pytest.raises(CTILoginError, match=r"USER_LOGIN as 'admin' at 127\.0\.0\.1:\d+ failed: 0x02 fail") as e:
            connect(server)
    assert e.value.code == 2


def test_connect_failure_names_host_and_port(free_port):
    """Transport (§3.1): nothing listens on the port."""
    with pytest.raises(CTIConnectionError, match=rf"127\.0\.0\.1:{free_port}"):
        CTIClient("127.0.0.1", free_port, connect_timeout_s=2)


def test_channel_info_parses_single_record(cti, login):
    """GET_CHANNELS_INFO with OnlyChannel = 1; record fields at their documented offsets (§3.4)."""
    record = cti.channel_record(
        1, 2, test_time=1234.5, step_time=67.25, voltage=0.0125, current=0.00157, charge=2.5e-4,
        discharge=1.25e-4, exit_condition=b"StepTime>=Limit", schedule="labctl_universal.sdx",
    )  # fmt: skip
    transcript = [login, (cti.channel_info_request("01 00"), cti.channels_feedback(record))]
    with cti.replay(transcript) as server, connect(server) as c:
        info = c.channel_info(2)
    assert isinstance(info, ChannelInfo)
    assert (info.channel, info.status, info.status_word, info.running) == (2, 2, "Charge", True)
    assert (info.test_time_s, info.step_time_s) == (1234.5, 67.25)
    assert info.voltage_V == pytest.approx(0.0125) and info.current_A == pytest.approx(0.00157)
    assert info.charge_capacity_Ah == pytest.approx(2.5e-4) and info.discharge_capacity_Ah == pytest.approx(1.25e-4)
    assert (info.exit_condition, info.schedule) == ("StepTime>=Limit", "labctl_universal.sdx")


def test_channel_info_selects_requested_channel_from_all_channel_reply(cti, login):
    """MITS 10 answers a one-channel request with every channel (§3.7, pycti-arbin #24); aux tails vary lengths."""
    records = (
        cti.channel_record(0, 4, voltage=0.1, aux_voltages=[3.7, 3.8]),  # 1753 + 2 * 8 bytes
        cti.channel_record(1, 3, voltage=-0.2, current=-0.001, test_time=99.0),
        cti.channel_record(2, 0, voltage=0.3),
    )
    transcript = [login, (cti.channel_info_request("01 00"), cti.channels_feedback(*records))]
    with cti.replay(transcript) as server, connect(server) as c:
        info = c.channel_info(2)
    assert (info.channel, info.status_word, info.test_time_s) == (2, "Discharge", 99.0)
    assert info.voltage_V == pytest.approx(-0.2) and info.current_A == pytest.approx(-0.001)


def test_channels_info_returns_every_record(cti, login):
    """GET_CHANNELS_INFO with OnlyChannel = -1 (FF FF): all channels in one frame (§3.2)."""
    records = [cti.channel_record(k, 0, voltage=0.1 * k) for k in range(3)]
    transcript = [login, (cti.channel_info_request("FF FF"), cti.channels_feedback(*records))]
    with cti.replay(transcript) as server, connect(server) as c:
        infos = c.channels_info()
    assert [i.channel for i in infos] == [1, 2, 3]
    assert [i.status_word for i in infos] == ["Idle"] * 3


def test_assign_schedule_sends_documented_frame(cti, login):
    """ASSIGN_SCHEDULE: channel, schedule wchar[200], f32 capacity Ah, barcode wchar[72], 16 f32 MVs (§3.4)."""
    expected = cti.assign_request(CH2, "Formation.sdx", barcode="cell-7", capacity=0.5, user_variables=[1.0, 2.5])
    with cti.replay([login, (expected, cti.result_feedback(cti.ASSIGN_FB, 1, 0))]) as server, connect(server) as c:
        c.assign_schedule(2, "Formation.sdx", barcode="cell-7", test_capacity_Ah=0.5, user_variables=[1.0, 2.5])


def test_assign_schedule_failure_names_result_code(cti, login):
    """ASSIGN_SCHEDULE feedback result 0x13 = schedule not found (§3.5)."""
    reply = cti.result_feedback(cti.ASSIGN_FB, 1, 0x13)
    with cti.replay([login, (cti.assign_request(CH2, "Missing.sdx"), reply)]) as server, connect(server) as c:
        with pytest.raises(CTIResultError) as e:
            c.assign_schedule(2, "Missing.sdx")
    assert str(e.value) == "ASSIGN_SCHEDULE on channel 2 failed: 0x13 schedule not found"
    assert (e.value.command, e.value.code) == ("ASSIGN_SCHEDULE", 0x13)


def test_start_sends_documented_frame(cti, login):
    """START_SCHEDULE: wchar[72] test name at 20, u32 channel count at 164, u16 channels from 168 (§3.4)."""
    expected = cti.start_request("ccd cell-7", ["00 00", "02 00"])  # physical channels 1 and 3
    with cti.replay([login, (expected, cti.result_feedback(cti.START_FB, 0, 0))]) as server, connect(server) as c:
        c.start([1, 3], "ccd cell-7")


def test_start_failure_names_result_code(cti, login):
    """START_SCHEDULE feedback result 0x15 = no schedule assigned (§3.5)."""
    reply = cti.result_feedback(cti.START_FB, 1, 0x15)
    with cti.replay([login, (cti.start_request("ccd", ["01 00"]), reply)]) as server, connect(server) as c:
        with pytest.raises(CTIResultError) as e:
            c.start(2, "ccd")
    assert str(e.value) == "START_SCHEDULE on channel 2 failed: 0x15 no schedule assigned"


def test_stop_sends_documented_frame(cti, login):
    """STOP_SCHEDULE: u32 channel at 20, u8 stop_all = 0 at 24 (§3.4)."""
    with cti.replay([login, (cti.stop_request(CH2), cti.result_feedback(cti.STOP_FB, 1, 0))]) as server:
        with connect(server) as c:
            c.stop(2)


def test_stop_failure_names_result_code(cti, login):
    """STOP_SCHEDULE feedback result 0x11 = someone controls the monitor window (§3.5)."""
    reply = cti.result_feedback(cti.STOP_FB, 1, 0x11)
    with cti.replay([login, (cti.stop_request(CH2), reply)]) as server, connect(server) as c:
        with pytest.raises(CTIResultError, match="^STOP_SCHEDULE on channel 2 failed: 0x11 someone controls the"):
            c.stop(2)


def test_set_meta_variable_sends_documented_frame(cti, login):
    """SET_MV_VALUE: MV type 1, meta code of MV_UD5 = 105 (0x69), value type 1 = f32 (§3.4)."""
    expected = cti.set_mv_request(CH2, "69 00 00 00", cti.f32(600.0))
    with cti.replay([login, (expected, cti.result_feedback(cti.SET_MV_FB, 1, 0))]) as server, connect(server) as c:
        c.set_meta_variable(2, 5, 600.0)


def test_set_meta_variable_failure_names_result_code(cti, login):
    """SET_MV_VALUE feedback result 0x12 = channel not running, in the protocol PDF's numbering (§3.5)."""
    expected = cti.set_mv_request(CH2, "34 00 00 00", cti.f32(1.0))  # MV_UD1 = meta code 52
    with cti.replay([login, (expected, cti.result_feedback(cti.SET_MV_FB, 1, 0x12))]) as server, connect(server) as c:
        with pytest.raises(CTIResultError, match="^SET_MV MV_UD1 on channel 2 failed: 0x12 channel not running$"):
            c.set_meta_variable(2, 1, 1.0)


def every_send(login, request, reply) -> list:
    """The transcript of a command whose every send (ATTEMPTS of them, each on a new connection) gets ``reply``."""
    return [login, (request, reply)] + [login, (request, reply)] * (ATTEMPTS - 1)


def test_bad_checksum_in_reply_raises_protocol_error(cti, login):
    """Frame: the trailing u16 is the byte sum of everything before it (§3.2); raised once every send got one."""
    good = cti.result_feedback(cti.STOP_FB, 1, 0)
    bad = good[:-2] + bytes([good[-2] ^ 0x01, good[-1]])
    with cti.replay(every_send(login, cti.stop_request(CH2), bad)) as server, connect(server) as c:
        with pytest.raises(CTIProtocolError, match=f"STOP_SCHEDULE failed {ATTEMPTS} times.*checksum"):
            c.stop(2)


def test_one_garbled_reply_is_survived_by_reconnecting_and_reading_again(cti, login):
    """A 1 % frame-error rate must not end a month-long run: a bad checksum costs one reconnect and re-read."""
    request = cti.channel_info_request("01 00")
    good = cti.channels_feedback(cti.channel_record(1, 4, test_time=5.0))
    bad = good[:-2] + bytes([good[-2] ^ 0x01, good[-1]])
    with cti.replay([login, (request, bad), login, (request, good)]) as server, connect(server) as c:
        assert c.channel_info(2).test_time_s == 5.0


def test_wrong_token_raises_protocol_error(cti, login):
    """Frame: every frame starts with the token DD DD DD DD DD DD DD 11 (§3.2)."""
    reply = cti.feedback(cti.STOP_FB, bytes(106), token=bytes.fromhex("DD DD DD DD DD DD DD 12"))
    with cti.replay(every_send(login, cti.stop_request(CH2), reply)) as server, connect(server) as c:
        with pytest.raises(CTIProtocolError, match="token"):
            c.stop(2)


def test_feedback_for_another_command_raises_protocol_error(cti, login):
    """Each request has its own feedback: STOP 0xBB310001 -> 0xBB130001, not START's 0xBB230004 (§3.3)."""
    reply = cti.result_feedback(cti.START_FB, 1, 0)
    with cti.replay(every_send(login, cti.stop_request(CH2), reply)) as server, connect(server) as c:
        with pytest.raises(CTIProtocolError, match="sent STOP_SCHEDULE .* got feedback 0xbb230004"):
            c.stop(2)


def test_missing_feedback_times_out(cti, login):
    """The protocol recommends a feedback timeout (10 s by default; short here) (§3.1); every send timed out."""
    with cti.replay(every_send(login, cti.stop_request(CH2), cti.SILENT)) as server, \
            connect(server, timeout_s=0.2) as c:
        with pytest.raises(CTITimeoutError, match=r"STOP_SCHEDULE: no complete feedback from 127\.0\.0\.1"):
            c.stop(2)


def test_one_missing_feedback_is_survived_by_reconnecting_and_reading_again(cti, login):
    """A lost or late reply (docs/design.md: the driver times out and reconnects) does not end the run."""
    request = cti.channel_info_request("01 00")
    reply = cti.channels_feedback(cti.channel_record(1, 4, test_time=5.0))
    transcript = [login, (request, cti.SILENT), login, (request, reply)]
    with cti.replay(transcript) as server, connect(server, timeout_s=0.2) as c:
        assert c.channel_info(2).status_word == "Rest"


def test_reconnects_logs_in_and_retries_after_server_drops_connection(cti, login):
    """A dropped connection is re-opened with a new USER_LOGIN and the command sent once more."""
    request = cti.channel_info_request("01 00")
    reply = cti.channels_feedback(cti.channel_record(1, 4, test_time=5.0))
    with cti.replay([login, (request, cti.DROP), login, (request, reply)]) as server, connect(server) as c:
        assert c.channel_info(2).status_word == "Rest"


def test_a_drop_on_every_send_raises_connection_error(cti, login):
    """The retry budget is bounded: ATTEMPTS sends, then the failure is reported with host:port."""
    with cti.replay(every_send(login, cti.stop_request(CH2), cti.DROP)) as server, connect(server) as c:
        with pytest.raises(CTIConnectionError, match=rf"STOP_SCHEDULE failed {ATTEMPTS} times.*127\.0\.0\.1:\d+"):
            c.stop(2)


@pytest.mark.parametrize("channel", [0, 9, -1, True, 2.0])
def test_channel_outside_cycler_is_rejected_before_io(cti, login, channel):
    """Physical channels are 1..channel count from the login feedback; nothing is sent for another."""
    with cti.replay([login]) as server, connect(server) as c, pytest.raises(ValueError, match="channel"):
        c.channel_info(channel)


@pytest.mark.parametrize("index", [0, 17, 1.0])
def test_set_meta_variable_rejects_index_outside_1_to_16(cti, login, index):
    """SET_MV_VALUE knows MV_UD1..MV_UD16 only (§3.4 meta codes)."""
    with cti.replay([login]) as server, connect(server) as c, pytest.raises(ValueError, match="give 1..16"):
        c.set_meta_variable(2, index, 1.0)


@pytest.mark.parametrize("value", [math.nan, math.inf, 1e39, "1 A"])
def test_set_meta_variable_rejects_non_finite_value(cti, login, value):
    """SET_MV_VALUE carries a 32-bit float (§3.4)."""
    with cti.replay([login]) as server, connect(server) as c, pytest.raises(ValueError, match="MV_UD2 value"):
        c.set_meta_variable(2, 2, value)


@pytest.mark.parametrize(("schedule", "match"), [("", "schedule is empty"), ("x" * 197 + ".sdx", "at most 200")])
def test_assign_schedule_rejects_bad_schedule_name(cti, login, schedule, match):
    """ASSIGN_SCHEDULE carries the schedule name in wchar[200] (§3.4)."""
    with cti.replay([login]) as server, connect(server) as c, pytest.raises(ValueError, match=match):
        c.assign_schedule(2, schedule)


def test_assign_schedule_rejects_seventeen_user_variables(cti, login):
    """ASSIGN_SCHEDULE carries MV_UD1..MV_UD16 only (§3.4)."""
    with cti.replay([login]) as server, connect(server) as c, pytest.raises(ValueError, match="at most 16"):
        c.assign_schedule(2, "a.sdx", user_variables=[0.0] * 17)


@pytest.mark.parametrize(("name", "match"), [("", "test_name is empty"), ("t" * 73, "at most 72")])
def test_start_rejects_bad_test_name(cti, login, name, match):
    """START_SCHEDULE carries the test name in wchar[72] (§3.4)."""
    with cti.replay([login]) as server, connect(server) as c, pytest.raises(ValueError, match=match):
        c.start(2, name)


def test_run_schedule_assigns_then_starts(cti, login):
    """Supervisory use of a pre-made schedule: ASSIGN_SCHEDULE, then START_SCHEDULE."""
    transcript = [
        login,
        (cti.assign_request(CH2, "Formation.sdx"), cti.result_feedback(cti.ASSIGN_FB, 1, 0)),
        (cti.start_request("formation cell-7", ["01 00"]), cti.result_feedback(cti.START_FB, 1, 0)),
    ]
    with cti.replay(transcript) as server, connect(server) as c:
        c.run_schedule(2, "Formation.sdx", "formation cell-7")
