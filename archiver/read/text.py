"""Line-based formats: dated articles, plain text and Markdown, cut at blank lines into claims.

Spans are exact: every passage's text is decoded[start:end], trimmed of surrounding blanks."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from archiver.read.links import find_links, lone_links
from archiver.read.model import HEADLINE, PARAGRAPH
from archiver.read.reading import Passage, Reading

# A line and its line break; the second branch is a last line without one.
LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")
# Lower-case `date` only, so prose such as "Date night…" stays prose. The BOM is allowed in case
# one survived decoding (a file saved twice with one).
_DATE_LINE = re.compile(r"[\s\ufeff]*date[ \t]+(?P<date>\S+)[ \t]*(?P<headline>.*?)\s*$")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_HEADING = re.compile(r" {0,3}(?P<hashes>#{1,6})(?:[ \t]+|$)(?P<text>.*?)(?:[ \t]+#+)?[ \t]*$")
_LIST_ITEM = re.compile(r"[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+(?P<text>\S)")
_THEMATIC_BREAK = re.compile(r" {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
# A footnote or link reference definition opening a block, and any bracketed text, which refers
# to one when it names its label (CommonMark: labels match regardless of case and spacing).
# A fenced code block (``` or ~~~, closed by as many or more of the same) or an HTML comment.
_HIDDEN_START = re.compile(r" {0,3}(`{3,}|~{3,}|<!--)")
_COMMENT_END = re.compile(r"-->")
_TABLE_ROW = re.compile(r"[ \t]*\|.*\|[ \t]*$")
_TABLE_RULE = re.compile(r"[ \t]*\|(?:[ \t]*:?-+:?[ \t]*\|)+[ \t]*$")
_DEFINITION = re.compile(r" {0,3}\[(?:(?P<note>\^[^\[\]]+)\]:"  # a footnote: any text follows
                         r"|(?P<label>[^\[\]^][^\[\]]*)\]:[ \t]*(?:<|[A-Za-z][A-Za-z0-9+.-]*:|/|$))")  # a link: its URL
_BRACKETED = re.compile(r"\[([^\[\]]+)\](?!\()")  # not [text](url): an inline link refers to no definition
# A plain-text file's first paragraph is its headline only when it is one line this short.
HEADLINE_MAX_CHARS = 120


@dataclass
class _Block:
    start: int
    end: int
    heading_level: int = 0


def read_plain_text(text: str) -> Reading:
    """A .txt file: a dated article when its first line is `date YYYY-MM-DD headline`,
    otherwise plain text."""
    lines = line_spans(text)
    first = next((i for i, (start, end) in enumerate(lines) if text[start:end].strip()), None)
    date_line = _DATE_LINE.match(text, *lines[first]) if first is not None else None
    if date_line is None:
        reading = Reading(kind="text", warnings=[
            "no date line (`date YYYY-MM-DD headline`) at the top: read as plain text, without a date"])
        blocks = _blocks(text, lines, markdown=False)
        _add_blocks(reading, text, blocks)
        opening = _opening_passage(reading, blocks)
        if opening and "\n" not in opening.text and "\r" not in opening.text and len(opening.text) <= HEADLINE_MAX_CHARS:
            opening.kind = HEADLINE
            reading.title = opening.text
    else:
        reading = Reading(kind="article")
        reading.date = _checked_date(date_line["date"], reading.warnings)
        start, end = date_line.span("headline")
        if start < end:
            reading.passages.append(Passage(text[start:end], start, end, HEADLINE, find_links(text[start:end])))
            reading.title = text[start:end]
        else:
            reading.warnings.append("the date line has no headline after the date")
        _add_blocks(reading, text, _blocks(text, lines[first + 1:], markdown=False))
    _warn_if_truncated(reading)
    return reading


def read_markdown(text: str) -> Reading:
    """Paragraphs, list items and headings are claims; a `# heading` opening the file is the title.
    A footnote or link reference definition (`[^1]: …`, `[ref]: https://…`) is no claim: its links
    are cited by every claim that refers to it (`[^1]`, `[text][ref]`, `[ref]`), and those of one
    nothing refers to are the document's sources, as URLs standing alone are."""
    reading = Reading(kind="markdown")
    blocks = _blocks(text, line_spans(text), markdown=True)
    definitions: dict[str, list[str]] = {}
    for index, block in reversed(list(enumerate(blocks))):
        if _DEFINITION.match(text, block.start):
            rest = _read_definitions(text, block, definitions)
            blocks[index:index + 1] = [rest] if rest else []
    _add_blocks(reading, text, blocks)
    referred = set()
    for passage in reading.passages:
        for label in (_label(found) for found in _BRACKETED.findall(passage.text)):
            if label in definitions:
                passage.links += definitions[label]
                referred.add(label)
    reading.standalone_links += [link for label, links in definitions.items() if label not in referred for link in links]
    opening = _opening_passage(reading, blocks)
    if opening and blocks[0].heading_level == 1:
        opening.kind = HEADLINE
        reading.title = opening.text
    return reading


def _add_blocks(reading: Reading, text: str, blocks: list[_Block]) -> None:
    """Each block is a paragraph claim, unless it is nothing but URLs: then they are standalone."""
    for block in blocks:
        content = text[block.start:block.end]
        standalone = lone_links(content)
        if standalone:
            reading.standalone_links += standalone
        else:
            reading.passages.append(Passage(content, block.start, block.end, PARAGRAPH, find_links(content)))


def _read_definitions(text: str, block: _Block, definitions: dict[str, list[str]]) -> _Block | None:
    """The definitions `block` opens with, each line one (a footnote's indented lines go on it),
    added to `definitions`; what follows them, a paragraph of its own, is returned as a block."""
    label, footnote = "", False
    for match in LINE.finditer(text, block.start, block.end):
        line = match.group().rstrip("\r\n")
        if defined := _DEFINITION.match(line):
            label, footnote = _label(defined["note"] or defined["label"]), defined["note"] is not None
        elif not (footnote and line[:1].isspace()):
            return _Block(match.start(), block.end)
        definitions.setdefault(label, []).extend(find_links(line))
    return None


def _label(text: str) -> str:
    return " ".join(text.split()).casefold()


def _opening_passage(reading: Reading, blocks: list[_Block]) -> Passage | None:
    """The passage made of the document's first block, if that block was not standalone URLs."""
    if blocks and reading.passages and reading.passages[0].start == blocks[0].start:
        return reading.passages[0]
    return None


def line_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each line, its line break excluded."""
    return [(match.start(), match.start() + len(match.group().rstrip("\r\n"))) for match in LINE.finditer(text)]


def _blocks(text: str, lines: list[tuple[int, int]], markdown: bool) -> list[_Block]:
    """Runs of non-blank lines; in Markdown also each heading and each list item on its own."""
    blocks: list[_Block] = []
    current: _Block | None = None
    row_before = False  # the line before was a table row (a header, if a rule follows)
    hidden: re.Pattern | None = None  # in Markdown, inside a fenced code block or a comment: what ends it
    for start, end in lines:
        line = text[start:end]
        # Code and comments show no claim: a URL in them is an example or a note to the editor.
        if markdown and hidden is None and (hidden := _hidden_until(line)) is not None:
            if hidden is _COMMENT_END and hidden.search(line, _HIDDEN_START.match(line).end()):
                hidden = None  # a comment on one line
            current, row_before = None, False
            continue
        if hidden is not None:
            if hidden.search(line):
                hidden = None
            current, row_before = None, False
            continue
        if not line.strip():
            current, row_before = None, False
            continue
        if markdown:
            if _THEMATIC_BREAK.match(line):
                current = None
                continue
            heading = _HEADING.match(line)
            if heading:
                current = None
                if heading["text"]:
                    blocks.append(_Block(start + heading.start("text"), start + heading.end("text"), len(heading["hashes"])))
                continue
            item = _LIST_ITEM.match(line)
            if item:
                current = _Block(start + item.start("text"), end)
                blocks.append(current)
                continue
            if _TABLE_ROW.match(line):  # a table's rows are claims each; its header row and rule are not
                if not _TABLE_RULE.match(line):
                    blocks.append(_Block(start, end))
                elif row_before:
                    blocks.pop()
                current, row_before = None, not _TABLE_RULE.match(line)
                continue
        row_before = False
        if current is None:
            current = _Block(start, end)
            blocks.append(current)
        else:
            current.end = end
    for block in blocks:
        block.start, block.end = _trimmed(text, block.start, block.end)
    return [block for block in blocks if block.start < block.end]


def _hidden_until(line: str) -> re.Pattern | None:
    """What ends the fenced code block or HTML comment `line` opens, if it opens one: not a
    backtick run with a backtick after it (inline code), nor a comment followed by text."""
    opening = _HIDDEN_START.match(line)
    if opening is None:
        return None
    marker, after = opening.group(1), line[opening.end():]
    if marker == "<!--":
        closed = _COMMENT_END.search(after)
        return None if closed and after[closed.end():].strip() else _COMMENT_END
    if marker[0] == "`" and "`" in after:
        return None
    return re.compile(rf"^ {{0,3}}{re.escape(marker[0])}{{{len(marker)},}}[ \t]*$")


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _checked_date(value: str, warnings: list[str]) -> str | None:
    if not _ISO_DATE.fullmatch(value):
        warnings.append(f"the date line's date {value!r} is not YYYY-MM-DD: the document has no date")
        return None
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        warnings.append(f"the date line's date {value!r} is not a calendar date: the document has no date")
        return None
    return value


def _warn_if_truncated(reading: Reading) -> None:
    """An article cut off mid-word (a common scraping fault) ends on a letter, not punctuation."""
    last = reading.passages[-1] if reading.passages else None
    if last is None or last.kind != PARAGRAPH:
        return
    last_word = last.text.split()[-1]
    if last_word[-1].isalpha() and not find_links(last_word):
        reading.warnings.append(f"the last paragraph appears truncated: it ends {last.text[-40:]!r} without punctuation")
