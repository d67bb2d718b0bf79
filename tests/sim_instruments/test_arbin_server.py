"""The Arbin CTI emulator, byte by byte over a real socket, and the universal schedule it runs.

Frames are built and read with the protocol document's offsets (see conftest.py). Channel indices on the
wire are 0-based: wire 0 is channel 1.
"""

from __future__ import annotations

import struct
from types import SimpleNamespace

import pytest

from labctl.sim_instruments.arbin_schedules import PremadeSchedule

IDLE, CHARGE, DISCHARGE, REST, UNSAFE, FINISHED = 0, 2, 3, 4, 8, 15
UNIVERSAL = "labctl_universal.sdx"


@pytest.fixture
def arbin(make_emulator, connect, clock, linear_cell):
    """Three channels: 1 with a cell whose voltage rises 100 V per Ah, 2 with a flat cell, 3 without a cell."""
    cell = linear_cell(e=0.0, r=0.1, slope=100.0)
    flat = linear_cell(e=0.02)
    emulator = make_emulator({1: cell, 2: flat}, channels=3)
    cti = connect(emulator.address)
    assert cti.login() == 1
    return SimpleNamespace(emulator=emulator, cti=cti, cell=cell, flat=flat, clock=clock)


def running(arbin, channel: int = 0) -> None:
    assert arbin.cti.assign(channel, UNIVERSAL) == 0
    assert arbin.cti.start("test-1", [channel]) == 0


def one(arbin, channel: int = 0) -> dict:
    (record,) = arbin.cti.info(channel)
    return record


# --- login ---


def test_login_feedback_layout(make_emulator, connect):
    emulator = make_emulator(channels=4, serial_number="SN-1234", version=7)
    cti = connect(emulator.address)
    reply = cti.ask(0xEEAB0001, cti.login_args())
    assert len(reply) == 8678
    assert struct.unpack_from("<QIII", reply) == (0x11DDDDDDDDDDDDDD, 8678, 0xEEBA0001, 0)
    assert struct.unpack_from("<H", reply, 8676)[0] == sum(reply[:8676]) & 0xFFFF
    assert struct.unpack_from("<I", reply, 20)[0] == 1  # success
    assert reply[28:44].rstrip(b"\0") == b"SN-1234"
    assert struct.unpack_from("<I", reply, 8656)[0] == 7  # version
    assert struct.unpack_from("<I", reply, 8664)[0] == 4  # channel count


def test_login_checks_credentials_and_says_already_logged_in(make_emulator, connect):
    cti = connect(make_emulator(username="lab", password="s3cret").address)
    assert cti.login("lab", "wrong") == 2
    assert cti.login("admin", "000000") == 2
    assert cti.login("lab", "s3cret") == 1
    assert cti.login("lab", "s3cret") == 3


def test_commands_before_login_are_refused(make_emulator, connect):
    emulator = make_emulator()
    cti = connect(emulator.address)
    assert cti.assign(0, UNIVERSAL) == 0x17
    assert cti.start("t", [0]) == 0x11
    assert cti.stop(0) == 0x11
    assert cti.set_mv(0, 1, 1.0) == 0x10
    assert cti.info(0) == []
    assert cti.login() == 1
    assert one(SimpleNamespace(cti=cti))["schedule"] == ""  # the refused assign changed nothing


# --- channel info ---


def test_channel_info_single_channel(arbin):
    record = one(arbin, 0)
    assert record["channel"] == 0 and record["status"] == IDLE and record["comm_failure"] == 0
    assert record["voltage"] == pytest.approx(0.0 + 0.001)  # the measured voltage, not the noise-free one
    assert record["aux_counts"] == (0,) * 14
    assert one(arbin, 1)["voltage"] == pytest.approx(0.021)
    assert one(arbin, 2)["comm_failure"] == 1  # present, no cell
    assert arbin.cti.info(3) == []  # no such channel


def test_channel_info_all_channels(arbin):
    assert [r["channel"] for r in arbin.cti.info(-1)] == [0, 1, 2]


def test_mits10_mode_answers_every_request_with_all_channels(make_emulator, connect, linear_cell):
    emulator = make_emulator({1: linear_cell(), 2: linear_cell()}, all_channels_reply=True)
    cti = connect(emulator.address)
    cti.login()
    assert [r["channel"] for r in cti.info(1)] == [0, 1]


# --- assign, start, stop, set MV ---


def test_assign_results(arbin):
    cti = arbin.cti
    assert cti.assign(7, UNIVERSAL) == 0x10
    assert cti.assign(0, "") == 0x12
    assert cti.assign(0, "nowhere.sdx") == 0x13
    assert cti.assign(0, UNIVERSAL, barcode="CELL-7") == 0
    assert cti.assign(1, "REST.sdx") == 0  # pre-made catalogue; names match regardless of case
    record = one(arbin, 0)
    assert record["schedule"] == UNIVERSAL and record["barcode"] == "CELL-7"
    assert cti.start("t", [0]) == 0
    assert cti.assign(0, UNIVERSAL) == 0x14
    assert cti.assign(-1, UNIVERSAL, assign_all=True) == 0x14  # one of them runs


def test_start_results(arbin):
    cti = arbin.cti
    assert cti.start("t", [0]) == 0x15  # no schedule yet
    assert cti.assign(0, UNIVERSAL) == 0 and cti.assign(2, UNIVERSAL) == 0
    assert cti.start("", [0]) == 0x23
    assert cti.start("t", []) == 0x1F
    assert cti.start("t", [9]) == 0x10
    assert cti.start("t", [2]) == 0x13  # no cell on channel 3
    assert cti.start("first", [0]) == 0
    assert cti.start("again", [0]) == 0x12
    record = one(arbin, 0)
    assert (record["status"], record["test_name"], record["step_and_cycle"]) == (REST, "first", "Step 1 Cycle 1")
    assert record["test_time"] == 0.0


def test_start_reply_names_the_refused_channel(arbin):
    assert arbin.cti.assign(0, UNIVERSAL) == 0
    reply = arbin.cti.ask(0xBB320004, arbin.cti.start_args("t", [0, 5]))
    assert struct.unpack_from("<IB", reply, 20) == (5, 0x10)
    assert one(arbin, 0)["status"] == IDLE  # nothing started


def test_stop_results(arbin):
    running(arbin, 0)
    arbin.cti.segment(0, 0.5)
    assert arbin.cti.stop(4) == 0x10
    assert arbin.cti.stop(0) == 0
    record = one(arbin, 0)
    assert (record["status"], record["current"]) == (IDLE, 0.0)
    assert arbin.cti.stop(0) == 0  # stopping an idle channel is fine


def test_stop_all(arbin):
    running(arbin, 0)
    running(arbin, 1)
    assert arbin.cti.stop(0, stop_all=True) == 0
    assert [r["status"] for r in arbin.cti.info(-1)] == [IDLE, IDLE, IDLE]


def test_set_mv_results(arbin):
    cti = arbin.cti
    assert cti.set_mv(0, 1, 1.0) == 0x12  # not running
    running(arbin, 0)
    assert cti.result(cti.ask(0xBB150001, cti.set_mv_args(0, 999, 1.0)), 0xBB510001) == 0x11
    assert cti.result(cti.ask(0xBB150001, cti.set_mv_args(0, 53, 1.0, value_type=2)), 0xBB510001) == 0x10
    assert cti.set_mv(5, 2, 0.5) == 0x10
    assert cti.set_mv(0, 2, float("nan")) == 0x10
    assert cti.set_mv(0, 2, 0.5) == 0


def test_assign_user_variables_preset_mv_ud1_to_4(arbin):
    # ArbinCTI's assign call names its four floats MV_UD1..MV_UD4: mode 1 with 0.25 A starts a segment at once
    assert arbin.cti.assign(0, UNIVERSAL, user_variables=(1.0, 0.25, 4.0, -4.0) + (0.0,) * 12) == 0
    assert arbin.cti.start("t", [0]) == 0
    record = one(arbin, 0)
    assert (record["status"], record["current"], record["step_and_cycle"]) == (CHARGE, 0.25, "Step 2 Cycle 1")


# --- malformed traffic ---


def test_bad_checksum_is_dropped_without_reply(arbin, raw_request):
    running(arbin, 0)
    arbin.cti.send(raw_request(0xBB150001, arbin.cti.set_mv_args(0, 52, 1.0), checksum_delta=1))
    record = one(arbin, 0)  # the next reply answers this request, so the bad frame got none
    assert record["status"] == REST and record["step_and_cycle"] == "Step 1 Cycle 1"


def test_bad_token_closes_the_connection(arbin, raw_request):
    arbin.cti.send(raw_request(0xEEAB0003, arbin.cti.info_args(0), token=b"\x00" * 8))
    assert arbin.cti.closed_by_server()


def test_impossible_frame_length_closes_the_connection(arbin):
    arbin.cti.send(bytes.fromhex("DDDDDDDDDDDDDD11") + struct.pack("<I", 10**6))
    assert arbin.cti.closed_by_server()


def test_frames_split_or_joined_in_transit_are_each_answered(arbin, raw_request):
    frame = raw_request(0xEEAB0003, arbin.cti.info_args(0))
    arbin.cti.send(frame[:5])
    arbin.cti.send(frame[5:] + frame)
    assert [arbin.cti.records(arbin.cti.receive())[0]["channel"] for _ in range(2)] == [0, 0]


def test_unknown_command_is_ignored(arbin, raw_request):
    arbin.cti.send(raw_request(0xBB340001, bytes(40)))  # GET_SERIAL: not implemented
    arbin.cti.send(raw_request(0x12345678, bytes(8)))
    assert one(arbin, 0)["channel"] == 0


def test_frame_of_the_wrong_length_is_dropped(arbin, raw_request):
    running(arbin, 0)
    arbin.cti.send(raw_request(0xBB310001, arbin.cti.stop_args(0) + bytes(10)))
    arbin.cti.send(raw_request(0xBB320004, arbin.cti.start_args("t", [0]) + bytes(2)))  # count says 1 channel
    assert one(arbin, 0)["status"] == REST  # still running


# --- the universal schedule ---


def test_segment_ends_exactly_at_its_time_limit(arbin):
    arbin.cell.slope = 0.0
    running(arbin, 0)
    arbin.cti.segment(0, 0.5, time_s=24.5)
    assert arbin.clock.advance(10) == (10.0, False)
    record = one(arbin, 0)
    assert (record["status"], record["step_and_cycle"], record["step_time"]) == (CHARGE, "Step 2 Cycle 1", 10.0)
    assert arbin.clock.advance(10) == (20.0, False)
    assert arbin.clock.advance(10) == (pytest.approx(24.5), True)  # between 1 s substeps
    record = one(arbin, 0)
    assert (record["status"], record["step_and_cycle"], record["exit_condition"]) == (REST, "Step 4 Cycle 1",
                                                                                      "StepTime>=Limit")
    assert record["test_time"] == pytest.approx(24.5) and record["step_time"] == 0.0
    assert record["current"] == 0.0
    assert record["charge_ah"] == pytest.approx(0.5 * 24.5 / 3600, rel=1e-6)


def test_segment_ends_exactly_at_its_charge_limit(arbin):
    arbin.cell.slope = 0.0
    running(arbin, 0)
    arbin.cti.segment(0, -0.5, charge_Ah=2**-10)
    assert one(arbin, 0)["status"] == DISCHARGE
    assert arbin.clock.advance(10) == (pytest.approx(2**-10 * 3600 / 0.5), True)  # 7.03125 s
    record = one(arbin, 0)
    assert (record["status"], record["exit_condition"]) == (REST, "Charge>=Limit")
    assert record["discharge_ah"] == pytest.approx(2**-10, rel=1e-6) and record["charge_ah"] == 0.0


def test_segment_ends_at_the_upper_voltage_limit_checked_every_substep(arbin):
    running(arbin, 0)
    arbin.cti.segment(0, 0.5, v_high=0.25)  # V = 0.05 + 100 V/Ah * q: crosses 0.25 V at 14.4 s
    assert arbin.clock.advance(60) == (15.0, True)  # found after the 1 s substep that crossed it
    record = one(arbin, 0)
    assert (record["status"], record["exit_condition"]) == (REST, "Voltage>=Limit")
    assert record["test_time"] == 15.0


def test_segment_ends_at_the_lower_voltage_limit(arbin):
    running(arbin, 0)
    arbin.cti.segment(0, -0.5, v_low=-0.25)
    assert arbin.clock.advance(60) == (15.0, True)
    assert one(arbin, 0)["exit_condition"] == "Voltage<=Limit"


def test_voltage_limits_use_the_noise_free_voltage(arbin):
    arbin.cell.slope = 0.0
    running(arbin, 0)
    arbin.cti.segment(0, 0.5, v_high=0.0505)  # true 0.0500 V; the measured reading is 0.0510 V
    assert arbin.clock.advance(10) == (10.0, False)
    record = one(arbin, 0)
    assert record["status"] == CHARGE and record["voltage"] == pytest.approx(0.051)


def test_a_limit_already_met_ends_the_step_without_time_passing(arbin):
    running(arbin, 0)
    arbin.cti.segment(0, 0.5, v_high=0.04)  # 0.5 A * 0.1 ohm is already 0.05 V
    record = one(arbin, 0)
    assert (record["status"], record["step_and_cycle"], record["exit_condition"]) == (REST, "Step 4 Cycle 1",
                                                                                      "Voltage>=Limit")
    assert record["test_time"] == 0.0 and arbin.clock.now == 0.0


def test_mv_ud1_0_aborts_the_segment(arbin):
    running(arbin, 0)
    arbin.cti.segment(0, 0.5)
    arbin.clock.advance(5)
    assert arbin.cti.set_mv(0, 1, 0.0) == 0
    record = one(arbin, 0)
    assert (record["status"], record["step_and_cycle"], record["exit_condition"], record["current"]) == (
        REST, "Step 1 Cycle 1", "MV_UD1", 0.0)
    assert arbin.clock.advance(10) == (15.0, False)
    assert one(arbin, 0)["charge_ah"] == pytest.approx(0.5 * 5 / 3600, rel=1e-6)


def test_mv_ud1_9_ends_the_test_and_stop_makes_it_idle(arbin):
    running(arbin, 0)
    arbin.cti.segment(0, 0.5, time_s=2.0)
    assert arbin.clock.advance(10) == (2.0, True)
    assert arbin.cti.set_mv(0, 1, 9.0) == 0
    record = one(arbin, 0)
    assert (record["status"], record["current"]) == (FINISHED, 0.0)
    assert arbin.cti.set_mv(0, 1, 0.0) == 0x12  # no longer running
    arbin.clock.advance(10)
    assert one(arbin, 0)["test_time"] == pytest.approx(2.0)  # test time stopped with the test
    assert arbin.cti.stop(0) == 0 and one(arbin, 0)["status"] == IDLE
    assert arbin.cti.start("next", [0]) == 0  # the schedule stays assigned


def test_voltage_beyond_5_v_makes_the_channel_unsafe(arbin):
    running(arbin, 0)
    arbin.cti.segment(0, 0.5, v_high=10.0)  # 100 V/Ah: 5 V after about 356 s
    t, event = arbin.clock.advance(1000)
    assert event and t == pytest.approx(357.0)
    record = one(arbin, 0)
    assert (record["status"], record["current"]) == (UNSAFE, 0.0)
    assert arbin.cti.start("again", [0]) == 0x12  # unsafe until stopped
    assert arbin.cti.stop(0) == 0 and arbin.cti.start("again", [0]) == 0


def test_channels_run_independently_and_idle_cells_rest(arbin):
    running(arbin, 0)
    arbin.cti.segment(0, 0.5, time_s=100.0)
    assert arbin.clock.advance(100) == (100.0, True)
    assert one(arbin, 1)["status"] == IDLE
    assert arbin.flat.rest_s == pytest.approx(100.0) and arbin.flat.q_Ah == 0.0


def test_premade_schedule_rests_then_passes_current_then_finishes(make_emulator, connect, clock, linear_cell):
    catalogue = {"Pulse.sdx": PremadeSchedule(rest_s=10.0, current_A=0.25, current_s=20.0)}
    emulator = make_emulator({1: linear_cell()}, catalogue=catalogue)
    cti = connect(emulator.address)
    cti.login()
    assert cti.assign(0, "labctl_universal.sdx") == 0 and cti.assign(0, "Rest.sdx") == 0x13  # not in this catalogue
    assert cti.assign(0, "Pulse.sdx") == 0 and cti.start("pulse", [0]) == 0
    assert clock.advance(100) == (10.0, True)
    assert cti.info(0)[0]["status"] == CHARGE
    assert clock.advance(100) == (30.0, True)
    record = cti.info(0)[0]
    assert record["status"] == FINISHED and record["charge_ah"] == pytest.approx(0.25 * 20 / 3600, rel=1e-6)


def test_cells_outside_the_channel_range_are_refused(make_emulator, linear_cell):
    with pytest.raises(ValueError, match="channels 1..2"):
        make_emulator({3: linear_cell()}, channels=2)
