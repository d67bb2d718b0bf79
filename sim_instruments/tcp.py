"""A small threaded TCP server on 127.0.0.1, the transport every network emulator on a simulated bench uses."""

from __future__ import annotations

import logging
import socket
import threading

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

HOST = "127.0.0.1"  # emulators never listen beyond this machine


class TcpServer:
    """Listens on 127.0.0.1 (``port`` 0 picks a free port) and serves each client in its own thread.

    Subclasses implement :meth:`handle`, which owns one connected socket until it returns. The server starts
    listening when constructed; :meth:`close` stops it and disconnects every client.
    """

    def __init__(self, port: int = 0, *, name: str = "tcp-server") -> None:
        self.name = name
        self._listener = socket.create_server((HOST, port))
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._clients: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"{name}-accept", daemon=True)
        self._acceptor.start()

    @property
    def port(self) -> int:
        return self.address[1]

    def handle(self, conn: socket.socket) -> None:
        """Serve one client; return (or raise OSError) when it is done."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop listening, disconnect every client and wait for their threads."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            clients, threads = list(self._clients), list(self._threads)
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept() on Linux
        except OSError:
            pass
        self._listener.close()
        for conn in clients:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._acceptor.join(timeout=5)
        for thread in threads:
            thread.join(timeout=5)

    def __enter__(self) -> TcpServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, peer = self._listener.accept()
            except OSError:
                return  # closed
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # one small reply per request
            thread = threading.Thread(target=self._serve, args=(conn, peer), name=f"{self.name}-{peer[1]}", daemon=True)
            with self._lock:
                if self._closed:
                    conn.close()
                    return
                self._clients.add(conn)
                self._threads.add(thread)
            thread.start()

    def _serve(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        log.debug("%s: client %s:%d connected", self.name, *peer)
        try:
            self.handle(conn)
        except OSError:
            pass  # the client went away or the server is closing
        except Exception:
            log.exception("%s: client %s:%d dropped after an internal error", self.name, *peer)
        finally:
            conn.close()
            with self._lock:
                self._clients.discard(conn)
                self._threads.discard(threading.current_thread())
            log.debug("%s: client %s:%d disconnected", self.name, *peer)


def recv_exact(conn: socket.socket, size: int) -> bytes | None:
    """Exactly ``size`` bytes from ``conn``, or None if the peer closed the connection first."""
    chunks, missing = [], size
    while missing:
        chunk = conn.recv(missing)
        if not chunk:
            return None
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)
