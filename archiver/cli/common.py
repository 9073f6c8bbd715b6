"""What every command shares: the collection option, error rendering, JSON output."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from archiver.errors import ArchiverError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class OneLineUsageError(click.UsageError):
    """Bad usage told as every other error is: one line, what is wrong and where the help is
    (click's own telling takes four: usage, hint, blank line, error)."""

    def show(self, file=None) -> None:
        message = " ".join(self.format_message().split()).removesuffix(".")
        if self.ctx is not None:
            message = f"{self.ctx.command_path}: {message}; see '{self.ctx.command_path} --help'"
        click.echo(f"error: {message}", file=file, err=True)


def _in_one_line(error: click.UsageError) -> click.UsageError:
    if isinstance(error, (OneLineUsageError, click.exceptions.NoArgsIsHelpError)):  # the latter shows the help
        return error
    return OneLineUsageError(error.format_message(), error.ctx)


class ArchiverGroup(click.Group):
    """Shows every error as one line with its exit code; a traceback only with ARCHIVER_DEBUG=1."""

    def make_context(self, info_name, args, parent=None, **extra) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:  # in the options before the command's name
            raise _in_one_line(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:  # an unknown command, or in the command's own arguments
            raise _in_one_line(exc) from None
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except ArchiverError as exc:
            self._fail(ctx, str(exc), exc.exit_code)
        except BrokenPipeError:
            # The reader went away (`archiver claims | head`): nothing to say, and nothing more to write.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(141)
        except (OSError, sqlite3.OperationalError) as exc:
            self._fail(ctx, refusal(exc), 3)
        except Exception as exc:
            if os.environ.get("ARCHIVER_DEBUG"):
                raise
            self._fail(ctx, f"internal error: {type(exc).__name__}: {exc} (set ARCHIVER_DEBUG=1 for details)", 3)

    @staticmethod
    def _fail(ctx: click.Context, message: str, code: int) -> None:
        click.echo(f"error: {message}", err=True)
        ctx.exit(code)


READ_ONLY_HINT = "reading and verifying work on a read-only collection; to change it, make it writable or copy it"
_HINTS = {errno.ENOSPC: "free space on that disk, then run `archiver doctor --fix`",
          errno.EDQUOT: "free space within your quota, then run `archiver doctor --fix`",
          errno.EROFS: READ_ONLY_HINT, errno.EACCES: "check the permissions of that path",
          errno.EPERM: "check the permissions of that path", errno.EIO: "the disk reported an error: check it, "
          "then run `archiver doctor --fix`"}


def refusal(exc: OSError | sqlite3.OperationalError) -> str:
    """One line for what the machine refused, with what to do about it."""
    if isinstance(exc, sqlite3.OperationalError):
        hint = READ_ONLY_HINT if "readonly" in str(exc) else "check the disk and the catalog's permissions"
        return f"the catalog refused a change: {exc}; {hint}"
    where = f": {exc.filename}" if exc.filename else ""
    hint = _HINTS.get(exc.errno)
    return f"{exc.strerror or exc}{where}" + (f"; {hint}" if hint else "")


def collection_option(function):
    return click.option(
        "-C", "--collection", "collection_dir", envvar="ARCHIVER_COLLECTION", default=".",
        type=click.Path(file_okay=False, path_type=Path), show_default="current folder",
        help="Collection folder (also $ARCHIVER_COLLECTION).")(function)


def key_option(function):
    return click.option("--key", "key_file", type=click.Path(dir_okay=False, path_type=Path),
                        help="The collection's private signing key (default: $ARCHIVER_KEY, else the user's config folder).")(function)


def passphrase(confirm: bool = False, ask: bool = True) -> bytes | None:
    """$ARCHIVER_PASSPHRASE, else a hidden prompt on a terminal; never a command-line argument."""
    if "ARCHIVER_PASSPHRASE" in os.environ:
        return os.environ["ARCHIVER_PASSPHRASE"].encode("utf-8") or None
    if ask and sys.stdin.isatty():
        return click.prompt("Key passphrase (empty for none)" if confirm else "Key passphrase", default="",
                            hide_input=True, confirmation_prompt=confirm, show_default=False).encode("utf-8") or None
    return None


def signing_key(collection, key_file: Path | None, revoked_ok: bool = False):
    """The collection's key, asking for its passphrase only when it is encrypted; refused when
    the custody log has rotated it out or (unless revoked_ok) revoked it."""
    from archiver.evidence.keys import key_path, open_signing_key, refuse_out_of_service

    path = key_path(collection, key_file)
    encrypted = path.is_file() and b"ENCRYPTED" in path.read_bytes()[:64]
    key = open_signing_key(collection, key_file, passphrase() if encrypted else None)
    refuse_out_of_service(collection, key, revoked_ok)
    return key


def json_option(function):
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for machines instead of text.")(function)



def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def console(stderr: bool = False) -> Console:
    """Rich output; when piped to a file, wide enough that tables do not fold URLs."""
    probe = Console(stderr=stderr)
    return Console(stderr=stderr, highlight=False, width=None if probe.is_terminal else 200)


def human_size(count: int | None) -> str:
    if count is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return str(count)
