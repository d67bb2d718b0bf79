"""The CTI driver against the Arbin emulator through the fault proxy: wire faults are survived within the retry
budget, and reported (never taken for readings) beyond it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from labctl.drivers.arbin.cti import ATTEMPTS, CTIClient, CTIConnectionError, CTIProtocolError, CTITimeoutError
from labctl.sim_instruments.bench import SimBench
from labctl.sim_instruments.cells import SymmetricCell

_spec = importlib.util.spec_from_file_location("fault_proxy", Path(__file__).parents[2] / "fault_proxy.py")
fault_proxy = sys.modules.setdefault("fault_proxy", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(fault_proxy)

CHANNELS_INFO_FB = bytes.fromhex("03 00 BA EE")
SET_MV_FB = bytes.fromhex("01 00 51 BB")
TIMEOUT_S = 0.3  # feedback timeout of these tests, s: above the emulator's reply time, below a "late" reply


@pytest.fixture
def proxy():
    with SimBench(lambda n: SymmetricCell(), channels=2, speed=None, impedance_channel=None) as bench, \
            fault_proxy.FaultProxy(bench.cycler.address) as p:
        yield p


def client(proxy) -> CTIClient:
    return CTIClient("127.0.0.1", proxy.port, timeout_s=TIMEOUT_S)


@pytest.mark.parametrize("kind, options", [
    ("drop", {}), ("cut", {}), ("garble", {}), ("silent", {}), ("delay", {"seconds": 4 * TIMEOUT_S}),
])  # fmt: skip
def test_one_faulty_reply_is_survived(proxy, kind, options):
    with client(proxy) as c:
        proxy.inject(kind, command=CHANNELS_INFO_FB, **options)
        info = c.channel_info(1)
    assert proxy.injected == [kind]
    assert (info.channel, info.status_word) == (1, "Idle")


def test_a_control_command_survives_a_garbled_feedback(proxy):
    with client(proxy) as c:
        c.assign_schedule(1, "labctl_universal.sdx")
        c.start(1, "fault test")
        proxy.inject("garble", command=SET_MV_FB)
        c.set_meta_variable(1, 2, 1e-4)
        assert proxy.injected == ["garble"]
        c.stop(1)


def test_bit_errors_on_one_reply_in_a_hundred_never_end_a_run(proxy):
    with client(proxy) as c:
        for k in range(300):
            if k % 100 == 50:
                proxy.inject("garble", command=CHANNELS_INFO_FB)
            assert c.channel_info(1).channel == 1
    assert proxy.injected == ["garble"] * 3


@pytest.mark.parametrize("kind, error", [
    ("garble", CTIProtocolError), ("silent", CTITimeoutError), ("drop", CTIConnectionError),
])  # fmt: skip
def test_a_fault_on_every_send_is_raised_after_the_budget(proxy, kind, error):
    with client(proxy) as c:
        proxy.inject(kind, command=CHANNELS_INFO_FB, count=ATTEMPTS)
        with pytest.raises(error, match=f"CHANNELS_INFO failed {ATTEMPTS} times"):
            c.channel_info(1)
    assert proxy.injected == [kind] * ATTEMPTS


def test_a_scaled_value_with_a_valid_checksum_passes_the_wire(proxy):
    """The wire cannot tell a wrong value with a valid checksum: the reading plausibility check must."""
    current_at = 24 + 1681  # the first record's f32 current
    with client(proxy) as c:
        c.assign_schedule(1, "labctl_universal.sdx")
        c.start(1, "fault test")
        proxy.inject("scale", command=CHANNELS_INFO_FB, offset=current_at, factor=100.0)
        assert c.channel_info(1).current_A == 0.0  # 100 x 0 A
        c.stop(1)
    assert proxy.injected == ["scale"]
