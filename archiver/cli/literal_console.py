"""The rich console every command prints through, which shows outside text literally."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from archiver.cli.common import literal


class LiteralConsole(Console):
    """A rich Console whose printed strings have their control characters shown as escapes:
    rich adds its own styles afterwards, and a string's markup (`[red]`) is still read where
    the caller asks for it, outside text being escaped there with rich's `escape`."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        super().print(*(literal(o) if isinstance(o, str) else o for o in objects), **kwargs)

    def on_broken_pipe(self) -> None:
        """The reader went away (`archiver verify | head -1`): raised on, for the command to end
        with 141 as every other write to a closed pipe does; rich would exit 1, a verdict's code."""
        self.quiet = True
        raise BrokenPipeError
