"""A throwaway PostgreSQL 15 cluster for the tests: made in a temporary folder, listening on
127.0.0.1 only (and a socket in that folder), stopped when the session ends; one fresh
database per test that asks for one. As root the server runs as the `postgres` user, since
initdb and pg_ctl refuse to run as root."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

BIN = Path(os.environ.get("ARCHIVER_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def missing() -> str | None:
    """Why no cluster can be made here, or None."""
    if not (BIN / "initdb").exists():
        return f"PostgreSQL 15 server binaries not found in {BIN} (install the Debian package postgresql)"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "runuser is needed to run PostgreSQL as the postgres user"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'psycopg[binary]')"
    return None


class Cluster:
    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="archiver-pg-"))
        self.data = self.folder / "data"
        self._names = itertools.count(1)
        self.port = _free_port()
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(BIN / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
        for attempt in range(3):  # the port was free when chosen; another process may bind it first
            try:
                self._run(BIN / "pg_ctl", "-D", self.data, "-l", self.folder / "server.log", "-w", "-o",
                          f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
                break
            except subprocess.CalledProcessError:
                if attempt == 2:
                    raise
                self.port = _free_port()

    def _run(self, *args) -> None:
        command = [str(a) for a in args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=self.folder)

    def url(self, database: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """The URL of a new, empty database."""
        import psycopg
        name = f"test_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def reload(self) -> None:
        """Re-read pg_hba.conf and the settings."""
        self._run(BIN / "pg_ctl", "-D", self.data, "reload")

    def stop(self) -> None:
        self._run(BIN / "pg_ctl", "-D", self.data, "-m", "immediate", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
