"""The `archiver` command line. Each command lives in its own module and stays thin:
parse options, call the core, render text or --json.

Exit codes: 0 success; 1 some targets failed or a check failed (everything else was
still saved); 2 bad usage or bad input; 3 the machine refused (disk, permissions);
130 interrupted."""

from __future__ import annotations

import os
import sys

import click

from archiver import __version__
from archiver.cli.bundle import bundle
from archiver.cli.capture import capture, cite
from archiver.cli.captures import captures, history, show
from archiver.cli.claims import claims, documents
from archiver.cli.common import CONTEXT_SETTINGS, ArchiverGroup
from archiver.cli.importing import import_command
from archiver.cli.init import init
from archiver.cli.keys import keys
from archiver.cli.log import log
from archiver.cli.manifest import manifest
from archiver.cli.verify import verify
from archiver.cli.verify_bundle import verify_bundle_command


@click.group(cls=ArchiverGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="archiver")
def cli() -> None:
    """Preserve the web pages that claims cite, as byte-exact WARC evidence.

    \b
    Start with:  archiver capture seeds/        (creates a collection here)
    Then:        archiver claims                 (each claim and its captures)
                 archiver claims --uncaptured    (what still needs capturing)
                 archiver show ID                (one claim or capture in full)

    Every command takes -C/--collection DIR (or $ARCHIVER_COLLECTION).
    Exit codes: 0 ok, 1 some targets failed, 2 bad usage, 3 disk or permission error.
    """


for command in (init, capture, cite, claims, documents, captures, history, show, manifest, keys, log, verify, bundle,
                verify_bundle_command, import_command):
    cli.add_command(command)


def main() -> None:
    try:
        cli.main(prog_name="archiver")
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
