"""Asking the person at the terminal for a key's passphrase. Ctrl-C and end of input there mean
what they mean everywhere else in archiver (interrupted, exit 130; nothing given, exit 2), not
click's "Aborted!" and exit 1, which this command line gives to failed captures and checks."""

from __future__ import annotations

import click

from archiver.errors import UsageProblem


def ask_passphrase(confirm: bool) -> bytes | None:
    """The passphrase typed, hidden (twice when `confirm`); None when left empty."""
    try:
        typed = click.prompt("Key passphrase (empty for none)" if confirm else "Key passphrase", default="",
                             hide_input=True, confirmation_prompt=confirm, show_default=False)
    except click.Abort as abort:
        # click raises Abort for both, from inside the handler: the one it caught is its context.
        if isinstance(abort.__context__, KeyboardInterrupt):
            raise KeyboardInterrupt from None
        raise UsageProblem("no passphrase was given: the input ended at the prompt",
                           "type it at the prompt, or set $ARCHIVER_PASSPHRASE") from None
    return typed.encode("utf-8") or None
