"""What every command shares: the collection option, error rendering, JSON output."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

import click

from archiver.errors import ArchiverError
from archiver.store.database import STATEMENT_REFUSED_HINT

if TYPE_CHECKING:
    from rich.console import Console

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


JSON_WANTED = "archiver.json"  # in click's context meta, which a command's context shares with its parents'


def wants_json(args: Sequence[str]) -> bool:
    """Whether --json is among the arguments (before any `--`), read before they are parsed so
    that an error in parsing them is told in JSON too."""
    return "--json" in (args[:args.index("--")] if "--" in args else args)


def report_error(message: str, exit_code: int, as_json: bool) -> None:
    """One line on stderr: `error: …`, or under --json {"error": …, "exit_code": N}."""
    if as_json:
        click.echo(json.dumps({"error": message, "exit_code": exit_code}, ensure_ascii=False).translate(_JSON_CONTROLS),
                   err=True)
    else:
        echo(f"error: {one_line(message)}", err=True)  # a line break in a name given cannot print a line of its own


class OneLineUsageError(click.UsageError):
    """Bad usage told as every other error is: one line, what is wrong and where the help is
    (click's own telling takes four: usage, hint, blank line, error)."""

    def __init__(self, message: str, ctx: click.Context | None, as_json: bool) -> None:
        super().__init__(message, ctx)
        self.as_json = as_json

    def show(self, file=None) -> None:
        message = " ".join(self.format_message().split()).removesuffix(".")
        if self.ctx is not None:
            message = f"{self.ctx.command_path}: {message}; see '{self.ctx.command_path} --help'"
        report_error(message, self.exit_code, self.as_json)


def _in_one_line(error: click.UsageError, as_json: bool) -> click.UsageError:
    if isinstance(error, (OneLineUsageError, click.exceptions.NoArgsIsHelpError)):  # the latter shows the help
        return error
    return OneLineUsageError(error.format_message(), error.ctx, as_json)


class ArchiverGroup(click.Group):
    """Shows every error as one line with its exit code; a traceback only with ARCHIVER_DEBUG=1."""

    def make_context(self, info_name, args, parent=None, **extra) -> click.Context:
        as_json = wants_json(args)
        try:
            ctx = super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:  # in the options before the command's name
            raise _in_one_line(exc, as_json) from None
        ctx.meta[JSON_WANTED] = as_json
        return ctx

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:  # an unknown command, or in the command's own arguments
            raise _in_one_line(exc, ctx.meta.get(JSON_WANTED, False)) from None
        except (click.exceptions.Exit, click.Abort):
            raise
        except click.ClickException as exc:
            self._fail(ctx, exc.format_message(), exc.exit_code)
        except ArchiverError as exc:
            self._fail(ctx, str(exc), exc.exit_code)
        except KeyboardInterrupt:  # here, before click's own handling makes it "Aborted!" and exit 1
            self._fail(ctx, "interrupted", 130)
        except BrokenPipeError:
            # The reader went away (`archiver claims | head`): nothing to say, and nothing more to write.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(141)
        except (OSError, sqlite3.OperationalError) as exc:
            self._fail(ctx, refusal(exc), 3)
        except Exception as exc:
            if os.environ.get("ARCHIVER_DEBUG"):
                raise
            if (lost := _server_went_away(exc)) is not None:
                self._fail(ctx, f"the PostgreSQL server failed: {lost}; check that it is running and reachable, "
                                "then run the command again", 3)
            self._fail(ctx, f"internal error: {type(exc).__name__}: {exc} (set ARCHIVER_DEBUG=1 for details)", 3)

    @staticmethod
    def _fail(ctx: click.Context, message: str, code: int) -> None:
        report_error(message, code, ctx.meta.get(JSON_WANTED, False))
        ctx.exit(code)


def _server_went_away(exc: BaseException | None) -> BaseException | None:
    """The psycopg OperationalError (a PostgreSQL connection lost or refused) in the middle of a
    command, itself or as what procrastinate's ConnectorException wraps: the machine, not a bug.
    Told by class, not imported: a command on a local collection never loads either."""
    while exc is not None:
        names = {(cls.__module__.partition(".")[0], cls.__name__) for cls in type(exc).__mro__}
        if ("psycopg", "OperationalError") in names:
            return exc
        if ("procrastinate", "ConnectorException") not in names:
            return None
        exc = exc.__cause__  # its own text is a docstring ("Database error."); the cause says what
    return None


READ_ONLY_HINT = "reading and verifying work on a read-only collection; to change it, make it writable or copy it"
_HINTS = {errno.ENOSPC: "free space on that disk, then run `archiver doctor --fix`",
          errno.EDQUOT: "free space within your quota, then run `archiver doctor --fix`",
          errno.EROFS: READ_ONLY_HINT, errno.EACCES: "check the permissions of that path",
          errno.EPERM: "check the permissions of that path", errno.EIO: "the disk reported an error: check it, "
          "then run `archiver doctor --fix`"}


def refusal(exc: OSError | sqlite3.OperationalError) -> str:
    """One line for what the machine refused, with what to do about it."""
    if isinstance(exc, sqlite3.OperationalError):  # ERROR, TOOBIG: the statement itself, past a limit, not the disk
        hint = (READ_ONLY_HINT if "readonly" in str(exc) else STATEMENT_REFUSED_HINT if exc.sqlite_errorcode in
                (sqlite3.SQLITE_ERROR, sqlite3.SQLITE_TOOBIG) else "check the disk and the catalog's permissions")
        return f"the catalog refused a change: {exc}; {hint}"
    where = f": {exc.filename}" if exc.filename else ""
    hint = _HINTS.get(exc.errno)
    return f"{exc.strerror or exc}{where}" + (f"; {hint}" if hint else "")


def _collection_folder(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path:
    from archiver.cli.new_collection import collection_folder  # the store's code: loaded once a command runs

    return collection_folder(value, ctx.get_parameter_source(param.name))


def collection_option(function=None, *, upwards: bool = True):
    """-C/--collection; `upwards=False` (for `init`) takes the current folder itself by default."""
    if function is None:
        return lambda function: collection_option(function, upwards=upwards)
    return click.option(
        "-C", "--collection", "collection_dir", envvar="ARCHIVER_COLLECTION",
        callback=_collection_folder if upwards else None, default=None if upwards else ".",
        type=click.Path(file_okay=False, path_type=Path),
        show_default="the collection the current folder is in, else the current folder" if upwards else "current folder",
        help="Collection folder (also $ARCHIVER_COLLECTION).")(function)


def key_option(function):
    return click.option("--key", "key_file", type=click.Path(dir_okay=False, path_type=Path),
                        help="The collection's private signing key (default: $ARCHIVER_KEY, else the user's config folder).")(function)


def retention_options(function):
    """--require-retention and --min-retention-days: how a shared collection's bucket must lock
    what it stores (see storage_settings)."""
    function = click.option("--min-retention-days", type=click.IntRange(min=1), metavar="DAYS",
                            help="With --require-retention: refuse a bucket whose default retention is shorter; "
                                 "written into archiver.toml.")(function)
    return click.option("--require-retention", type=click.Choice(["COMPLIANCE"]),
                        help="Refuse an S3 bucket whose Object Lock default retention is missing or not in this mode "
                             "(GOVERNANCE can be lifted, so it is not asked for); written into archiver.toml, so every "
                             "command checks it.")(function)


def storage_settings(storage_url: str | None, require_retention: str | None, min_retention_days: int | None):
    """The [storage] settings --storage and the retention_options give (None: the warcs/ folder);
    a UsageProblem naming the option that is wrong."""
    from archiver.errors import UsageProblem
    from archiver.store.storage_settings import URL_FORM, StorageSettings, split_url

    if min_retention_days and not require_retention:
        raise UsageProblem("--min-retention-days says how long, --require-retention in which mode: it needs both",
                           "add --require-retention COMPLIANCE")
    if not storage_url:
        if require_retention:
            raise UsageProblem("--require-retention is asked of an S3 bucket, and no --storage names one",
                               f"add --storage {URL_FORM}")
        return None
    try:
        split_url(storage_url)
    except ValueError as exc:
        raise UsageProblem(str(exc), f"pass --storage {URL_FORM}") from None
    return StorageSettings(url=storage_url, require_retention=require_retention,
                           min_retention_days=min_retention_days or 0)


def passphrase(confirm: bool = False, ask: bool = True) -> bytes | None:
    """$ARCHIVER_PASSPHRASE, else a hidden prompt on a terminal; never a command-line argument."""
    if "ARCHIVER_PASSPHRASE" in os.environ:
        return os.environ["ARCHIVER_PASSPHRASE"].encode("utf-8") or None
    if ask and sys.stdin.isatty():
        from archiver.cli.prompts import ask_passphrase  # loaded only when a key asks for its passphrase
        return ask_passphrase(confirm)
    return None


def signing_key(collection, key_file: Path | None, revoked_ok: bool = False):
    """The collection's key, asking for its passphrase only when it is encrypted; refused when
    the custody log has rotated it out or (unless revoked_ok) revoked it."""
    from archiver.evidence.keys import finish_rotation, key_path, open_signing_key, refuse_out_of_service

    path = key_path(collection, key_file)
    finish_rotation(collection, path)  # before looking whether the key there is encrypted
    encrypted = path.is_file() and b"ENCRYPTED" in path.read_bytes()[:64]
    key = open_signing_key(collection, key_file, passphrase() if encrypted else None)
    refuse_out_of_service(collection, key, revoked_ok)
    return key


# Beside the readers this process checks the custody log, the manifests and the attestations
# and hashes each file whole: a reader for every other core keeps them all busy without crowding
# them (on 2 cores, 2 readers took 5% longer than 1 on 700 MB, and 3% longer on 160 MB).
DEFAULT_READERS = max(1, (os.cpu_count() or 1) - 1)


def workers_option(help_text: str):
    return click.option("--workers", type=click.IntRange(1, 64), default=DEFAULT_READERS,
                        show_default="one fewer than the cores, at least 1", help=help_text)


def output_option(help_text: str, required: bool = False):
    """-o/--output FILE: a file in a folder that must exist, refused (exit 2) before any work
    is done or signed, never after."""
    return click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=required,
                        callback=_in_a_folder, help=help_text)


def _in_a_folder(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    if value is not None and not value.parent.is_dir():
        raise click.BadParameter(f"there is no folder {value.parent}: create it first, or write elsewhere")
    return value


def json_option(function):
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for machines instead of text.")(function)


# Every control character but newline and tab: ESC starts a sequence a terminal obeys (recolour,
# retitle, clear, move the cursor), carriage return sends it back over what was printed (a
# "FAILED" overwritten by "passed"), and C1 controls are single-character ESC sequences to some.
_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7f, *range(0x80, 0xa0)) if code not in (0x09, 0x0a)}
# Text that reads as other text than it is: bidirectional controls reorder what follows them
# on screen ("Trojan Source"); a zero-width space shows nothing (`/a\u200bb` reads as `/ab`).
_MISREADING = (0x061c, 0x200e, 0x200f, *range(0x202a, 0x202f), *range(0x2066, 0x206a), 0x200b, 0x2060, 0xfeff)
_CONTROLS |= {code: f"\\u{code:04x}" for code in _MISREADING}
# In JSON, as \u escapes (JSON escapes C0 itself): the same strings, none obeyed by a terminal.
_JSON_CONTROLS = {code: f"\\u{code:04x}" for code in (0x7f, *range(0x80, 0xa0), *_MISREADING)}


def literal(text: str) -> str:
    """Text as a terminal may print it: each control character shown as an escape (\\x1b),
    for text from documents, servers, file names and users."""
    return text.translate(_CONTROLS)


def one_line(name: str) -> str:
    """A name from outside (a file's, a document's key) kept on its line: its line breaks and tabs
    shown as escapes too, so that no name can print a line of its own ("…\nverified: ok")."""
    return name.translate(_LINE_BREAKS)


_LINE_BREAKS = {0x0A: "\\n", 0x09: "\\t"}


def echo(message: str, err: bool = False) -> None:
    """click.echo for a message that may hold outside text: printed literally (see literal)."""
    click.echo(literal(message), err=err)


def remark(message: str) -> None:
    """A line beside a listing (a count, where a key is): on a terminal after it, piped on
    stderr, so that a listing piped is its header and rows alone."""
    echo(message, err=not _stdout_is_terminal())


def print_json(data: Any) -> None:
    click.echo(json_text(data))


def json_text(data: Any) -> str:
    # Such characters can only be inside JSON strings, where their \u escapes mean the same.
    return json.dumps(data, indent=2, ensure_ascii=False, default=str).translate(_JSON_CONTROLS)


@contextlib.contextmanager
def working(what: str, shown: bool) -> Iterator[Callable[[str], None]]:
    """While long work runs, a bar on stderr saying `what` and the step under way (each given
    to the function yielded); nothing when not `shown` (see shows_progress)."""
    if not shown:
        yield lambda step: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn(what, markup=False), BarColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}", markup=False), console=console(stderr=True), transient=True) as bar:
        task = bar.add_task("", total=None)
        yield lambda step: bar.update(task, description=literal(step))


def shows_progress(as_json: bool) -> bool:
    """Whether long work shows a progress bar: on a terminal, and not under --json."""
    return not as_json and console(stderr=True).is_terminal


def console(stderr: bool = False) -> Console:
    """Rich output: fitted to a terminal; piped, each line whole however long."""
    from archiver.cli.literal_console import LiteralConsole

    probe = LiteralConsole(stderr=stderr)
    return LiteralConsole(stderr=stderr, highlight=False, emoji=False, soft_wrap=not probe.is_terminal)


_ONE_LINE = str.maketrans({"\t": " ", "\n": " | ", "\r": " "})  # a row, one line of the pipe; a cell's lines apart


def print_table(columns: Sequence[str], rows: Iterable[Sequence[str | None]], whole: Sequence[str] = (),
                empty: str | None = None, continued: bool = False) -> None:
    """Every listing's table. On a terminal the columns named in `whole` (ids, URLs, digests)
    are never broken: the table grows wider than the terminal rather than break one, and other
    text wraps between words; with no rows, `empty` says so instead. Piped, a header line then
    one tab-separated line per row, and nothing else (`empty` goes to stderr); `continued`, a
    later page of one listing (cli.listing): piped, its rows alone. Cells are printed
    literally, never read as markup nor obeyed as control characters; a cell's lines (several
    URLs) share its row, piped joined by " | "."""
    cells = [["-" if value in (None, "") else literal(str(value)) for value in row] for row in rows]
    if not cells and empty is not None:
        remark(empty)
        if _stdout_is_terminal():
            return
    if not _stdout_is_terminal():
        for line in cells if continued else [list(columns), *cells]:
            click.echo("\t".join(value.translate(_ONE_LINE) for value in line))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    out = Console(highlight=False, emoji=False)  # ":fire:" in a claim is printed as written
    table = Table(show_edge=False, pad_edge=False, show_lines=any("\n" in value for row in cells for value in row))
    widths = [_least_width(name, [row[i] for row in cells], name in whole) for i, name in enumerate(columns)]
    for name, width in zip(columns, widths):
        table.add_column(name, no_wrap=name in whole, overflow="fold", min_width=width)
    for row in cells:
        table.add_row(*(Text(value) for value in row))
    needed = sum(widths) + 3 * (len(widths) - 1)  # a rule and a space either side between columns
    if needed > out.width:
        out = Console(highlight=False, emoji=False, width=needed)
    out.print(table)


def _stdout_is_terminal() -> bool:
    """As rich decides it ($TTY_COMPATIBLE, $FORCE_COLOR, else isatty), without loading rich,
    which a piped listing does not need."""
    forced = os.environ.get("TTY_COMPATIBLE", "")
    if forced in ("0", "1"):
        return forced == "1"
    if os.environ.get("FORCE_COLOR"):
        return True
    return sys.stdout is not None and sys.stdout.isatty()  # None: started with its output closed (`>&-`)


def _least_width(header: str, values: list[str], whole: bool) -> int:
    """A column's narrowest: its longest line when whole, else enough for a few words, and never
    narrower than a word of its header."""
    lines = [line for value in values for line in value.splitlines()] or [""]
    longest = max(map(len, lines))
    return max(longest if whole else min(longest, 20), *(len(word) for word in header.split()))


def human_size(count: int | None) -> str:
    if count is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return str(count)
