"""Bytes → text, never failing: in what a BOM says, else UTF-8, else a legacy codepage; and
whether that text is text at all."""

from __future__ import annotations

import codecs
import re
from typing import Callable, NamedTuple

SAMPLE = 1 << 16  # the characters `looks_binary` and `_garbled` look at
_CHUNK = 1 << 20
_WORD = re.compile(r"[^\W\d_]+")
# The legacy single-byte codepages text garbled as À–ÿ comes from: guessing among these alone,
# a short text is not read as Shift JIS or a Mac codepage.
_LEGACY_CODEPAGES = ("cp1251", "koi8_r", "koi8_u", "iso8859_5", "cp1253", "iso8859_7", "cp1250", "iso8859_2", "cp1257",
                     "cp1254", "cp1255", "cp1256", "iso8859_8", "iso8859_6")
# C0 controls no text file uses (tab, line breaks, form feed and escape are text). C1 controls
# are left out: a legacy file decoded as Latin-1 has them in place of letters.
_CONTROLS = frozenset(map(chr, [*range(0x00, 0x09), 0x0E, 0x0F, *range(0x10, 0x1B), *range(0x1C, 0x20), 0x7F]))
# Longest first: the UTF-32-LE BOM begins with the UTF-16-LE one.
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


class Decoded(NamedTuple):
    text: str
    encoding: str          # a Python codec name; `data.decode(encoding, "replace")` gives `text` back
    warnings: list[str]


def decode(data: bytes) -> Decoded:
    """`data` as text, in the encoding a Sniffer fed all of it chooses."""
    sniffer = Sniffer()
    for start in range(0, len(data), _CHUNK):  # so that the Sniffer's text of the bytes is never held whole
        sniffer.feed(data[start:start + _CHUNK])
    encoding, warnings = sniffer.result(lambda: data)
    return Decoded(data.decode(encoding, "replace"), encoding, warnings)


def _garbled(text: str) -> bool:
    """Whether text read as Western European is another script's letters garbled: Cyrillic or
    Greek in a legacy codepage (cp1251, KOI8-R, cp1253) reads as words made wholly of À–ÿ
    ("Ëóêàøåíêî"), which French or German, whose accented letters stand among plain ones, never is."""
    words = [word for word in _WORD.findall(text[:SAMPLE]) if not word.isascii()]
    garbled = [word for word in words if len(word) >= 3 and all("\u00c0" <= char <= "\u00ff" for char in word)]
    return len(words) >= 2 and 2 * len(garbled) >= len(words)


def _another_script(data: bytes) -> tuple[str, list[str]]:
    """The legacy encoding the bytes read best in (charset-normalizer's guess), said in a warning:
    no file names its encoding, so a guess is all there is."""
    from charset_normalizer import from_bytes  # only for a file that is neither UTF-8 nor Western

    guess = from_bytes(data, cp_isolation=list(_LEGACY_CODEPAGES)).best()
    if guess is None:
        return "latin-1", ["not UTF-8, and no encoding fits it: read as Latin-1"]
    encoding = codecs.lookup(guess.encoding).name
    return encoding, [f"not UTF-8 and no byte order mark: read as {encoding}, the encoding its letters make most sense "
                      "in; if its text looks wrong, save the file as UTF-8 and read it again"]


def looks_binary(text: str) -> bool:
    """Whether decoded text is binary data (an image, a PDF, an archive) rather than a document:
    it holds a NUL, or more than 1 in 100 of its first 64 KiB characters are control characters."""
    sample = text[:SAMPLE]
    return "\x00" in sample or sum(char in _CONTROLS for char in sample) * 100 > len(sample)


class Sniffer:
    """A document's encoding, chosen from its bytes fed a chunk at a time so that a big file need
    not be held whole (`decode` feeds one all the bytes): the codec a BOM names, else
    UTF-8, else a legacy codepage (see `result`)."""

    def __init__(self) -> None:
        self._start = b""          # the first bytes: a BOM, and `_garbled`'s sample
        self._fed = 0
        self._strict: codecs.IncrementalDecoder | None = None   # the codec tried, until it fails
        self._encoding = "utf-8"
        self._first_bad: int | None = None
        self._replacing = codecs.getincrementaldecoder("utf-8")("replace")
        self._good = self._bad = 0
        self._tail = b""           # the last two bytes fed: a U+FFFD's bytes may straddle two chunks
        self._cp1252 = True
        self._finished = False

    def feed(self, chunk: bytes, final: bool = False) -> None:
        if self._strict is None:
            self._start += chunk
            if len(self._start) < 4 and not final:
                return  # too few bytes yet to tell a BOM: held in _start
            self._encoding = next((encoding for bom, encoding in _BOMS if self._start.startswith(bom)), "utf-8")
            # utf-8-sig counts a bad byte's place from after the BOM; the BOM is valid UTF-8 itself,
            # so UTF-8 checks the same bytes and counts from the start of the file, as the others do.
            self._strict = codecs.getincrementaldecoder("utf-8" if self._encoding == "utf-8-sig" else self._encoding)()
            chunk, self._start = self._start, self._start[:SAMPLE]
        elif len(self._start) < SAMPLE:
            self._start += chunk[:SAMPLE - len(self._start)]
        if self._first_bad is None:
            pending = self._strict.getstate()[0]
            try:
                self._strict.decode(chunk, final)
            except UnicodeDecodeError as exc:
                self._first_bad = self._fed - len(pending) + exc.start
        if self._encoding == "utf-8":  # no BOM: whether it is mostly UTF-8, and whether cp1252 fits it
            text = self._replacing.decode(chunk, final)
            if not text.isascii():  # plain ASCII has no character to count, good or bad
                replaced = text.count("\ufffd")
                if replaced:  # less the U+FFFD characters the file holds itself
                    self._bad += replaced - (self._tail + chunk).count(_REPLACEMENT)
                self._good += len(text) - len(text.encode("ascii", "ignore")) - replaced
            self._tail = (self._tail + chunk[-2:])[-2:]
            self._cp1252 = self._cp1252 and not any(byte in chunk for byte in _NOT_CP1252)
        self._fed += len(chunk)

    def result(self, whole: Callable[[], bytes]) -> tuple[str, list[str]]:
        """(encoding, warnings) for all the bytes fed. `whole()` gives those bytes again: called
        only for another script's legacy codepage, which is guessed from all of them at once."""
        if not self._finished:
            self._finished = True
            self.feed(b"", final=True)
        if self._first_bad is None:
            return self._encoding, []
        # Bytes a BOM's codec does not take are replaced, as are a few stray ones in UTF-8: read as
        # cp1252, UTF-8 text would garble every other accented letter.
        if self._encoding != "utf-8" or self._good > self._bad:
            return self._encoding, [f"bytes that are not valid {self._encoding} were replaced "
                                    f"(first at byte {self._first_bad})"]
        # Bytes 0x80–0x9F are C1 controls in Latin-1, which no text uses, but curly quotes, dashes
        # and € in cp1252; so cp1252 wins whenever it decodes the file at all (Latin-1 decodes any).
        encoding = "cp1252" if self._cp1252 else "latin-1"
        return _another_script(whole()) if _garbled(self._start[:SAMPLE].decode(encoding)) else (encoding, [])


_REPLACEMENT = "\ufffd".encode()
# The five bytes cp1252 leaves undefined: one of them anywhere, and `decode` reads Latin-1.
_NOT_CP1252 = (0x81, 0x8D, 0x8F, 0x90, 0x9D)
