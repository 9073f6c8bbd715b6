"""Listings written as they are read: `archiver claims` and `archiver captures` print their
first rows once the catalog has given a page of them, and hold a page, never the whole listing
(a newsroom's collection can hold a million claims)."""

from __future__ import annotations

import contextlib
import itertools
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

import click

from archiver.cli.common import json_text, print_table

ROWS_PER_TABLE = 500  # a listing no longer than this prints as one table, fitted to all its rows
_WRITE_AT = 64 * 1024  # characters of JSON gathered per write: one system call a few dozen claims, not one each

T = TypeVar("T")


def flattened(pages: Iterator[list[T]], expand: Callable[[list[T]], list] = list) -> contextlib.closing:
    """The items of `pages` (the catalog's claim_pages(), capture_pages()), each page `expand`ed
    (the claims given their captures), one by one, to use in `with`: a listing cut short (by a
    closed pipe) ends the catalog's reading there, before the catalog is closed under it."""
    return contextlib.closing(_items(pages, expand))


def _items(pages: Iterator[list[T]], expand: Callable[[list[T]], list]) -> Iterator:
    with contextlib.closing(pages):
        for page in pages:
            yield from expand(page)


def print_json_array(items: Iterable[Any]) -> None:
    """The JSON print_json writes for the list of `items`, character for character, written as
    the items come: each held only until written."""
    pending, size, first = ["["], 1, True
    for item in items:
        # indent=2 puts each of a list's items on lines of their own, indented by two more spaces;
        # a string's own line breaks are escapes, so every line break here is one of the layout's.
        text = ("\n" if first else ",\n") + "  " + json_text(item).replace("\n", "\n  ")
        pending.append(text)
        size, first = size + len(text), False
        if size >= _WRITE_AT:
            click.echo("".join(pending), nl=False)
            pending, size = [], 0
    pending.append("]" if first else "\n]")
    click.echo("".join(pending))


def print_listing(columns: Sequence[str], rows: Iterable[Sequence[Any]], whole: Sequence[str] = (),
                  empty: str | None = None) -> int:
    """print_table for a listing of any length, written as its rows come; how many rows there
    were. Up to ROWS_PER_TABLE rows are one table, as print_table prints them. Beyond, each
    ROWS_PER_TABLE rows are printed before the next are read: piped, under the one header line
    (the same lines as one table); on a terminal as a table of their own, with the header, its
    columns fitted to its rows (a table's widths need all its rows)."""
    rows = iter(rows)
    page = list(itertools.islice(rows, ROWS_PER_TABLE))
    print_table(columns, page, whole, empty)
    count = len(page)
    while page := list(itertools.islice(rows, ROWS_PER_TABLE)):
        print_table(columns, page, whole, continued=True)
        count += len(page)
    return count
