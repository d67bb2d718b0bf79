"""EClib served over TCP: the SP-200's Windows-only DLL driven from a Linux or macOS labctl.

Run the server on the Windows PC beside the instrument (``python -m labctl.drivers.biologic.bridge --eclib DIR
--token SECRET``, or ``labctl biologic-bridge``); on the labctl host, ``EClibBridge(host, port, token)`` has the
methods and return types of :class:`~labctl.drivers.biologic.eclib.EClib`, so code using it cannot tell the two
apart. Standard library only (plus labctl's eclib, techniques and data modules): nothing heavy runs beside the DLL.

Protocol (version 1), UTF-8 JSON, one object per ``\\n``-terminated line of at most :data:`MAX_LINE` bytes:

- Hello: the client's first line is ``{"hello": "labctl-eclib-bridge", "version": 1, "token": "..."}``. The server
  answers ``{"ok": true, "hello": "labctl-eclib-bridge", "version": 1}``, or an error reply (wrong or missing token,
  another protocol, no hello within :data:`HELLO_TIMEOUT_S`) and closes the connection.
- Request: ``{"call": NAME, "args": {ARG: VALUE, ...}}``, NAME one of :data:`CALLS` (EClib's method names, nothing
  else is callable), arguments by name as EClib's methods take them; a ``Param`` list is ``[[label, type, value,
  index], ...]``, paths are strings. Reply: ``{"result": VALUE}``: a ctypes structure as an object of its fields, a
  ``DataBlock`` as an object of its fields, a tuple as a list.
- Error reply: ``{"error": {"type": T, ...}}``. T is ``"EClibError"`` (with ``call``, ``code``, ``meaning``),
  ``"ValueError"`` (a bad argument: ``message``), ``"protocol"`` (not JSON, not an object, an unknown call, missing
  or unknown arguments, an oversized line), ``"auth"`` (the hello) or ``"internal"`` (the library raised something
  else). The client raises EClibError and ValueError as such and :class:`BridgeError` for the rest.
- After a bad request the connection stays open: the line framing still holds. An oversized line closes it (its
  rest cannot be told from the next request), as does anything wrong before the hello is accepted.

Safety: library calls run one at a time under one lock (the DLL is not known to be thread-safe). The server notes
which client started each (device_id, channel) (start_channel/start_channels, until a stop_channel(s) succeeds;
the last client to start it owns it) and which devices it connected. When that client's connection ends (EOF,
reset, a line cut short, an oversized line, TCP keep-alive finding the peer's host gone: probes after
:data:`KEEPALIVE_IDLE_S` of silence, so within about a minute and a half; or, when the server is given an
``idle_timeout_s``, no request for that long) or the server shuts down (Ctrl-C), it calls stop_channel on each
channel the client owns, then disconnect on each device it connected that no other client also holds, and logs
what it did: a dropped labctl never leaves current flowing. There is no idle timeout by default: labctl may wait up
to a procedure's sample interval (600 s at most) between reads; one given must be longer than that. A channel
whose device its client disconnected before dropping cannot be stopped (the ID is gone; the failure is logged).
The token and the data are not encrypted: bind 127.0.0.1 (the default) or a private lab network, and keep the port
firewalled. At most :data:`MAX_CLIENTS` connections are served at once; more are
answered with a protocol error and closed.
"""

from __future__ import annotations

import argparse
import ctypes
import hmac
import json
import logging
import math
import os
import socket
import struct
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from labctl.drivers.biologic import MIN_TOKEN_CHARS
from labctl.drivers.biologic.data import DataBlock
from labctl.drivers.biologic.eclib import (
    FIRMWARE_VMP300,
    EClib,
    EClibError,
    TChannelInfos,
    TCurrentValues,
    TDeviceInfos,
    THardwareConf,
)
from labctl.drivers.biologic.techniques import Param, ParamType

log = logging.getLogger("labctl.drivers.biologic.bridge")  # not __name__: that is "__main__" under python -m

PROTOCOL, VERSION = "labctl-eclib-bridge", 1
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 5710
TOKEN_ENV = "LABCTL_BRIDGE_TOKEN"
MAX_LINE = 1 << 20  # bytes; a full BL_GetData block is ~12 kB of JSON, 99 CPLIMIT steps ~60 kB
HELLO_TIMEOUT_S = 10.0
DEFAULT_IDLE_TIMEOUT_S = 0.0  # never: a client silent that long would be taken for dead; keep-alive finds dead hosts
KEEPALIVE_IDLE_S, KEEPALIVE_INTERVAL_S = 30, 5  # TCP keep-alive probes: after 30 s of silence, every 5 s
DEFAULT_REPLY_TIMEOUT_S = 30.0
SLOW_CALL_S = 120.0  # load_firmware may take long; the client waits at least this for it
ERR_CHANNEL_RUNNING = -13  # ERR_GEN_CHANNEL_RUNNING
MAX_CLIENTS = 16  # each holds a thread; more are turned away

# The callable methods and their arguments, by name ("?": optional, EClib's default applies)
CALLS: dict[str, tuple[str, ...]] = {
    "lib_version": (),
    "error_message": ("code",),
    "connect": ("address", "timeout_s?"),
    "disconnect": ("device_id",),
    "test_connection": ("device_id",),
    "load_firmware": ("device_id", "channels", "kernel?", "fpga?", "force?", "show_gauge?"),
    "channels_plugged": ("device_id",),
    "is_channel_plugged": ("device_id", "channel"),
    "channel_infos": ("device_id", "channel"),
    "message": ("device_id", "channel"),
    "hard_conf": ("device_id", "channel"),
    "set_hard_conf": ("device_id", "channel", "conn", "ground"),
    "opt_err": ("device_id", "channel"),
    "load_technique": ("device_id", "channel", "ecc_path", "params", "first?", "last?", "display?"),
    "update_parameters": ("device_id", "channel", "technique_index", "params", "ecc_path"),
    "start_channel": ("device_id", "channel"),
    "stop_channel": ("device_id", "channel"),
    "start_channels": ("device_id", "channels"),
    "stop_channels": ("device_id", "channels"),
    "current_values": ("device_id", "channel"),
    "get_data": ("device_id", "channel"),
    "convert_numeric_into_single": ("word",),
}

DROPS = ("the bridge closes connections on a wrong token, and after --idle-timeout seconds without a request if "
         "started with one")
CHECK = ("check that the bridge runs on the Windows PC beside the SP-200 (labctl biologic-bridge), that it listens on "
         "an interface this machine reaches (--host), and that no firewall blocks the port")


class BridgeError(ConnectionError):
    """The EClib bridge cannot be reached, refused this client, did not answer in time or answered nonsense."""


class _BadRequest(Exception):
    """A request the server cannot run: ``kind`` "protocol" or "ValueError"."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# --- arguments: JSON values -> what EClib's methods take ---


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _param(item: object) -> Param:
    if not (isinstance(item, list) and len(item) == 4):
        raise ValueError(f"a parameter is [label, type, value, index], not {item!r}")
    label, kind, value, index = item
    if not (isinstance(label, str) and _is_int(kind) and kind in {int(t) for t in ParamType} and _is_int(index)):
        raise ValueError(f"parameter {item!r}: label is a string, type one of {[int(t) for t in ParamType]}, "
                         f"index an int")
    kind = ParamType(kind)
    fits = {ParamType.INT32: _is_int(value), ParamType.BOOLEAN: isinstance(value, bool),
            ParamType.SINGLE: isinstance(value, int | float) and not isinstance(value, bool)}[kind]
    if not fits:
        raise ValueError(f"parameter {label!r} is {kind.name}; its value {value!r} is not")
    return Param(label, kind, value, index)


def _decode(name: str, value: object) -> object:
    """The argument ``name`` from its JSON value; ValueError naming what it must be."""
    if name in ("address", "ecc_path"):
        ok = isinstance(value, str)
    elif name in ("kernel", "fpga"):
        ok = value is None or isinstance(value, str)
    elif name in ("force", "show_gauge", "first", "last", "display"):
        ok = isinstance(value, bool)
    elif name == "channels":
        ok = isinstance(value, list) and all(_is_int(ch) for ch in value)
    elif name == "params":
        if not isinstance(value, list):
            raise ValueError(f"params must be a list of [label, type, value, index], not {value!r}")
        return [_param(item) for item in value]
    else:  # code, timeout_s, device_id, channel, conn, ground, technique_index, word
        ok = _is_int(value)
    if not ok:
        need = {"kernel": "a string or null", "fpga": "a string or null", "channels": "a list of ints",
                "address": "a string", "ecc_path": "a string"}.get(name)
        need = need or ("true or false" if name in ("force", "show_gauge", "first", "last", "display") else "an int")
        raise ValueError(f"argument {name} must be {need}, not {value!r}")
    return value


def _arguments(call: str, args: object) -> dict[str, object]:
    if not isinstance(args, dict):
        raise _BadRequest("protocol", f"{call}: args must be an object of named arguments, not {args!r}")
    spec = {name.rstrip("?"): name.endswith("?") for name in CALLS[call]}
    missing = [name for name, optional in spec.items() if not optional and name not in args]
    unknown = [name for name in args if name not in spec]
    if missing or unknown:
        raise _BadRequest("protocol", f"{call} takes {', '.join(CALLS[call]) or 'no arguments'} ('?': optional)"
                          + (f"; missing {', '.join(missing)}" if missing else "")
                          + (f"; unknown {', '.join(map(repr, unknown))}" if unknown else ""))
    try:
        return {name: _decode(name, value) for name, value in args.items()}
    except ValueError as e:
        raise _BadRequest("ValueError", f"{call}: {e}") from None


# --- results: what EClib's methods return <-> JSON values ---


def _to_wire(value: object) -> object:
    if isinstance(value, ctypes.Structure):
        return {name: getattr(value, name) for name, *_ in value._fields_}
    if isinstance(value, DataBlock):
        return {**asdict(value), "words": list(value.words)}
    if isinstance(value, tuple | list):
        return [_to_wire(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot send a {type(value).__name__} result")


def _structure(cls: type[ctypes.Structure], wire: dict[str, Any]) -> Any:
    result = cls()
    for name, *_ in cls._fields_:
        setattr(result, name, wire[name])
    return result


def _data_block(wire: dict[str, Any]) -> DataBlock:
    names = {f.name for f in fields(DataBlock)}
    if set(wire) != names:
        raise ValueError(f"DataBlock fields {sorted(wire)}")
    return DataBlock(**{**wire, "words": tuple(int(w) for w in wire["words"])})


_RESULTS: dict[str, Callable[[Any], object]] = {
    "lib_version": str, "error_message": str, "message": str,
    "connect": lambda r: (int(r[0]), _structure(TDeviceInfos, r[1])),
    "channels_plugged": lambda r: [int(ch) for ch in r],
    "is_channel_plugged": bool,
    "channel_infos": lambda r: _structure(TChannelInfos, r),
    "hard_conf": lambda r: _structure(THardwareConf, r),
    "opt_err": lambda r: (int(r[0]), int(r[1])),
    "current_values": lambda r: _structure(TCurrentValues, r),
    "get_data": lambda r: (_data_block(r[0]), _structure(TCurrentValues, r[1])),
    "convert_numeric_into_single": float,
}  # fmt: skip


def _error(kind: str, message: str) -> dict[str, object]:
    return {"error": {"type": kind, "message": message}}


# --- server ---


class _Session:
    """One client connection: who it is and the devices it connected (a device may appear twice)."""

    def __init__(self, peer: str) -> None:
        self.peer = peer
        self.devices: list[int] = []
        self.greeted = False  # its hello was accepted


class BridgeServer:
    """Serves ``eclib`` (anything with EClib's methods) on ``host``:``port`` to clients presenting ``token``.

    Listens as soon as it is built (port 0 picks a free port; :attr:`address` says which); :meth:`close` stops
    it, stopping every channel a client started and disconnecting the devices clients connected.
    """

    def __init__(self, eclib: object, host: str, port: int, token: str, *,
                 idle_timeout_s: float | None = DEFAULT_IDLE_TIMEOUT_S) -> None:
        if len(token) < MIN_TOKEN_CHARS:
            raise ValueError(f"token {'too short' if token else 'missing'}: give the bridge a shared secret of at least "
                             f"{MIN_TOKEN_CHARS} characters (--token or ${TOKEN_ENV})")
        if idle_timeout_s is not None and not idle_timeout_s >= 0:
            raise ValueError(f"idle timeout {idle_timeout_s!r}: give seconds >= 0 (0: never)")
        if not 0 <= port <= 65535:
            raise ValueError(f"port {port}: give 0..65535")
        self._eclib, self._token = eclib, token.encode()
        self.idle_timeout_s = idle_timeout_s if idle_timeout_s and math.isfinite(idle_timeout_s) else None
        self._lock = threading.Lock()  # library calls, and the ownership tables that follow them
        self._owners: dict[tuple[int, int], _Session] = {}  # (device_id, channel) started -> by whom
        self._holders: Counter[int] = Counter()  # device_id -> connections that connected it
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._conns_lock = threading.Lock()
        self._closed = threading.Event()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.create_server((host, port), family=family)
        self._listener.settimeout(0.5)  # the accept loop looks at _closed this often, should nothing wake accept()
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._acceptor = threading.Thread(target=self._accept_loop, name="eclib-bridge-accept", daemon=True)
        self._acceptor.start()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until closed (True) or ``timeout_s`` passes (False); short waits so Ctrl-C gets through on Windows."""
        remaining = timeout_s
        while remaining is None or remaining > 0:
            if self._closed.wait(0.5 if remaining is None else min(0.5, remaining)):
                return True
            remaining = None if remaining is None else remaining - 0.5
        return self._closed.is_set()

    def close(self) -> None:
        """Stop listening, end every connection (stopping its channels) and wait for the client threads."""
        if self._closed.is_set():
            return
        self._closed.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept() on Linux; closing does on Windows
        except OSError:
            pass
        self._listener.close()
        with self._conns_lock:
            conns = dict(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)  # wakes the client thread's read
            except OSError:
                pass
        self._acceptor.join(timeout=5)
        for thread in conns.values():
            thread.join(timeout=15)
        with self._lock:
            left = [key for key in self._owners]  # a client thread stuck in a library call: stop its channels anyway
        for device_id, channel in left:
            self._stop(device_id, channel, "the server shut down")
        log.info("EClib bridge on %s:%d closed", *self.address)

    def __enter__(self) -> BridgeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # connections

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                conn, peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError as e:
                if not self._closed.is_set():
                    log.error("accept failed: %s", e)
                    self._closed.wait(0.5)
                continue
            thread = threading.Thread(target=self._serve, args=(conn, f"{peer[0]}:{peer[1]}"), daemon=True,
                                      name=f"eclib-bridge-{peer[1]}")
            with self._conns_lock:  # close() sees every connection added before it set _closed, none after
                if self._closed.is_set() or len(self._conns) >= MAX_CLIENTS:
                    self._turn_away(conn, f"{peer[0]}:{peer[1]}")
                    continue
                self._conns[conn] = thread
                thread.start()

    def _turn_away(self, conn: socket.socket, peer: str) -> None:
        if not self._closed.is_set():
            log.warning("client %s turned away: %d clients already connected", peer, MAX_CLIENTS)
            try:
                conn.settimeout(1.0)
                _send(conn, _error("protocol", f"the bridge serves at most {MAX_CLIENTS} clients at once; "
                                               "close another labctl's connection"))
            except OSError:
                pass
        conn.close()

    def _serve(self, conn: socket.socket, peer: str) -> None:
        session, why = _Session(peer), "closed the connection"
        silent = f"sent no hello within {HELLO_TIMEOUT_S:g} s"
        reader = conn.makefile("rb")
        try:
            _keepalive(conn)
            conn.settimeout(HELLO_TIMEOUT_S)
            if not self._hello(conn, reader, session):
                return
            silent = f"sent no request for {self.idle_timeout_s or 0:g} s"  # idle_timeout_s None: never raised
            conn.settimeout(self.idle_timeout_s)
            while (line := reader.readline(MAX_LINE + 1)).endswith(b"\n"):
                _send(conn, self._request(session, line))
            if len(line) > MAX_LINE:
                why = f"sent a line over {MAX_LINE} bytes"
                _send(conn, _error("protocol", f"line over {MAX_LINE} bytes; connection closed"))
            elif line:
                why = "closed the connection in the middle of a line"
        except TimeoutError:
            why = silent
        except OSError as e:
            why = f"was lost ({e})"
        except Exception:
            log.exception("client %s: internal error", peer)
            why = "met an internal error"
        finally:
            reader.close()  # the socket closes only once its file is closed too
            conn.close()
            if self._closed.is_set():
                why = "was disconnected: the server shut down"
            if session.greeted:
                self._release(session, why)
            elif why != "closed the connection":
                log.info("client %s %s", peer, why)
            with self._conns_lock:
                self._conns.pop(conn, None)

    def _hello(self, conn: socket.socket, reader: Any, session: _Session) -> bool:
        line = reader.readline(MAX_LINE + 1)
        if not line:
            log.info("client %s left before its hello", session.peer)
            return False
        try:
            hello = json.loads(line)
        except (ValueError, RecursionError):
            hello = None
        problem = None
        if not (isinstance(hello, dict) and hello.get("hello") == PROTOCOL):
            problem = f"expected the hello line {{\"hello\": \"{PROTOCOL}\", \"version\": {VERSION}, \"token\": ...}}"
        elif hello.get("version") != VERSION:
            problem = f"protocol version {hello.get('version')!r}; this bridge speaks version {VERSION}: update labctl"
        elif not isinstance(hello.get("token"), str) or not hello["token"]:
            problem = f"no token given; give the token the bridge was started with (--token or ${TOKEN_ENV})"
        elif not hmac.compare_digest(hello["token"].encode(), self._token):
            problem = f"wrong token; give the token the bridge was started with (--token or ${TOKEN_ENV})"
        if problem:
            log.warning("client %s refused: %s", session.peer, problem)
            _send(conn, {"error": {"type": "auth", "message": problem}})
            return False
        _send(conn, {"ok": True, "hello": PROTOCOL, "version": VERSION})
        log.info("client %s connected", session.peer)
        session.greeted = True
        return True

    # requests

    def _request(self, session: _Session, line: bytes) -> dict[str, object]:
        try:
            message = json.loads(line)
        except (ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            return _error("protocol", f"not JSON ({type(e).__name__}: {e}); send one JSON object per line")
        if not isinstance(message, dict) or set(message) - {"call", "args"}:
            return _error("protocol", 'a request is an object {"call": NAME, "args": {...}} and nothing else')
        call = message.get("call")
        if not isinstance(call, str) or call not in CALLS:
            return _error("protocol", f"unknown call {call!r}; the bridge serves {', '.join(CALLS)}")
        try:
            kwargs = _arguments(call, message.get("args", {}))
        except _BadRequest as e:
            return _error(e.kind, str(e))
        with self._lock:
            try:
                result = getattr(self._eclib, call)(**kwargs)  # call is one of CALLS
            except EClibError as e:
                self._track(session, call, kwargs, None, failed=e.code)
                return {"error": {"type": "EClibError", "call": e.call, "code": e.code, "meaning": e.meaning}}
            except ValueError as e:
                return _error("ValueError", str(e))
            except Exception as e:
                log.exception("client %s: %s raised", session.peer, call)
                return _error("internal", f"{call} raised {type(e).__name__}: {e}")
            self._track(session, call, kwargs, result)
        try:
            return {"result": _to_wire(result)}
        except TypeError as e:
            return _error("internal", f"{call}: {e}")

    def _track(self, session: _Session, call: str, kwargs: dict[str, Any], result: object, *,
               failed: int = 0) -> None:
        """Note what ``call`` started, stopped, connected or disconnected for ``session`` (under the library lock);
        ``failed``: the EClib error code it raised."""
        device_id = kwargs.get("device_id")
        channels = kwargs.get("channels") or ([kwargs["channel"]] if "channel" in kwargs else [])
        if call in ("start_channel", "start_channels"):
            if failed == ERR_CHANNEL_RUNNING:
                return  # running already, started by someone else: not this client's to stop
            for ch in channels:
                # a failed start may have started some of its channels: claim those no other client owns
                if not failed or (device_id, ch) not in self._owners:
                    self._owners[(device_id, ch)] = session
        elif failed:
            return  # a failed stop leaves the channel owned, so a drop stops it again
        elif call in ("stop_channel", "stop_channels"):
            for ch in channels:
                self._owners.pop((device_id, ch), None)
        elif call == "connect":
            session.devices.append(result[0])  # type: ignore[index]
            self._holders[result[0]] += 1  # type: ignore[index]
        elif call == "disconnect" and device_id in session.devices:
            session.devices.remove(device_id)
            self._holders[device_id] -= 1

    def _owned(self, session: _Session) -> list[tuple[int, int]]:
        return [key for key, owner in self._owners.items() if owner is session]

    def _stop(self, device_id: int, channel: int, why: str) -> bool:
        with self._lock:
            self._owners.pop((device_id, channel), None)
            try:
                self._eclib.stop_channel(device_id, channel)  # type: ignore[attr-defined]
            except Exception as e:
                log.error("could not stop channel %d of device %d (%s): %s", channel, device_id, why, e)
                return False
        log.warning("stopped channel %d of device %d: %s", channel, device_id, why)
        return True

    def _release(self, session: _Session, why: str) -> None:
        """The client is gone: stop the channels it owns, disconnect the devices only it holds."""
        with self._lock:
            owned = self._owned(session)
        for device_id, channel in owned:
            self._stop(device_id, channel, f"client {session.peer} {why}")
        for device_id in session.devices:
            with self._lock:
                self._holders[device_id] -= 1
                if self._holders[device_id] > 0:
                    continue
                del self._holders[device_id]
                try:
                    self._eclib.disconnect(device_id)  # type: ignore[attr-defined]
                except Exception as e:
                    log.error("could not disconnect device %d (client %s %s): %s", device_id, session.peer, why, e)
                    continue
            log.info("disconnected device %d: client %s %s", device_id, session.peer, why)
        log.info("client %s %s", session.peer, why)


def _keepalive(conn: socket.socket) -> None:
    """TCP keep-alive probes, so a peer whose host vanished (power cut, cable, sleep) is noticed in about 80 s."""
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    if hasattr(socket, "SIO_KEEPALIVE_VALS"):  # Windows: on, idle and interval in ms; 10 probes
        conn.ioctl(socket.SIO_KEEPALIVE_VALS, (1, KEEPALIVE_IDLE_S * 1000, KEEPALIVE_INTERVAL_S * 1000))  # type: ignore[attr-defined]
        return
    for option, value in (("TCP_KEEPIDLE", KEEPALIVE_IDLE_S), ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL_S),
                          ("TCP_KEEPCNT", 10)):
        if hasattr(socket, option):
            conn.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


def _send(conn: socket.socket, message: dict[str, object]) -> None:
    conn.sendall(json.dumps(message).encode() + b"\n")


def serve(eclib: object, host: str, port: int, token: str, *,
          idle_timeout_s: float | None = DEFAULT_IDLE_TIMEOUT_S) -> BridgeServer:
    """Serve ``eclib`` (an EClib, or anything with its methods) until the returned server is closed."""
    server = BridgeServer(eclib, host, port, token, idle_timeout_s=idle_timeout_s)
    idle = f"; a client silent for {server.idle_timeout_s:g} s is taken for dead" if server.idle_timeout_s else ""
    log.info("EClib bridge serving on %s:%d (token required%s)", *server.address, idle)
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("listening beyond this PC: the token and data cross the network unencrypted; "
                    "keep the port to the lab network (firewall)")
    return server


# --- client ---


def _wire_args(args: dict[str, object]) -> dict[str, object]:
    wire: dict[str, object] = {}
    for name, value in args.items():
        if name == "params":
            value = [[p.label, p.type, p.value, p.index] for p in value]  # type: ignore[attr-defined]
        elif name == "channels":
            value = list(value)  # type: ignore[call-overload]
        elif isinstance(value, os.PathLike):
            value = os.fspath(value)
        wire[name] = value
    return wire


class EClibBridge:
    """EClib's methods, run by the bridge at ``host``:``port``: the same arguments, return types and errors.

    Connects and presents ``token`` when built (BridgeError if that fails). ``timeout_s`` is how long a reply may
    take; after a timeout or a lost connection the client is closed (the bridge then stops the channels it
    started) and every call raises BridgeError. One request at a time: threads may share a client.
    """

    def __init__(self, host: str, port: int, token: str, *, timeout_s: float = DEFAULT_REPLY_TIMEOUT_S) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self._where = f"{host}:{port}"
        self._lock = threading.Lock()
        self._closed = False
        try:
            self._sock = socket.create_connection((host, port), timeout=timeout_s)
        except OSError as e:
            raise BridgeError(f"cannot reach the EClib bridge at {self._where}: {e}; {CHECK}") from e
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._reader = self._sock.makefile("rb")
        reply = self._exchange({"hello": PROTOCOL, "version": VERSION, "token": token}, "the hello", timeout_s)
        if not reply.get("ok"):
            self.close()
            raise BridgeError(f"the EClib bridge at {self._where} refused this client: {_message(reply)}")

    def close(self) -> None:
        self._closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes a thread waiting for a reply
        except OSError:
            pass
        self._reader.close()
        self._sock.close()

    def __enter__(self) -> EClibBridge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EClibBridge({self._where}{', closed' if self._closed else ''})"

    def _exchange(self, message: dict[str, object], what: str, timeout_s: float) -> dict[str, Any]:
        """Send one line, read one reply; any failure closes the client and raises BridgeError."""
        try:
            data = json.dumps(message).encode() + b"\n"
        except (TypeError, ValueError) as e:
            raise ValueError(f"{what}: an argument cannot be sent to the bridge ({e})") from None
        with self._lock:
            if self._closed:
                raise BridgeError(f"the client of the EClib bridge at {self._where} is closed; make a new one")
            try:
                self._sock.settimeout(timeout_s)
                self._sock.sendall(data)
                line = self._reader.readline(MAX_LINE + 1)
            except TimeoutError:
                self.close()
                raise BridgeError(f"no reply from the EClib bridge at {self._where} to {what} within {timeout_s:g} s; "
                                  f"the connection is closed (the bridge stops the channels this client started); "
                                  f"look at the bridge's log on the Windows PC") from None
            except OSError as e:
                self.close()
                raise BridgeError(f"lost the connection to the EClib bridge at {self._where} during {what}: {e}; "
                                  f"{DROPS}; {CHECK}") from e
            try:
                if not line.endswith(b"\n"):
                    raise ValueError("the line is cut short" if line else "no reply")
                reply = json.loads(line)
                if not isinstance(reply, dict):
                    raise ValueError(f"{reply!r} is not an object")
            except (ValueError, RecursionError) as e:
                self.close()
                why = "closed the connection" if not line else f"sent a malformed reply ({e})"
                raise BridgeError(f"the EClib bridge at {self._where} {why} during {what}; {DROPS}") from None
        return reply

    def _call(self, call: str, args: dict[str, object] | None = None, wait_s: float = 0.0) -> Any:
        reply = self._exchange({"call": call, "args": _wire_args(args or {})}, call, max(self.timeout_s, wait_s))
        error = reply.get("error")
        if isinstance(error, dict):
            if error.get("type") == "EClibError":
                raise EClibError(str(error.get("call")), int(error.get("code", 0)), str(error.get("meaning")))
            if error.get("type") == "ValueError":
                raise ValueError(str(error.get("message")))
            raise BridgeError(f"the EClib bridge at {self._where} could not run {call}: {_message(reply)}")
        if "result" not in reply:
            raise BridgeError(f"the EClib bridge at {self._where} answered {call} without a result: {reply!r}")
        decode = _RESULTS.get(call)
        try:
            return decode(reply["result"]) if decode else None
        except (KeyError, IndexError, TypeError, ValueError) as e:
            raise BridgeError(f"the EClib bridge at {self._where} answered {call} with a malformed result ({e})") from e

    # EClib's methods
    def lib_version(self) -> str:
        return self._call("lib_version")

    def error_message(self, code: int) -> str:
        return self._call("error_message", {"code": code})

    def connect(self, address: str, timeout_s: int = 5) -> tuple[int, TDeviceInfos]:
        wait = timeout_s + self.timeout_s if _is_int(timeout_s) else 0.0
        return self._call("connect", {"address": address, "timeout_s": timeout_s}, wait)

    def disconnect(self, device_id: int) -> None:
        self._call("disconnect", {"device_id": device_id})

    def test_connection(self, device_id: int) -> None:
        self._call("test_connection", {"device_id": device_id})

    def load_firmware(self, device_id: int, channels: Iterable[int], kernel: str | os.PathLike[str] | None = FIRMWARE_VMP300[0],
                      fpga: str | os.PathLike[str] | None = FIRMWARE_VMP300[1], *, force: bool = True,
                      show_gauge: bool = False) -> None:
        self._call("load_firmware", {"device_id": device_id, "channels": channels, "kernel": kernel, "fpga": fpga,
                                     "force": force, "show_gauge": show_gauge}, SLOW_CALL_S)

    def channels_plugged(self, device_id: int) -> list[int]:
        return self._call("channels_plugged", {"device_id": device_id})

    def is_channel_plugged(self, device_id: int, channel: int) -> bool:
        return self._call("is_channel_plugged", {"device_id": device_id, "channel": channel})

    def channel_infos(self, device_id: int, channel: int) -> TChannelInfos:
        return self._call("channel_infos", {"device_id": device_id, "channel": channel})

    def message(self, device_id: int, channel: int) -> str:
        return self._call("message", {"device_id": device_id, "channel": channel})

    def hard_conf(self, device_id: int, channel: int) -> THardwareConf:
        return self._call("hard_conf", {"device_id": device_id, "channel": channel})

    def set_hard_conf(self, device_id: int, channel: int, conn: int, ground: int) -> None:
        self._call("set_hard_conf", {"device_id": device_id, "channel": channel, "conn": conn, "ground": ground})

    def opt_err(self, device_id: int, channel: int) -> tuple[int, int]:
        return self._call("opt_err", {"device_id": device_id, "channel": channel})

    def load_technique(self, device_id: int, channel: int, ecc_path: str | os.PathLike[str], params: Sequence[Param],
                       *, first: bool = True, last: bool = True, display: bool = False) -> None:
        self._call("load_technique", {"device_id": device_id, "channel": channel, "ecc_path": ecc_path,
                                      "params": params, "first": first, "last": last, "display": display})

    def update_parameters(self, device_id: int, channel: int, technique_index: int, params: Sequence[Param],
                          ecc_path: str | os.PathLike[str]) -> None:
        self._call("update_parameters", {"device_id": device_id, "channel": channel,
                                         "technique_index": technique_index, "params": params, "ecc_path": ecc_path})

    def start_channel(self, device_id: int, channel: int) -> None:
        self._call("start_channel", {"device_id": device_id, "channel": channel})

    def stop_channel(self, device_id: int, channel: int) -> None:
        self._call("stop_channel", {"device_id": device_id, "channel": channel})

    def start_channels(self, device_id: int, channels: Iterable[int]) -> None:
        self._call("start_channels", {"device_id": device_id, "channels": channels})

    def stop_channels(self, device_id: int, channels: Iterable[int]) -> None:
        self._call("stop_channels", {"device_id": device_id, "channels": channels})

    def current_values(self, device_id: int, channel: int) -> TCurrentValues:
        return self._call("current_values", {"device_id": device_id, "channel": channel})

    def get_data(self, device_id: int, channel: int) -> tuple[DataBlock, TCurrentValues]:
        return self._call("get_data", {"device_id": device_id, "channel": channel})

    def convert_numeric_into_single(self, word: int) -> float:
        return self._call("convert_numeric_into_single", {"word": word})


def _message(reply: dict[str, Any]) -> str:
    error = reply.get("error")
    return str(error.get("message", error)) if isinstance(error, dict) else repr(reply)


# --- the command ---


def load_eclib(directory: str | os.PathLike[str] | None) -> EClib:
    """EClib64.dll (EClib.dll for a 32-bit Python) of the EC-Lab Development Package's lib folder ``directory``.

    OSError when this is not Windows or the DLL cannot be loaded, ValueError when no folder is given.
    """
    if sys.platform != "win32":
        raise OSError("EClib (EClib64.dll) is Windows only: run the bridge on the Windows PC beside the SP-200 and "
                      "give labctl its host, port and token")
    if not directory:
        raise ValueError("give --eclib DIR: the lib folder of the EC-Lab Development Package, which holds EClib64.dll")
    name = "EClib64.dll" if struct.calcsize("P") == 8 else "EClib.dll"
    path = Path(directory)
    dll = path if path.is_file() else path / name
    if not dll.is_file():
        raise OSError(f"no {name} in {path}; give --eclib the EC-Lab Development Package's lib folder")
    os.add_dll_directory(str(dll.parent))  # type: ignore[attr-defined]  # blfind64.dll and friends beside it
    try:
        return EClib(ctypes.WinDLL(str(dll)))  # type: ignore[attr-defined]
    except OSError as e:
        if getattr(e, "winerror", None) == 193:
            raise OSError(f"{dll} does not match this Python's bitness ({8 * struct.calcsize('P')}-bit): use "
                          f"EClib64.dll with a 64-bit Python, EClib.dll with a 32-bit one") from e
        raise OSError(f"cannot load {dll}: {e}") from e


def _log_to_stderr() -> None:
    log.setLevel(logging.INFO)
    if not logging.getLogger().handlers:  # python -m: nothing set logging up (labctl's CLI does)
        logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s")


def _bounded(kind: type, lo: float, hi: float) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{text}: give {lo:g}..{hi:g}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its "invalid ... value" message
    return parse


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m labctl.drivers.biologic.bridge``: serve EClib until Ctrl-C. Exit 0 after Ctrl-C, 2 without a
    token or folder, 1 when EClib cannot be loaded here or the port cannot be opened."""
    parser = argparse.ArgumentParser(prog="python -m labctl.drivers.biologic.bridge",
                                     description="Serve the SP-200's EClib to labctl over TCP (run it on the Windows PC).")
    parser.add_argument("--eclib", metavar="DIR", help="the EC-Lab Development Package's lib folder (EClib64.dll)")
    parser.add_argument("--host", default=DEFAULT_HOST, help="interface to listen on (default %(default)s: this PC only)")
    parser.add_argument("--port", type=_bounded(int, 0, 65535), default=DEFAULT_PORT, help="TCP port (default %(default)s)")
    parser.add_argument("--token", help=f"shared secret clients must present (default: ${TOKEN_ENV})")
    parser.add_argument("--idle-timeout", type=_bounded(float, 0, math.inf), default=DEFAULT_IDLE_TIMEOUT_S, metavar="S",
                        help="also take a client silent for S s for dead and stop its channels; longer than the "
                             "procedures' sample intervals (up to 600 s); 0: never (default)")
    args = parser.parse_args(argv)
    token = args.token or os.environ.get(TOKEN_ENV)
    if not token or len(token) < MIN_TOKEN_CHARS:
        print(f"error: {'token too short' if token else 'no token'}: give --token SECRET (at least {MIN_TOKEN_CHARS} "
              f"characters) or set {TOKEN_ENV}; labctl presents the same one", file=sys.stderr)
        return 2
    _log_to_stderr()
    try:
        eclib = load_eclib(args.eclib)
        server = serve(eclib, args.host, args.port, token, idle_timeout_s=args.idle_timeout)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    try:
        server.wait()
    except KeyboardInterrupt:
        log.info("Ctrl-C: stopping the channels clients started and closing")
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
