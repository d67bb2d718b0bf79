"""The SQM-160 emulator's transport: a pseudo-terminal that clients open as a serial port, and the packet framing.

A command is ``!`` + a length character (message length + 34) + the message + two CRC characters (CRC-14 of the
length character and message, each 7-bit half + 34); two NULs instead of the CRC turn the check off. A ``!``
anywhere starts a new packet. A reply is ``!`` + length (status and message + 35) + status + message + CRC.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import tty
from collections.abc import Callable

from pymeasure.instruments.inficon.sqm160 import calculate_checksum

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

MAX_WRITE_WAIT_S = 1.0


class PtyPort:
    """A new pseudo-terminal (:attr:`port`) served by a thread: each command packet's ``answer(message, crc_ok)``
    (status character and message) goes back framed. Close it when done."""

    def __init__(self, answer: Callable[[str, bool], str], name: str = "sqm160") -> None:
        self._answer = answer
        self._master, slave = os.openpty()
        tty.setraw(slave)  # bytes pass as they are: no echo, no line editing
        self._slave = slave  # held open so the master never sees a hang-up between clients
        self.port = os.ttyname(slave)
        os.set_blocking(self._master, False)
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def close(self) -> None:
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            os.close(fd)

    def _serve(self) -> None:
        parser = PacketParser()
        while True:
            ready, _, _ = select.select([self._master, self._wake_r], [], [])
            if self._wake_r in ready:
                return
            try:
                data = os.read(self._master, 4096)
            except BlockingIOError:
                continue
            except OSError:
                return
            for body, crc_ok in parser.feed(data):
                self._send(frame_reply(self._answer(body[1:].decode("latin-1"), crc_ok)))

    def _send(self, packet: bytes) -> None:
        """Write ``packet`` to the port; a client that does not read for a second loses it."""
        view = memoryview(packet)
        while view:
            _, writable, _ = select.select([], [self._master], [], MAX_WRITE_WAIT_S)
            if not writable:
                log.warning("SQM-160 emulator: the client does not read; reply %r lost", packet)
                return
            view = view[os.write(self._master, view) :]


class PacketParser:
    """Command packets out of a byte stream: ``!``, length + 34, message, two CRC characters."""

    def __init__(self) -> None:
        self._packet: bytearray | None = None

    def feed(self, data: bytes) -> list[tuple[bytes, bool]]:
        """Complete packets in ``data`` (with what came before), each as (length character + message, CRC ok)."""
        done = []
        for byte in data:
            if byte == 0x21:  # '!' starts a packet, whatever came before
                self._packet = bytearray()
                continue
            if self._packet is None:
                continue  # noise between packets
            self._packet.append(byte)
            if self._packet[0] < 35:  # a message of at least one character
                self._packet = None
            elif len(self._packet) == self._packet[0] - 34 + 3:
                body, crc = bytes(self._packet[:-2]), bytes(self._packet[-2:])
                done.append((body, crc == b"\0\0" or crc == calculate_checksum(body)))
                self._packet = None
        return done


def frame_reply(status_and_message: str) -> bytes:
    """A reply packet: ``!``, length + 35, status and message, CRC."""
    body = bytes([len(status_and_message) + 35]) + status_and_message.encode("latin-1")
    return b"!" + body + calculate_checksum(body)
