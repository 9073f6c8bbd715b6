"""The small pieces of HTML every part of evidence/report.html is built from, and the rules
that make untrusted strings safe in it: each is HTML-escaped, machine strings show their
invisible characters, prose is isolated so its direction cannot reorder the page, and
element ids are built from a safe alphabet."""

from __future__ import annotations

import html
import re
import unicodedata

from archiver.evidence.signing import grouped


def escape(value: object) -> str:
    return html.escape(str(value), quote=True)


def literal(value: object) -> str:
    """A machine string (URL, id, path, digest) in <code>, with invisible and control
    characters shown as their code points: in evidence, a right-to-left override or a
    zero-width space inside a URL must be seen, not silently obey or vanish."""
    out = []
    for char in str(value):
        if unicodedata.category(char) in ("Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"):
            out.append(f"<span class=\"ctl\">U+{ord(char):04X}</span>")
        else:
            out.append(escape(char))
    return f"<code>{''.join(out)}</code>"


def prose(value: object) -> str:
    """Text from a page or document, isolated so its direction cannot reorder what surrounds it;
    its bidirectional overrides and embeddings, and control characters, are shown as code points,
    as literal() shows them: inside the isolate, an override would still make "evil" read "live".
    Arabic or Hebrew text needs none of them (its letters carry their direction)."""
    shown = "".join(f"<span class=\"ctl\">U+{ord(char):04X}</span>" if char in _SHOWN_IN_PROSE
                    or unicodedata.category(char) == "Cc" and char not in "\t\n\r" else escape(char) for char in str(value))
    return f"<bdi>{shown}</bdi>"


# Bidirectional embeddings, overrides and isolates: they reorder the characters after them.
_SHOWN_IN_PROSE = frozenset(map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]))


def anchor(kind: str, identifier: str) -> str:
    """An element id made only of [A-Za-z0-9-], so the same string works unescaped in
    `id` and in a `#fragment`; other characters become _<hex>_ (injective, `_` included)."""
    safe = re.sub(r"[^A-Za-z0-9-]", lambda match: f"_{ord(match.group()):x}_", identifier)
    return f"{kind}-{safe}"


def fingerprint_literal(fingerprint: str) -> str:
    return literal(grouped(fingerprint))


def key_link(fingerprint: str, keys: dict[str, dict]) -> str:
    if fingerprint in keys:
        return f"<a href=\"#{anchor('key', fingerprint)}\">{fingerprint_literal(fingerprint)}</a>"
    return f"{fingerprint_literal(fingerprint)} <span class=\"warn\">(not among the keys in this bundle)</span>"


def count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def definition_list(rows: list[tuple[str, str]]) -> str:
    """A definition list; labels are fixed text, values are already HTML."""
    return "<dl>\n" + "".join(f"<dt>{label}</dt><dd>{value}</dd>\n" for label, value in rows) + "</dl>\n"


def or_absent(value: object, absent: str) -> str:
    return absent if value is None else literal(value)
