"""Clocks procedures wait through: wall time on hardware, a simulated bench's virtual time otherwise.

:class:`SimClock` steps the bench's clock through its control channel (JSON lines over TCP, see
``labctl.sim_instruments.clock``); time on the bench then moves only when the procedure waits, so hours of
test time pass in milliseconds and a run is reproducible. When this very process serves the bench (``labctl
run --bench sim``), a wait is a call into its clock instead of a round trip on the channel: the same time
steps, without two thread switches per wait.
"""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
import time
from typing import Any

from labctl.sim_instruments.clock import VirtualClock, served_here

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())


def _check_seconds(seconds: float) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"seconds to wait must be a finite number >= 0, not {seconds!r}")
    return float(seconds)


class WallClock:
    """Real time: ``wait`` sleeps."""

    def wait(self, seconds: float, *, stop_at_event: bool = True) -> None:
        """Sleep ``seconds`` (s); hardware has no events to stop at."""
        time.sleep(_check_seconds(seconds))

    def now(self) -> float:
        """Monotonic wall time in s (differences only)."""
        return time.monotonic()

    def close(self) -> None:
        """Nothing to release."""


class SimClock:
    """The virtual clock of a simulated bench at ``host``:``port`` (its control channel).

    Connecting takes the bench's time out of free running: from then on it moves only when this clock waits
    (until it is closed). ``timeout_s`` bounds the wait for each reply.
    """

    def __init__(self, host: str, port: int, *, timeout_s: float = 60.0) -> None:
        self.address = f"{host}:{port}"
        try:
            self._sock = socket.create_connection((host, port), timeout=timeout_s)
        except OSError as e:
            raise ConnectionError(f"no simulated bench clock answers at {self.address} ({e}); start the bench "
                                  "(labctl sim serve) or fix the clock's resource") from e
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._reader = self._sock.makefile("rb")
        self._lock = threading.Lock()
        self._host_port = (host, port)
        self._request({"op": "advance", "dt": 0.0})  # hold the bench in stepped mode from now on

    def now(self) -> float:
        """The bench's virtual time in s."""
        local = served_here(*self._host_port)
        if local is not None:
            return local.now
        return float(self._request({"op": "now"})["t"])

    def advance(self, seconds: float, *, stop_at_event: bool = True) -> tuple[float, bool]:
        """Move the bench's time by up to ``seconds`` (s); return (time now in s, whether an instrument event
        ended the advance early)."""
        request = {"op": "advance", "dt": _check_seconds(seconds), "stop_on_event": stop_at_event}
        local = served_here(*self._host_port)
        if local is not None:
            return self._advance_here(local, request)
        reply = self._request(request)
        return float(reply["t"]), bool(reply["event"])

    def wait(self, seconds: float, *, stop_at_event: bool = True) -> None:
        """Let ``seconds`` (s) of bench time pass, or less if an instrument event (e.g. a step end) comes first
        and ``stop_at_event``."""
        self.advance(seconds, stop_at_event=stop_at_event)

    def close(self) -> None:
        """Disconnect; the bench's time runs free again."""
        self._reader.close()
        self._sock.close()

    def __enter__(self) -> SimClock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _advance_here(self, clock: VirtualClock, request: dict[str, Any]) -> tuple[float, bool]:
        """``request`` done by a call into the clock this process serves, failing as the channel would."""
        try:
            return clock.advance(request["dt"], request["stop_on_event"])
        except Exception as e:
            log.exception("advancing the clock by %g s failed", request["dt"])
            raise RuntimeError(f"the simulated bench clock at {self.address} refused {request}: advance failed "
                               f"inside the simulation: {e}") from e

    def _request(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            try:
                self._sock.sendall(json.dumps(request).encode() + b"\n")
                line = self._reader.readline()
            except OSError as e:
                raise ConnectionError(f"lost the simulated bench clock at {self.address}: {e}") from e
        if not line:
            raise ConnectionError(f"the simulated bench clock at {self.address} closed the connection")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise RuntimeError(f"the simulated bench clock at {self.address} refused {request}: {reply.get('error')}")
        return reply
