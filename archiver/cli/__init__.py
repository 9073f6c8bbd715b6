"""The `archiver` command line. Each command lives in its own module and stays thin:
parse options, call the core, render text or --json.

Exit codes: 0 success; 1 some targets failed or a check failed (everything else was
still saved); 2 bad usage or bad input; 3 the machine refused (disk, permissions);
130 interrupted."""

from __future__ import annotations

import functools
import importlib
import os
import sys
from pathlib import Path

import click

from archiver import __version__
from archiver.cli.common import CONTEXT_SETTINGS, ArchiverGroup

# Command → the module defining it. Modules load when their command runs, so `archiver
# capture` does not pay for the bundle, timestamp and verification code at start-up.
COMMANDS = {
    "init": "archiver.cli.init:init",
    "capture": "archiver.cli.capture:capture",
    "cite": "archiver.cli.capture:cite",
    "claims": "archiver.cli.claims:claims",
    "documents": "archiver.cli.claims:documents",
    "captures": "archiver.cli.captures:captures",
    "history": "archiver.cli.captures:history",
    "show": "archiver.cli.captures:show",
    "manifest": "archiver.cli.manifest:manifest",
    "keys": "archiver.cli.keys:keys",
    "log": "archiver.cli.log:log",
    "verify": "archiver.cli.verify:verify",
    "bundle": "archiver.cli.bundle:bundle",
    "verify-bundle": "archiver.cli.verify_bundle:verify_bundle_command",
    "import": "archiver.cli.importing:import_command",
    "doctor": "archiver.cli.doctor:doctor",
}


class LazyGroup(ArchiverGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attribute)


@click.group(cls=LazyGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="archiver")
@click.option("-C", "directory", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Run as if archiver was started in DIR (as git -C, make -C and tar -C): paths are read "
                   "from there, and the collection is DIR or the one DIR is in.")
@click.pass_context
def cli(ctx: click.Context, directory: Path | None) -> None:
    """Preserve the web pages that claims cite, as byte-exact WARC evidence.

    \b
    Start with:  archiver capture seeds/        (creates a collection here)
    Then:        archiver claims                 (each claim and its captures)
                 archiver claims --uncaptured    (what still needs capturing)
                 archiver show ID                (one claim or capture in full)

    Every command takes -C/--collection DIR (or $ARCHIVER_COLLECTION); without it, the
    collection is the one the current folder is in, as git finds its repository.
    Exit codes: 0 ok, 1 some targets failed, 2 bad usage, 3 disk or permission error.
    """
    if directory is not None:
        ctx.call_on_close(functools.partial(os.chdir, os.getcwd()))  # for callers in this process, as tests
        os.chdir(directory)


def main() -> None:
    try:
        cli.main(prog_name="archiver")
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
