"""A real, throwaway PostgreSQL server for tests and benchmarks.

The server is the one from the Debian ``postgresql`` package, which ``.ci/run`` installs: a real, maintained server,
the same one a lab runs. (pip's ``pgserver`` was the alternative; as root it adds users and chmods, and it ships an old
build.) Each server gets its own data directory in /tmp, listens on 127.0.0.1 only, on a free port, with durability
off (fsync, synchronous_commit, full_page_writes) since its data is thrown away, and is removed by ``stop()``.

    with PostgresServer.start() as server:
        url = server.create_database("bench")   # postgresql://postgres@127.0.0.1:PORT/bench_…

No pytest here: benchmark scripts load this file too (``unavailable()`` says why a server cannot start on a machine).
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SERVER_USER = "postgres"  # the Debian package's user; initdb refuses to run as root
NOT_INSTALLED = "PostgreSQL server binaries not found; install the Debian package `postgresql` (.ci/run does)"
SETTINGS = "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
PORT_ATTEMPTS = 3  # a free port can be taken by another process before the server binds it


class PostgresUnavailable(RuntimeError):
    """The server cannot start on this machine; the message says why."""


def _as_root() -> bool:
    return os.name == "posix" and os.geteuid() == 0


def _server_account() -> tuple[int, int] | None:
    """The server user's uid and gid, None if there is no such user."""
    import pwd  # here: POSIX only, and needed only as root (conftest.py loads this file on every platform)

    try:
        entry = pwd.getpwnam(SERVER_USER)
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def _version(bindir: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", bindir.parent.name))


def find_bindir() -> Path | None:
    """The directory of initdb and pg_ctl: the newest Debian one, else pg_config's, else initdb's on PATH."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version, reverse=True)
    if pg_config := shutil.which("pg_config"):
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if result.returncode == 0 and result.stdout.strip():
            candidates.append(Path(result.stdout.strip()))
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).resolve().parent)
    return next((path for path in candidates if (path / "initdb").is_file() and (path / "pg_ctl").is_file()), None)


def unavailable() -> str | None:
    """Why a server cannot start here, or None if it can (initdb's own failure is raised by ``start()``)."""
    if find_bindir() is None:
        return NOT_INSTALLED
    if _as_root():
        if _server_account() is None:
            return f"running as root, which initdb refuses, and there is no `{SERVER_USER}` user to run it as"
        if shutil.which("runuser") is None:
            return f"running as root, which initdb refuses, and `runuser` (util-linux) is missing to run it as {SERVER_USER}"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class PostgresServer:
    """One running server; ``start()`` makes it, ``stop()`` (or leaving ``with``) ends it and deletes its files."""

    def __init__(self, bindir: Path, root: Path, port: int) -> None:
        self.bindir, self.root, self.port = bindir, root, port

    @classmethod
    def start(cls) -> PostgresServer:
        """Init and start a server; PostgresUnavailable (with the reason) if it cannot start here."""
        if reason := unavailable():
            raise PostgresUnavailable(reason)
        # Not under TMPDIR or pytest's tmp_path: their root-owned 0700 parents would shut the postgres user out.
        root = Path(tempfile.mkdtemp(prefix="labctl-pg.", dir="/tmp" if _as_root() else None))
        server = cls(find_bindir(), root, port=0)
        try:
            server._init()
            server._start()
        except BaseException:
            server.stop()  # also a server that pg_ctl gave up waiting for
            raise
        return server

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "log"

    def _run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bindir / program), *args]
        if _as_root():
            argv = ["runuser", "-u", SERVER_USER, "--", *argv]
        # cwd: the server user may not be allowed into ours
        return subprocess.run(argv, capture_output=True, text=True, cwd=self.root)

    def _init(self) -> None:
        if _as_root():
            os.chown(self.root, *_server_account())
        result = self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-sync", "-N"
        )
        if result.returncode:
            raise PostgresUnavailable(f"initdb failed (exit {result.returncode}):\n{_tail(result.stderr)}")

    def _start(self) -> None:
        for _ in range(PORT_ATTEMPTS):
            self.port = _free_port()
            options = f"-k {shlex.quote(str(self.root))} -p {self.port} {SETTINGS}"
            result = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "30", "-o", options, "start")
            if result.returncode == 0:
                return
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            if "could not bind" not in log:
                break
        raise PostgresUnavailable(f"pg_ctl start failed (exit {result.returncode}):\n{_tail(result.stderr + log)}")

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, prefix: str = "test") -> str:
        """A new, empty database named after ``prefix`` plus a random suffix; its URL."""
        import psycopg  # here, not at the top: conftest.py loads this file for every test run
        from psycopg import sql

        name = f"{re.sub(r'[^a-z0-9_]+', '_', prefix.lower()).strip('_')[:40]}_{secrets.token_hex(4)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def stop(self) -> None:
        """Stop at once (no checkpoint: the data is thrown away) and delete the directory; again is a no-op."""
        if self.root.exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
