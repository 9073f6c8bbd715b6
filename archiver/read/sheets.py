"""Claim sheets, CSV and JSONL: one claim per row, with the URLs offered as its evidence.

A row's text is its claim cell, not a slice of the file: its span is the whole row, so its
Passage says verbatim=False."""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import re
from typing import Any, Iterable, Iterator

from archiver.errors import UsageProblem
from archiver.read.citations import Digests
from archiver.read.links import find_links
from archiver.read.model import ROW
from archiver.read.reading import Passage, Reading
from archiver.read.text import LINE

REQUIRED_COLUMNS = ("claim", "url")
EXTRA_COLUMNS = ("id", "date", "source", "notes")
DELIMITERS = (",", ";", "\t")
# Excel's first line declaring the delimiter: "sep=;".
_DELIMITER_DECLARED = re.compile(r"sep=([^\r\n])[ \t]*[\r\n]*", re.IGNORECASE)
_URL_SEPARATOR = re.compile(r"[,;|](?=https?://)", re.IGNORECASE)
# After a URL not ended by punctuation, one space on the same line, then what could be the
# rest of its path (a letter, a digit, a path's punctuation): a URL a space cut. Not a remark
# beside it ("https://x.example/a - archived", "…/report, page 4", "(archived)", a new line).
_CUT_BY_A_SPACE = re.compile(r"(?<![,;.:!?)\]])[^\S\n\r][\w/%~?&=#+]\S*")
# The csv module's default cap of 128 KiB a cell ended a sheet at a long cell, or at an unclosed
# quote anywhere in a big one. A cell is never bigger than its file.
csv.field_size_limit(2**31 - 1)
SHEET_SUFFIXES = (".csv", ".tsv", ".jsonl")


def read_csv(text: str, name: str) -> Reading:
    """A header row naming the columns, then one claim per row: see `csv_passages`."""
    reading = Reading(kind="csv")
    reading.passages = list(csv_passages(_lines(text), name, reading.warnings))
    return reading


def read_jsonl(text: str, name: str) -> Reading:
    """One JSON object per line: see `jsonl_passages`."""
    reading = Reading(kind="jsonl")
    reading.passages = list(jsonl_passages(_lines(text), name, reading.warnings))
    return reading


def _lines(text: str) -> Iterator[str]:
    return (line.group() for line in LINE.finditer(text))


class _Pulled:
    """The lines of a sheet as the csv reader pulls them, kept with their numbers and offsets
    until taken: those of the row it has just read (quoted cells may hold line breaks)."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = iter(lines)
        self.number = 0    # of the last line pulled, from 1
        self._offset = 0   # where the next line starts, in characters
        self.taken: list[tuple[int, str]] = []   # (offset, line) since the last take

    def __iter__(self) -> "_Pulled":
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.number += 1
        self.taken.append((self._offset, line))
        self._offset += len(line)
        return line

    def take(self) -> list[tuple[int, str]]:
        taken, self.taken = self.taken, []
        return taken


def csv_passages(lines: Iterable[str], name: str, warnings: list[str]) -> Iterator[Passage]:
    """The rows of a CSV sheet given as its lines (each with its line break), read one at a time,
    so a sheet of any size is never held whole. The delimiter is whichever of comma, semicolon
    and tab the header row uses most (comma on a tie). Each warning is appended to `warnings`."""
    pulled = _Pulled(lines)
    header = next((line for line in pulled if line.strip()), None)
    if header is not None and (declared := _DELIMITER_DECLARED.fullmatch(header)):
        header = next((line for line in pulled if line.strip()), None)
    if header is None:
        return
    header_number = pulled.number
    pulled.take()
    delimiter = declared[1] if declared else max(DELIMITERS, key=header.count)
    reader = csv.reader(itertools.chain([header], pulled), delimiter=delimiter)
    done = header_number - 1  # lines read into whole rows (the header one) so far
    ids = _RowIds()
    try:
        columns = [column.strip().lower() for column in next(reader)]
        _require_columns(columns, name)
        for twice in sorted({column for column in columns if column and columns.count(column) > 1}):
            warnings.append(f"line {header_number}: the column {twice!r} is named more than once: only the first is read")
        done = pulled.number
        pulled.take()
        for cells in reader:
            first, row_lines = done + 1, pulled.take()
            done = pulled.number
            if any(cell.strip() for cell in cells):
                fields: dict[str, Any] = {}
                for column, cell in zip(columns, cells):
                    fields.setdefault(column, cell)
                _warn_swallowed_rows(warnings, [line for _, line in row_lines], first, delimiter, columns.index("url"))
                _warn_cells_past_header(warnings, cells, len(columns), first, delimiter)
                last_start, last = row_lines[-1]
                ids.check(fields, first, warnings)
                passage = _row(warnings, fields, row_lines[0][0], last_start + len(last.rstrip("\r\n")), first)
                if passage is not None:
                    yield passage
    except csv.Error as exc:
        warnings.append(f"line {done + 1}: {exc}; the rest of the sheet was not read")


def _warn_swallowed_rows(warnings: list[str], row_lines: list[str], first: int, delimiter: str, url_at: int) -> None:
    """A quoted cell may hold line breaks; but when the lines it takes in look like rows of their
    own (a URL in the url column), the quote was most likely left open and swallowed them."""
    # The row's last line is where its quote closes: only what comes before the closing quote was
    # taken in (after it, the row's own cells go on, its URL among them).
    taken_in = [*row_lines[1:-1], row_lines[-1].partition('"')[0]] if len(row_lines) > 1 else []
    swallowed = [first + offset for offset, line in enumerate(taken_in, 1)
                 if len(cells := line.rstrip("\r\n").split(delimiter)) > url_at and find_links(cells[url_at])]
    if not swallowed:
        return
    if len(swallowed) == 1:
        taken = f"line {swallowed[0]}, which looks like a row of its own; it was not read as a row"
    else:
        numbers = (f"{swallowed[0]}-{swallowed[-1]}" if swallowed[-1] - swallowed[0] == len(swallowed) - 1
                   else ", ".join(map(str, swallowed)))
        taken = f"lines {numbers}, which look like rows of their own; they were not read as rows"
    warnings.append(f"line {first}: a quoted cell opened here runs to line {first + len(row_lines) - 1} "
                            f"and takes in {taken}: close the quote on line {first}")


def _warn_cells_past_header(warnings: list[str], cells: list[str], width: int, line: int, delimiter: str) -> None:
    """A row with more cells than the header has columns lost what they hold: most often a
    delimiter inside an unquoted claim, or a second URL put after another delimiter."""
    past = delimiter.join(cells[width:])
    if not past.strip(delimiter + " \t"):
        return  # trailing delimiters, as spreadsheets write them
    shown = past if len(past) <= 80 else past[:79] + "…"
    warnings.append(f"line {line}: {len(cells)} cells but the header names {width} columns; {shown!r} past the "
                            f"last column was not read: quote a cell that holds a {delimiter!r}, or put several URLs "
                            "in the url cell separated by spaces")


def jsonl_passages(lines: Iterable[str], name: str, warnings: list[str]) -> Iterator[Passage]:
    """The rows of a JSONL sheet given as its lines (each with its line break), one at a time:
    one JSON object per line, whose keys are the columns. Each warning is appended to `warnings`."""
    columns: dict[str, None] = {}
    ids, repeated = _RowIds(), set()
    end = 0
    for number, whole in enumerate(lines, 1):
        start, end = end, end + len(whole)
        line = whole.rstrip("\r\n")
        if not line.strip():
            continue
        if line.startswith("\ufeff"):
            warnings.append(f"line {number}: a byte order mark (U+FEFF) opens the line, as when files each saved "
                            "with one are joined; the line was read without it")
            start, line = start + 1, line[1:]
        try:
            value = json.loads(line, object_pairs_hook=_FirstOfEachKey)
        except (ValueError, RecursionError) as exc:
            warnings.append(f"line {number}: not JSON ({exc}); line skipped")
            continue
        if not isinstance(value, dict):
            warnings.append(f"line {number}: not a JSON object; line skipped")
            continue
        twice = list(value.twice)
        if _SURROGATE_ESCAPE.search(line) and (cleaned := _without_lone_surrogates(value)) != value:
            value = cleaned
            warnings.append(f"line {number}: a \\u escape names half a character (a lone UTF-16 "
                            "surrogate); it was read as U+FFFD")
        fields: dict[str, Any] = {}
        for key, field_value in value.items():
            if (column := key.strip().lower()) in fields:
                twice.append(column)
            else:
                fields[column] = field_value
        for column in sorted(set(twice) - repeated):  # once each: every line may repeat it
            warnings.append(f"line {number}: the key {column!r} is named more than once: only the first is read"
                            " (on any line; told once)")
            repeated.add(column)
        columns.update(dict.fromkeys(fields))
        ids.check(fields, number, warnings)
        passage = _row(warnings, fields, start, start + len(line), number)
        if passage is not None:
            yield passage
    if columns:
        _require_columns(list(columns), name)


class _FirstOfEachKey(dict):
    """A JSON object as a CSV's columns are read: the first of a key named twice, which is kept in `twice`."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__()
        self.twice: list[str] = []
        for key, value in pairs:
            if key in self:
                self.twice.append(key.strip().lower())
            else:
                self[key] = value


class _RowIds:
    """The values of a sheet's id column seen so far, as digests (a sheet may have a million
    rows): rows of the same words are told apart by it (store/claim_pairing.py)."""

    def __init__(self) -> None:
        self._seen = Digests()

    def check(self, fields: dict[str, Any], line: int, warnings: list[str]) -> None:
        value = fields.get("id")
        if value in (None, ""):
            return
        written = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        if not self._seen.add(hashlib.sha256(written.encode("utf-8", "surrogatepass")).digest()[:16]):
            warnings.append(f"line {line}: the id {written!r} is an earlier row's id too: give each row its own, "
                            "as rows are told apart by it when the sheet is read again")


# A \\uD800-\\uDFFF escape: JSON joins a pair of them into one character, but one alone is half of
# none, and no catalog, file or terminal takes it.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]", re.ASCII)


def _without_lone_surrogates(value: Any) -> Any:
    """`value` with each lone surrogate in its strings (keys too) made U+FFFD."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_without_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_without_lone_surrogates(key): _without_lone_surrogates(item) for key, item in value.items()}
    return value


def _require_columns(columns: list[str], name: str) -> None:
    missing = [column for column in REQUIRED_COLUMNS if column not in columns]
    if missing:
        found = ", ".join(repr(column) for column in columns if column) or "none"
        raise UsageProblem(
            f"{name} is not a claim sheet: it has no {' or '.join(repr(column) for column in missing)} column "
            f"(columns found: {found})",
            "name one column claim and one url, in any case; id, date, source and notes are optional")


def _row(warnings: list[str], fields: dict[str, Any], start: int, end: int, line: int) -> Passage | None:
    """The row's claim, or None (with a warning) when it has no claim text."""
    claim = fields.get("claim")
    if not isinstance(claim, str) or not claim.strip():
        warnings.append(f"line {line}: no claim text; row skipped")
        return None
    cell = fields.get("url")
    if isinstance(cell, list) and all(isinstance(item, str) for item in cell):
        cell = " ".join(cell)
    if cell is not None and not isinstance(cell, str):
        warnings.append(f"line {line}: the url is neither text nor a list of texts")
        cell = None
    links = []
    # Several URLs in one cell are separated by whitespace, or by a comma, semicolon or bar run
    # up against the next URL's scheme.
    text = _URL_SEPARATOR.sub(" ", cell or "")
    url_token = None  # the token just read, when it was a URL
    for token in re.finditer(r"\S+", text):
        found = find_links(token.group())
        if not found and url_token and _CUT_BY_A_SPACE.fullmatch(text, url_token.end(), token.end()):
            # "https://x.example/t wo": the URL cited would be a page the sheet does not name.
            links.pop()
            warnings.append(f"line {line}: {text[url_token.start():token.end()]!r} in the url column: a URL "
                                    "with a space in it? Not cited: write it as one unbroken URL (a space as %20)")
        elif not found:
            warnings.append(f"line {line}: {token.group()!r} in the url column is not a URL")
        links += found
        url_token = token if found else None
    if not (cell or "").strip():
        warnings.append(f"line {line}: no URL for this claim")
    row = {column: fields[column] for column in EXTRA_COLUMNS if fields.get(column) not in (None, "")}
    return Passage(claim.strip(), start, end, ROW, links, row=row, verbatim=False)

