"""A process killed as it commits its Nth transaction to a SQLite catalog (os._exit: no cleanup,
as SIGKILL would): the transactions before are in the catalog, that one and those after never
are. The file operations tests/faults.py counts do not see SQLite's own writes, so this is how
a command is stopped between two of its catalog transactions.

    python -m tests.catalog_kills N archiver-arguments...      (N = 0: never kill)

On exit without a kill it prints how many commits the command made."""

from __future__ import annotations

import os
import sqlite3
import sys

from tests.faults import KILLED, run_archiver


def main() -> None:
    kill_at, arguments = int(sys.argv[1]), sys.argv[2:]
    commits = 0
    connect = sqlite3.connect

    def killing_connect(*args, **kwargs) -> sqlite3.Connection:
        connection = connect(*args, **kwargs)

        def trace(statement: str) -> None:  # called as each statement starts, before it runs
            nonlocal commits
            if statement.lstrip().upper().startswith("COMMIT"):
                commits += 1
                if commits == kill_at:
                    os._exit(KILLED)
        connection.set_trace_callback(trace)
        return connection

    sqlite3.connect = killing_connect
    run_archiver(arguments, "catalog commits", lambda: commits)


if __name__ == "__main__":
    main()
