"""The `archiver` command line. Each command lives in its own module and stays thin:
parse options, call the core, render text or --json.

Exit codes: 0 success; 1 some targets failed or a check failed (everything else was
still saved); 2 bad usage or bad input; 3 the machine refused (disk, permissions);
130 interrupted (Ctrl-C or SIGTERM)."""

from __future__ import annotations

import functools
import importlib
import os
from pathlib import Path
from typing import Any

import click

from archiver import __version__
from archiver.cli.common import CONTEXT_SETTINGS, ArchiverGroup

# Command → the module defining it, and the first sentence of its help for `archiver --help`.
# Modules load when their command runs, so neither `--help` nor a listing pays for the bundle,
# timestamp and verification code (tests/test_cli_habits.py keeps each summary that sentence).
COMMANDS = {
    "init": ("archiver.cli.init:init", "Create a collection in FOLDER (default: -C, else here)."),
    "capture": ("archiver.cli.capture:capture", "Capture TARGETS: URLs, documents that cite URLs, or folders of documents."),
    "cite": ("archiver.cli.capture:cite", "Record a one-off CLAIM_TEXT citing URLS, and capture them."),
    "claims": ("archiver.cli.claims:claims", "List claims, each with the URLs it cites and how their newest capture ended."),
    "documents": ("archiver.cli.claims:documents", "List the documents read into claims: date, kind, claims, cited URLs, SHA-256."),
    "captures": ("archiver.cli.captures:captures", "List captures, oldest first: outcome, HTTP status, page verdict, size and detail."),
    "history": ("archiver.cli.captures:history", "List the captures of URL over time: status, payload digest, size, and what changed."),
    "show": ("archiver.cli.captures:show", "Show a claim or a capture in full."),
    "manifest": ("archiver.cli.manifest:manifest", "Export the signed manifest of the collection's documents, claims, captures and records."),
    "keys": ("archiver.cli.keys:keys", "Manage the collection's signing keys (Ed25519)."),
    "log": ("archiver.cli.log:log", "Show the custody log: every event with its time, operator, software and key."),
    "verify": ("archiver.cli.verify:verify", "Check the collection offline: its records, attestations, manifests and custody log."),
    "bundle": ("archiver.cli.bundle:bundle", "Export the captures behind a selection as one WACZ file, to be verified offline."),
    "verify-bundle": ("archiver.cli.verify_bundle:verify_bundle_command", "Check BUNDLE (a .wacz) offline, with no collection."),
    "import": ("archiver.cli.importing:import_command", "Import SOURCE (a .warc, .warc.gz or .wacz made by wget, Browsertrix, ArchiveWeb.page…)."),
    "doctor": ("archiver.cli.doctor:doctor", "Find what an interrupted run left, and with --fix repair it."),
    "worker": ("archiver.cli.worker:worker", "Take capture jobs from the collection's queue and capture them."),
    "queue": ("archiver.cli.queue:queue", "Show the collection's capture jobs: queued, running, stalled, stopping, done, failed, and retried."),
    "migrate": ("archiver.cli.migrate:migrate", "Copy the collection into a shared one: a PostgreSQL catalog and an S3 bucket."),
}


class LazyGroup(ArchiverGroup):
    def make_context(self, info_name, args, parent=None, **extra) -> click.Context:
        if any(arg == "" or (arg.startswith("--") and arg.endswith("=")) for arg in args):
            from archiver.cli.empty_arguments import refuse_empty  # loaded only when an argument may be empty
            refuse_empty(self, info_name, args)
        return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        from archiver.cli.interrupts import terminating_as_interrupted  # when a command runs, not for --help

        with terminating_as_interrupted():  # around ArchiverGroup's, which tells an interruption in one line
            return super().invoke(ctx)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name][0].split(":")
        return getattr(importlib.import_module(module), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, summary) for name, (_, summary) in COMMANDS.items()])


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

    Every command but verify-bundle takes -C/--collection DIR (or $ARCHIVER_COLLECTION);
    without it, the collection is the one the current folder is in, as git finds its repository.
    Exit codes: 0 ok, 1 some targets failed or a check failed, 2 bad usage, 3 disk or permission
    error, 130 interrupted (Ctrl-C or SIGTERM), 141 output closed early (as by `| head`).
    """
    if directory is not None:
        ctx.call_on_close(functools.partial(os.chdir, os.getcwd()))  # for callers in this process, as tests
        os.chdir(directory)


def main() -> None:
    cli.main(prog_name="archiver")
