"""The EClib bridge over real sockets on 127.0.0.1: the hello and its token, garbage, errors crossing, the types
the client rebuilds, channels stopped when a client drops, and the command that starts it.

Most tests serve :class:`Recorder`, an EClib-like double that records its calls; the end-to-end tests serve
``EClib(FakeEClib(...))``, the ctypes-level fake DLL on an emulated SP-200 channel.
"""

from __future__ import annotations

import itertools
import json
import logging
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import typer
from typer.testing import CliRunner

from labctl.drivers.biologic import bridge, techniques
from labctl.drivers.biologic.bridge import MAX_LINE, BridgeError, EClibBridge, serve
from labctl.drivers.biologic.data import DataBlock, OCVRow, parse
from labctl.drivers.biologic.eclib import (
    EClib,
    EClibError,
    State,
    TChannelInfos,
    TCurrentValues,
    TDeviceInfos,
    THardwareConf,
)
from labctl.drivers.biologic.techniques import Exit, IRange, Limit, Param, ParamType, Step, Variable
from labctl.sim_instruments import fake_eclib

TOKEN = "s3cret-token"
HOST = "127.0.0.1"


class Recorder:
    """EClib's methods on a pretend SP-200 with channels 0 and 1; every call is recorded as (name, *args)."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []
        self.running: set[tuple[int, int]] = set()
        self.next_id = 1
        self.slow_s = 0.0  # test_connection sleeps this long

    def _record(self, *call: object) -> None:
        self.calls.append(call)

    @staticmethod
    def _channel(channel: int) -> int:
        if not 0 <= channel < 16:
            raise ValueError(f"channel {channel!r}: EClib channels are 0-based, 0..15 (physical channel 1 is 0)")
        if channel > 1:
            raise EClibError.from_code("BL_GetChannelInfos", -3)
        return channel

    def lib_version(self) -> str:
        return "6.04"

    def error_message(self, code: int) -> str:
        return f"text of {code}"

    def connect(self, address: str, timeout_s: int = 5) -> tuple[int, TDeviceInfos]:
        self._record("connect", address, timeout_s)
        device_id, self.next_id = self.next_id, self.next_id + 1
        return device_id, TDeviceInfos(DeviceCode=21, NumberOfChannels=2, FirmwareVersion=1140, FirmwareDate_yyyy=2021)

    def disconnect(self, device_id: int) -> None:
        self._record("disconnect", device_id)

    def test_connection(self, device_id: int) -> None:
        time.sleep(self.slow_s)
        self._record("test_connection", device_id)

    def load_firmware(self, device_id, channels, kernel="kernel4.bin", fpga="Vmp_iv_0395_aa.xlx", *, force=True,
                      show_gauge=False) -> None:
        self._record("load_firmware", device_id, list(channels), kernel, fpga, force, show_gauge)

    def channels_plugged(self, device_id: int) -> list[int]:
        return [0, 1]

    def is_channel_plugged(self, device_id: int, channel: int) -> bool:
        return channel in (0, 1)

    def channel_infos(self, device_id: int, channel: int) -> TChannelInfos:
        return TChannelInfos(Channel=self._channel(channel), FirmwareCode=5, MemSize=4 << 20, FloatFormat=1)

    def message(self, device_id: int, channel: int) -> str:
        return f"message of channel {self._channel(channel)}"

    def hard_conf(self, device_id: int, channel: int) -> THardwareConf:
        return THardwareConf(1, 0)

    def set_hard_conf(self, device_id: int, channel: int, conn: int, ground: int) -> None:
        self._record("set_hard_conf", device_id, channel, conn, ground)

    def opt_err(self, device_id: int, channel: int) -> tuple[int, int]:
        return 0, 3

    def load_technique(self, device_id, channel, ecc_path, params, *, first=True, last=True, display=False) -> None:
        self._channel(channel)
        if ecc_path.endswith("ocv.ecc"):
            raise EClibError.from_code("BL_LoadTechnique", -401)
        self._record("load_technique", device_id, channel, ecc_path, list(params), first, last, display)

    def update_parameters(self, device_id, channel, technique_index, params, ecc_path) -> None:
        self._record("update_parameters", device_id, channel, technique_index, list(params), ecc_path)

    def start_channel(self, device_id: int, channel: int) -> None:
        if (device_id, self._channel(channel)) in self.running:
            raise EClibError.from_code("BL_StartChannel", -13)
        self._record("start_channel", device_id, channel)
        self.running.add((device_id, channel))

    def stop_channel(self, device_id: int, channel: int) -> None:
        self._record("stop_channel", device_id, channel)
        self.running.discard((device_id, channel))

    def start_channels(self, device_id: int, channels) -> None:
        for ch in channels:
            self.start_channel(device_id, ch)

    def stop_channels(self, device_id: int, channels) -> None:
        for ch in channels:
            self.stop_channel(device_id, ch)

    def current_values(self, device_id: int, channel: int) -> TCurrentValues:
        state = State.RUN if (device_id, channel) in self.running else State.STOP
        return TCurrentValues(State=state, TimeBase=2.4e-5, Ewe=3.25, I=-1e-4, ElapsedTime=12.5, MemFilled=24)

    def get_data(self, device_id: int, channel: int) -> tuple[DataBlock, TCurrentValues]:
        words = (0, 41667, 0x40500000, 0, 83333, 0x40400000)  # two OCV rows: 1 s at 3.25 V, 2 s at 3.0 V
        block = DataBlock(technique_id=100, process_index=0, rows=2, cols=3, words=words, start_time_s=0.0,
                          time_base_s=2.4e-5, technique_index=1, loop=2)
        return block, self.current_values(device_id, channel)

    def convert_numeric_into_single(self, word: int) -> float:
        return struct.unpack("<f", struct.pack("<I", word))[0]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def server(recorder) -> Iterator[bridge.BridgeServer]:
    with serve(recorder, HOST, 0, TOKEN) as srv:
        yield srv


@pytest.fixture
def client(server) -> Iterator[EClibBridge]:
    with EClibBridge(*server.address, TOKEN, timeout_s=5) as c:
        yield c


def until(condition: Callable[[], object], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the bridge"
        time.sleep(0.01)


class Raw:
    """A hand-driven connection: lines in, JSON replies out."""

    def __init__(self, address: tuple[str, int], hello: dict | None = None) -> None:
        self.sock = socket.create_connection(address, timeout=5)
        self.file = self.sock.makefile("rb")
        if hello is not None:
            self.send(hello)

    def send(self, message: object) -> None:
        self.sock.sendall(json.dumps(message).encode() + b"\n")

    def line(self, data: bytes) -> dict:
        self.sock.sendall(data)
        return self.reply()

    def reply(self) -> dict:
        return json.loads(self.file.readline())

    def closed(self) -> bool:
        return self.file.readline() == b""

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def greeted(address: tuple[str, int]) -> Raw:
    raw = Raw(address, {"hello": "labctl-eclib-bridge", "version": 1, "token": TOKEN})
    assert raw.reply() == {"ok": True, "hello": "labctl-eclib-bridge", "version": 1}
    return raw


def still_serves(server: bridge.BridgeServer) -> None:
    with EClibBridge(*server.address, TOKEN, timeout_s=5) as other:
        assert other.lib_version() == "6.04"


def fields(structure) -> dict[str, object]:
    return {name: getattr(structure, name) for name, *_ in structure._fields_}


# --- types cross both ways ---


def test_every_call_returns_what_the_library_returns(client, recorder):
    same = [
        ("lib_version", ()), ("error_message", (-401,)), ("channels_plugged", (1,)), ("is_channel_plugged", (1, 1)),
        ("is_channel_plugged", (1, 7)), ("message", (1, 0)), ("opt_err", (1, 0)),
        ("convert_numeric_into_single", (0x3F800000,)), ("convert_numeric_into_single", (0x33D6BF95,)),
    ]  # fmt: skip
    for name, args in same:
        result = getattr(client, name)(*args)
        assert result == getattr(recorder, name)(*args) and type(result) is type(getattr(recorder, name)(*args))
    device_id, infos = client.connect("USB0")
    assert (device_id, type(infos), fields(infos)) == (1, TDeviceInfos, fields(recorder.connect("USB0")[1]))
    for name, cls in (("channel_infos", TChannelInfos), ("hard_conf", THardwareConf),
                      ("current_values", TCurrentValues)):
        result = getattr(client, name)(1, 0)
        assert type(result) is cls and fields(result) == fields(getattr(recorder, name)(1, 0))
    block, values = client.get_data(1, 0)
    assert block == recorder.get_data(1, 0)[0] and isinstance(block.words, tuple)
    assert type(values) is TCurrentValues and fields(values) == fields(recorder.current_values(1, 0))
    assert [row.ewe_V for row in parse(block)] == [3.25, 3.0]


def test_none_returning_calls_reach_the_library_with_their_arguments(client, recorder):
    client.connect("192.168.1.2", timeout_s=7)
    client.load_firmware(1, iter([0, 1]), kernel=None, force=False)
    client.set_hard_conf(1, 0, 1, 0)
    client.test_connection(1)
    client.disconnect(1)
    assert recorder.calls == [
        ("connect", "192.168.1.2", 7), ("load_firmware", 1, [0, 1], None, "Vmp_iv_0395_aa.xlx", False, False),
        ("set_hard_conf", 1, 0, 1, 0), ("test_connection", 1), ("disconnect", 1),
    ]  # fmt: skip


def test_param_lists_arrive_as_the_same_params(client, recorder, tmp_path):
    steps = [Step(1e-4, 3600.0, (Limit(Variable.EWE, techniques.Comparison.ABOVE, 4.2),), Exit.NEXT_STEP),
             Step(-1e-4, 3600.0)]
    cycling = techniques.cplimit(steps, i_range=IRange.I_1mA, record_dt_s=10.0, n_cycles=3)
    ocv = techniques.ocv(10, record_dt_s=0.5)  # 10: an int for a SINGLE, as validate allows
    client.load_technique(1, 0, tmp_path / "cplimit4.ecc", cycling, last=False)
    client.load_technique(1, 0, "ocv4.ecc", ocv, first=False, display=True)
    client.update_parameters(1, 0, 1, ocv, "ocv4.ecc")
    (_, *first), (_, *second), (_, *update) = recorder.calls
    assert first == [1, 0, str(tmp_path / "cplimit4.ecc"), cycling, True, False, False]
    assert second == [1, 0, "ocv4.ecc", ocv, False, True, True]
    assert update == [1, 0, 1, ocv, "ocv4.ecc"]
    for sent, arrived in zip(cycling + ocv, first[3] + second[3], strict=True):  # bool, int and float kept apart
        kind = type(sent.value) if type(sent.value) in (bool, float) else int  # an IntEnum arrives as its int
        assert type(arrived.type) is ParamType and type(arrived.value) is kind
    assert type(second[3][0].value) is int


# --- errors cross as themselves ---


def test_eclib_errors_cross_with_call_code_and_meaning(client, recorder):
    with pytest.raises(EClibError) as crossed:
        client.channel_infos(1, 5)
    with pytest.raises(EClibError) as local:
        recorder.channel_infos(1, 5)
    assert (crossed.value.call, crossed.value.code, crossed.value.meaning, str(crossed.value)) == \
           (local.value.call, local.value.code, local.value.meaning, str(local.value))
    with pytest.raises(EClibError, match=r"-401: .*\*4\.ecc"):
        client.load_technique(1, 0, "ocv.ecc", [])
    assert client.lib_version() == "6.04"  # the connection goes on


def test_value_errors_cross_as_value_errors(client):
    with pytest.raises(ValueError, match=r"channel 16: EClib channels are 0-based, 0\.\.15"):
        client.message(1, 16)
    with pytest.raises(ValueError, match="argument channel must be an int, not '0'"):
        client.message(1, "0")
    with pytest.raises(ValueError, match="'Rest_time_T' is SINGLE; its value 'ten' is not"):
        client.load_technique(1, 0, "ocv4.ecc", [Param("Rest_time_T", ParamType.SINGLE, "ten")])
    with pytest.raises(ValueError, match="cannot be sent to the bridge"):
        client.error_message(object())
    assert client.lib_version() == "6.04"


# --- the hello ---


@pytest.mark.parametrize(("hello", "says"), [
    ({"hello": "labctl-eclib-bridge", "version": 1, "token": "wrong"}, "wrong token"),
    ({"hello": "labctl-eclib-bridge", "version": 1}, "no token given"),
    ({"hello": "labctl-eclib-bridge", "version": 1, "token": ""}, "no token given"),
    ({"hello": "labctl-eclib-bridge", "version": 1, "token": 12345}, "no token given"),
    ({"hello": "labctl-eclib-bridge", "version": 2, "token": TOKEN}, "protocol version 2"),
    ({"call": "lib_version", "args": {}}, "expected the hello line"),
    ("GET / HTTP/1.1", "expected the hello line"),
])  # fmt: skip
def test_a_bad_hello_is_refused_and_closed_and_the_server_goes_on(server, recorder, hello, says):
    raw = Raw(server.address, hello)
    reply = raw.reply()
    assert reply["error"]["type"] == "auth" and says in reply["error"]["message"]
    assert raw.closed()
    raw.close()
    still_serves(server)
    assert recorder.calls == []


def test_the_client_says_where_and_what_when_its_token_is_refused(server):
    host, port = server.address
    for token in ("wrong", ""):
        with pytest.raises(BridgeError, match=rf"bridge at 127\.0\.0\.1:{port} refused this client: .*token.*"
                                              r"--token or \$LABCTL_BRIDGE_TOKEN"):
            EClibBridge(host, port, token)
    still_serves(server)


def test_no_hello_in_time_closes_the_connection(server, monkeypatch):
    monkeypatch.setattr(bridge, "HELLO_TIMEOUT_S", 0.2)
    raw = Raw(server.address)
    assert raw.closed()
    raw.close()
    still_serves(server)


# --- garbage after the hello ---


@pytest.mark.parametrize(("line", "kind", "says"), [
    (b"not json\n", "protocol", "not JSON"),
    (b"\xff\xfe\n", "protocol", "not JSON"),
    (b"[" * 100_000 + b"\n", "protocol", "not JSON"),
    (b'"lib_version"\n', "protocol", "a request is an object"),
    (b'{"call": "lib_version", "args": {}, "id": 1}\n', "protocol", "a request is an object"),
    (b'{"call": "__init__", "args": {}}\n', "protocol", "unknown call '__init__'"),
    (b'{"call": "_call", "args": {}}\n', "protocol", "unknown call '_call'"),
    (b'{"call": "define_int", "args": {}}\n', "protocol", "unknown call 'define_int'"),
    (b'{"call": ["lib_version"]}\n', "protocol", "unknown call"),
    (b'{"call": "lib_version", "args": [1]}\n', "protocol", "args must be an object"),
    (b'{"call": "message", "args": {"device_id": 1}}\n', "protocol", "message takes device_id, channel ('?': "
                                                                     "optional); missing channel"),
    (b'{"call": "lib_version", "args": {"x": 1}}\n', "protocol", "unknown 'x'"),
    (b'{"call": "message", "args": {"device_id": 1, "channel": true}}\n', "ValueError", "channel must be an int"),
    (b'{"call": "message", "args": {"device_id": 1.5, "channel": 0}}\n', "ValueError", "device_id must be an int"),
    (b'{"call": "connect", "args": {"address": 5}}\n', "ValueError", "address must be a string"),
    (b'{"call": "start_channels", "args": {"device_id": 1, "channels": "01"}}\n', "ValueError", "a list of ints"),
    (b'{"call": "load_technique", "args": {"device_id": 1, "channel": 0, "ecc_path": "ocv4.ecc", "params": '
     b'[["Rest_time_T", 7, 1.0, 0]]}}\n', "ValueError", "type one of [0, 1, 2]"),
    (b'{"call": "load_technique", "args": {"device_id": 1, "channel": 0, "ecc_path": "ocv4.ecc", "params": '
     b'[["Rest_time_T", 2, 1.0]]}}\n', "ValueError", "a parameter is [label, type, value, index]"),
    (b'{"call": "load_technique", "args": {"device_id": 1, "channel": 0, "ecc_path": "ocv4.ecc", "params": '
     b'[["vs_initial", 1, 1, 0]]}}\n', "ValueError", "'vs_initial' is BOOLEAN; its value 1 is not"),
    (b'{"call": "convert_numeric_into_single", "args": {"word": ' + b"9" * 5000 + b"}}\n", "protocol", "not JSON"),
])  # fmt: skip
def test_garbage_gets_an_error_naming_it_and_the_connection_goes_on(server, recorder, line, kind, says):
    raw = greeted(server.address)
    error = raw.line(line)["error"]
    assert error["type"] == kind and says in error["message"]
    assert raw.line(b'{"call": "lib_version"}\n') == {"result": "6.04"}  # args may be left out when none
    raw.close()
    still_serves(server)
    assert [c for c in recorder.calls if c[0] != "disconnect"] == []


def test_an_oversized_line_is_refused_and_closes_the_connection(server, recorder):
    raw = greeted(server.address)
    raw.send({"call": "start_channel", "args": {"device_id": 1, "channel": 0}})
    assert raw.reply() == {"result": None}
    error = raw.line(b"x" * (MAX_LINE + 1))["error"]  # no newline: nothing could end the line
    assert error["type"] == "protocol" and f"line over {MAX_LINE} bytes" in error["message"]
    assert raw.closed()
    raw.close()
    until(lambda: ("stop_channel", 1, 0) in recorder.calls)
    still_serves(server)


def test_a_line_of_max_line_bytes_is_read(server):
    raw = greeted(server.address)
    request = b'{"call": "lib_version", "args": {}}'
    assert raw.line(request + b" " * (MAX_LINE - len(request)) + b"\n") == {"result": "6.04"}
    raw.close()


# --- a client that goes away has its channels stopped ---


def test_a_dropped_client_has_its_started_channels_stopped_and_its_device_disconnected(server, recorder, caplog):
    caplog.set_level(logging.INFO, logger="labctl.drivers.biologic.bridge")
    client = EClibBridge(*server.address, TOKEN)
    device_id, _ = client.connect("USB0")
    client.load_technique(device_id, 0, "ocv4.ecc", techniques.ocv(3600.0, record_dt_s=1.0))
    client.start_channel(device_id, 0)
    client.start_channels(device_id, [1])
    client.stop_channel(device_id, 1)  # stopped by the client: not stopped again
    client.close()
    until(lambda: ("disconnect", device_id) in recorder.calls)
    assert recorder.calls[-2:] == [("stop_channel", device_id, 0), ("disconnect", device_id)]
    assert recorder.calls.count(("stop_channel", device_id, 1)) == 1
    assert f"stopped channel 0 of device {device_id}: client 127.0.0.1:" in caplog.text
    assert "closed the connection" in caplog.text
    still_serves(server)


def test_a_reset_connection_stops_the_channels_too(server, recorder):
    raw = greeted(server.address)
    raw.send({"call": "start_channels", "args": {"device_id": 4, "channels": [0, 1]}})
    assert raw.reply() == {"result": None}
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close sends RST
    raw.close()
    until(lambda: {("stop_channel", 4, 0), ("stop_channel", 4, 1)} <= set(recorder.calls))
    still_serves(server)


def test_a_client_cut_off_mid_line_has_its_channels_stopped(server, recorder):
    raw = greeted(server.address)
    raw.send({"call": "start_channel", "args": {"device_id": 2, "channel": 1}})
    raw.reply()
    raw.sock.sendall(b'{"call": "stop_chan')
    raw.close()
    until(lambda: ("stop_channel", 2, 1) in recorder.calls)


def test_a_silent_client_is_taken_for_dead(recorder, caplog):
    caplog.set_level(logging.INFO, logger="labctl.drivers.biologic.bridge")
    with serve(recorder, HOST, 0, TOKEN, idle_timeout_s=0.5) as server:
        client = EClibBridge(*server.address, TOKEN)
        client.start_channel(1, 0)
        until(lambda: ("stop_channel", 1, 0) in recorder.calls)
        assert "sent no request for 0.5 s" in caplog.text
        with pytest.raises(BridgeError, match=rf"127\.0\.0\.1:{server.address[1]} .*idle-timeout"):
            client.lib_version()
        with pytest.raises(BridgeError, match="is closed; make a new one"):
            client.lib_version()


def test_connections_probe_for_a_vanished_host(server, client):
    (conn,) = server._conns
    assert conn.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
    if hasattr(socket, "TCP_KEEPIDLE"):
        assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == bridge.KEEPALIVE_IDLE_S


def test_no_idle_timeout_keeps_a_silent_client(recorder):
    with serve(recorder, HOST, 0, TOKEN, idle_timeout_s=0) as server, EClibBridge(*server.address, TOKEN) as client:
        client.start_channel(1, 0)
        time.sleep(0.3)
        assert client.lib_version() == "6.04" and ("stop_channel", 1, 0) not in recorder.calls


def test_clients_past_the_maximum_are_turned_away(server, monkeypatch):
    monkeypatch.setattr(bridge, "MAX_CLIENTS", 1)
    with EClibBridge(*server.address, TOKEN):
        with pytest.raises(BridgeError, match="refused this client: the bridge serves at most 1 clients at once"):
            EClibBridge(*server.address, TOKEN)
    until(lambda: not server._conns)
    still_serves(server)


def test_only_the_dropped_clients_channels_and_devices_are_let_go(server, recorder):
    a, b = EClibBridge(*server.address, TOKEN), EClibBridge(*server.address, TOKEN)
    recorder.next_id = 1
    assert a.connect("USB0")[0] == 1
    recorder.next_id = 1  # the DLL handed both the same ID
    assert b.connect("USB0")[0] == 1
    a.start_channel(1, 0)
    b.start_channel(1, 1)
    a.close()
    until(lambda: ("stop_channel", 1, 0) in recorder.calls)
    time.sleep(0.1)
    assert ("stop_channel", 1, 1) not in recorder.calls and ("disconnect", 1) not in recorder.calls  # b holds it
    assert b.current_values(1, 1).State == State.RUN
    b.close()
    until(lambda: ("disconnect", 1) in recorder.calls)
    assert recorder.calls.count(("stop_channel", 1, 1)) == 1


def test_a_channel_restarted_by_another_client_is_the_others(server, recorder):
    a, b = EClibBridge(*server.address, TOKEN), EClibBridge(*server.address, TOKEN)
    a.start_channel(1, 0)
    b.stop_channel(1, 0)
    b.start_channel(1, 0)
    with pytest.raises(EClibError, match="-13"):
        a.start_channel(1, 0)  # running, b's: a failing to start it does not claim it
    a.close()
    time.sleep(0.2)
    assert recorder.calls.count(("stop_channel", 1, 0)) == 1  # b's own stop
    b.close()
    until(lambda: recorder.calls.count(("stop_channel", 1, 0)) == 2)


def test_closing_the_server_stops_every_started_channel(recorder, caplog):
    caplog.set_level(logging.INFO, logger="labctl.drivers.biologic.bridge")
    server = serve(recorder, HOST, 0, TOKEN)
    client = EClibBridge(*server.address, TOKEN)
    client.connect("USB0")
    client.start_channel(1, 0)
    server.close()
    assert recorder.calls[-2:] == [("stop_channel", 1, 0), ("disconnect", 1)]
    assert "the server shut down" in caplog.text
    with pytest.raises(BridgeError, match="127.0.0.1"):
        client.lib_version()
    with pytest.raises(BridgeError, match=rf"cannot reach the EClib bridge at 127\.0\.0\.1:{server.address[1]}"):
        EClibBridge(*server.address, TOKEN)


# --- the client ---


def test_an_unreachable_bridge_is_named_with_what_to_check(free_port):
    with pytest.raises(BridgeError) as error:
        EClibBridge(HOST, free_port, TOKEN, timeout_s=2)
    assert isinstance(error.value, ConnectionError | OSError)
    assert f"cannot reach the EClib bridge at 127.0.0.1:{free_port}" in str(error.value)
    for check in ("Windows PC", "--host", "firewall"):
        assert check in str(error.value)


def test_a_late_reply_times_out_closes_the_client_and_stops_its_channels(server, recorder):
    client = EClibBridge(*server.address, TOKEN, timeout_s=0.3)
    client.start_channel(1, 0)
    recorder.slow_s = 1.0
    with pytest.raises(BridgeError, match=rf"no reply from the EClib bridge at 127\.0\.0\.1:{server.address[1]} "
                                          r"to test_connection within 0\.3 s"):
        client.test_connection(1)
    until(lambda: ("stop_channel", 1, 0) in recorder.calls)
    with pytest.raises(BridgeError, match="closed"):
        client.lib_version()


def test_threads_share_one_client(client, recorder):
    failures: list[BaseException] = []

    def work(channel: int) -> None:
        try:
            for _ in range(40):
                assert client.message(1, channel) == f"message of channel {channel}"
                assert client.current_values(1, channel).Ewe == 3.25
        except BaseException as e:  # reported below
            failures.append(e)

    threads = [threading.Thread(target=work, args=(ch % 2,)) for ch in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_a_malformed_result_is_a_bridge_error(client, server, monkeypatch):
    monkeypatch.setattr(bridge, "_to_wire", lambda value: {"not": "infos"})
    with pytest.raises(BridgeError, match="answered channel_infos with a malformed result"):
        client.channel_infos(1, 0)


def test_an_unexpected_library_exception_is_reported_not_fatal(client, recorder, monkeypatch):
    monkeypatch.setattr(recorder, "hard_conf", lambda device_id, channel: 1 / 0, raising=True)
    with pytest.raises(BridgeError, match="could not run hard_conf: hard_conf raised ZeroDivisionError"):
        client.hard_conf(1, 0)
    assert client.lib_version() == "6.04"


# --- what the bridge imports ---


def test_the_bridge_module_imports_nothing_heavy():
    code = "import sys, labctl.drivers.biologic.bridge; print(' '.join(sorted(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    heavy = ("typer", "click", "rich", "pydantic", "pandas", "numpy", "scipy", "PyQt6", "pyqtgraph", "pymeasure",
             "pyvisa", "serial", "labctl.store", "labctl.cli", "labctl.sim_instruments", "labctl.engine")
    assert "labctl.drivers.biologic.bridge" in loaded
    assert [name for name in loaded if any(name == h or name.startswith(h + ".") for h in heavy)] == []
    assert {name for name in loaded if name.startswith("labctl")} == {
        "labctl", "labctl.drivers", "labctl.drivers.biologic", "labctl.drivers.biologic.bridge",
        "labctl.drivers.biologic.data", "labctl.drivers.biologic.eclib", "labctl.drivers.biologic.techniques"}


# --- main and the command ---


@pytest.fixture
def no_env_token(monkeypatch):
    monkeypatch.delenv(bridge.TOKEN_ENV, raising=False)


def test_main_refuses_to_start_without_a_token(no_env_token, capsys):
    assert bridge.main(["--eclib", "C:/EC-Lab Development Package/lib"]) == 2
    error = capsys.readouterr().err
    assert "no token" in error and "--token" in error and "LABCTL_BRIDGE_TOKEN" in error


def test_main_refuses_a_token_shorter_than_the_bench_files_accept(no_env_token, capsys):
    assert bridge.main(["--eclib", "lib", "--token", "1234567"]) == 2
    assert "token too short" in capsys.readouterr().err
    with pytest.raises(ValueError, match="at least 8 characters"):
        serve(object(), HOST, 0, "1234567")


@pytest.mark.skipif(sys.platform == "win32", reason="EClib loads on Windows")
def test_main_refuses_eclib_off_windows(monkeypatch, capsys):
    monkeypatch.setenv(bridge.TOKEN_ENV, TOKEN)
    for argv in ([], ["--eclib", "/opt/eclib"]):
        assert bridge.main(argv) == 1
        assert "EClib (EClib64.dll) is Windows only: run the bridge on the Windows PC" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--port", "65536"], ["--port", "-1"], ["--idle-timeout", "-1"],
                                  ["--idle-timeout", "nan"], ["--port", "http"]])
def test_main_refuses_bad_options_before_loading_anything(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        bridge.main([*argv, "--token", TOKEN])
    assert exit_.value.code == 2 and f"argument {argv[0]}" in capsys.readouterr().err


def test_main_serves_until_ctrl_c_and_stops_the_channels(monkeypatch, recorder, no_env_token, caplog):
    caplog.set_level(logging.INFO, logger="labctl.drivers.biologic.bridge")
    servers: list[bridge.BridgeServer] = []
    ctrl_c = threading.Event()

    def keep(*args, **kwargs):
        servers.append(serve(*args, **kwargs))
        return servers[-1]

    def wait_for_ctrl_c(self, timeout_s=None):
        ctrl_c.wait(5)
        raise KeyboardInterrupt

    monkeypatch.setattr(bridge, "load_eclib", lambda directory: recorder)
    monkeypatch.setattr(bridge, "serve", keep)
    monkeypatch.setattr(bridge.BridgeServer, "wait", wait_for_ctrl_c)
    monkeypatch.setenv(bridge.TOKEN_ENV, "from-the-environment")
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(bridge.main(["--port", "0", "--eclib", "lib"])))
    thread.start()
    until(lambda: servers)
    client = EClibBridge(*servers[0].address, "from-the-environment")
    client.start_channel(1, 0)
    ctrl_c.set()
    thread.join(timeout=5)
    assert codes == [0] and ("stop_channel", 1, 0) in recorder.calls
    assert f"serving on 127.0.0.1:{servers[0].address[1]}" in caplog.text and "Ctrl-C" in caplog.text
    client.close()


def cli_app() -> typer.Typer:
    """labctl's app once biologic-bridge is registered there, else a stand-in with the same command."""
    from labctl.cli.biologic import biologic_bridge
    from labctl.cli.main import app

    if any(c.name == "biologic-bridge" for c in app.registered_commands):
        return app
    stand_in = typer.Typer()
    stand_in.callback()(lambda: None)
    stand_in.command("biologic-bridge")(biologic_bridge)
    return stand_in


def test_the_command_refuses_to_start_without_a_token(no_env_token):
    result = CliRunner().invoke(cli_app(), ["biologic-bridge", "--eclib", "lib"])
    assert result.exit_code == 2
    assert "no token" in result.output and "--token" in result.output


@pytest.mark.skipif(sys.platform == "win32", reason="EClib loads on Windows")
def test_the_command_refuses_clearly_off_windows(no_env_token):
    result = CliRunner().invoke(cli_app(), ["biologic-bridge", "--token", TOKEN])
    assert result.exit_code == 1
    assert "Windows only: run the bridge on the Windows PC" in result.output


def test_the_command_passes_its_options_on(monkeypatch, no_env_token):
    seen: list[list[str]] = []
    monkeypatch.setattr("labctl.cli.biologic.main", lambda argv: seen.append(argv) or 0)
    result = CliRunner().invoke(cli_app(), ["biologic-bridge", "--eclib", "lib", "--host", "0.0.0.0", "--port",
                                            "5800", "--token", TOKEN, "--idle-timeout", "30"])
    assert result.exit_code == 0, result.output
    assert seen == [["--host", "0.0.0.0", "--port", "5800", "--idle-timeout", "30.0", "--eclib", "lib",
                     "--token", TOKEN]]


# --- end to end: EClib on the fake DLL and an emulated SP-200 channel ---

@pytest.fixture
def sp200():
    from labctl.sim_instruments.catalog import make_cell
    from labctl.sim_instruments.clock import VirtualClock
    from labctl.sim_instruments.sp200 import SP200Channel

    clock = VirtualClock()
    channel = SP200Channel(clock, make_cell("bare", area_cm2=0.785, seed=0))
    with serve(EClib(fake_eclib.FakeEClib({0: channel})), HOST, 0, TOKEN) as server:
        yield clock, channel, server


def test_end_to_end_an_ocv_through_the_bridge(sp200):
    clock, _, server = sp200
    with EClibBridge(*server.address, TOKEN) as client:
        device_id, infos = client.connect("USB0")
        assert infos.DeviceCode == 21 and isinstance(infos, TDeviceInfos)
        client.load_firmware(device_id, [0])
        client.load_technique(device_id, 0, "ocv4.ecc", techniques.ocv(10.0, record_dt_s=1.0))
        client.start_channel(device_id, 0)
        assert client.current_values(device_id, 0).State == State.RUN
        clock.advance(20.0, stop_on_event=False)
        rows: list[OCVRow] = []
        while True:
            block, values = client.get_data(device_id, 0)
            rows += parse(block)
            if values.State == State.STOP and block.rows == 0:
                break
        assert len(rows) >= 10 and all(isinstance(r, OCVRow) for r in rows)
        steps = [b.time_s - a.time_s for a, b in itertools.pairwise(rows)]
        assert steps == pytest.approx([1.0] * len(steps), abs=1e-3) and rows[-1].time_s <= 10.0 + 1e-3
        with pytest.raises(EClibError, match="-401"):
            client.load_technique(device_id, 0, "ocv.ecc", techniques.ocv(10.0, record_dt_s=1.0))
        with pytest.raises(EClibError, match="BL_StartChannel failed with EClib error -1"):
            client.start_channel(device_id + 1, 0)


def test_end_to_end_a_dropped_client_stops_the_running_channel(sp200):
    clock, channel, server = sp200
    client = EClibBridge(*server.address, TOKEN)
    device_id, _ = client.connect("USB0")
    client.load_firmware(device_id, [0])
    steps = [Step(1e-4, 3600.0)]
    client.load_technique(device_id, 0, "cplimit4.ecc", techniques.cplimit(steps, i_range=IRange.I_1mA,
                                                                            record_dt_s=10.0))
    client.start_channel(device_id, 0)
    clock.advance(60.0, stop_on_event=False)
    assert channel.running and channel.current_A == pytest.approx(1e-4)
    client.close()
    until(lambda: not channel.running)
    assert channel.state == State.STOP and channel.current_A == 0.0
    with EClibBridge(*server.address, TOKEN) as other:  # the server goes on; the dropped client's device is gone
        with pytest.raises(EClibError, match="-1"):
            other.current_values(device_id, 0)
        assert other.connect("USB0")[0] != device_id
