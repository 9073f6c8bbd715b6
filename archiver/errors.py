"""Errors the core raises for the CLI to show as one line with a documented exit code."""

from __future__ import annotations


class ArchiverError(Exception):
    """A problem the user can fix; shown as one line, never as a traceback."""

    exit_code = 3

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message}; {self.fix}" if self.fix else self.message


class UsageProblem(ArchiverError):
    """Bad input from the user: a wrong path, a malformed setting, a non-collection."""

    exit_code = 2


class StorageProblem(ArchiverError):
    """The machine refused a write or a read (disk full, permissions)."""

    exit_code = 3
