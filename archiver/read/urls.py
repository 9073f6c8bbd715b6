"""URL handling shared by the readers and the fetcher: what we may fetch, and matching keys."""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit, urlunsplit

from archiver.errors import UsageProblem

FETCHABLE_SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_BREAKING = re.compile(r"[\x00- \x7f]")  # a space or a control character: one search, not a test a character


def normalise_url(url: str) -> str:
    """The key two citations of one page share: scheme and host lower-cased, default port
    and fragment dropped, an empty path made '/'. The URL as written is kept elsewhere."""
    # The fragment goes first: whitespace before a '#' would otherwise survive one pass.
    return _key(urlsplit(url.split("#", 1)[0].strip()))


def _key(parts: SplitResult) -> str:
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    if parts.username is not None:
        credentials = parts.username + (f":{parts.password}" if parts.password is not None else "")
        netloc = f"{credentials}@{netloc}"
    # Stripped again: an empty query dropped can leave the path's trailing whitespace at the end.
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, "")).strip()


def fetchable_problem(url: str) -> str | None:
    """Why `url` cannot be fetched, or None when it can. A URL holding a space, a line break or
    another control character is refused: Python's URL parser drops tabs and line breaks while
    HTTP libraries send them encoded, so one URL would be keyed as one page and fetched as
    another, and a line break would end the WARC header it is written in."""
    return _examined(url)[0]


def fetchable_key(url: str) -> tuple[str | None, str]:
    """(`fetchable_problem(url)`, "") when there is one, else (None, `normalise_url(url)`): a
    document's every link is both checked and keyed, and its parts are read once for both."""
    problem, parts = _examined(url)
    if problem is not None:
        return problem, ""
    # normalise_url splits `url` itself when it has no fragment and nothing to strip: those parts.
    return None, _key(parts) if url.split("#", 1)[0].strip() == url else normalise_url(url)


def _examined(url: str) -> tuple[str | None, SplitResult]:
    """(`fetchable_problem`, `url` split), the parts worth nothing where there is a problem."""
    if _BREAKING.search(url):
        return "it holds a space, a line break or a control character: give the URL as one unbroken line", _NOTHING
    problem, parts = _split(url)
    if problem is not None:
        return problem, parts
    if "\\" in parts.netloc:  # a browser reads it as the path's start: another host than Python's reading
        return ("a backslash in its host part: browsers and Python read a different host from it; "
                "write the URL with forward slashes"), parts
    if parts.username or parts.password:  # an empty one (https://@example.org/) names no one, as browsers read it
        # Every URL captured is signed into the custody log, attestations and bundles for good.
        return ("it carries a user name or password (user:password@): archiver sends no credentials and "
                "would keep them in signed evidence; give the URL without them"), parts
    return None, parts


def _split(url: str) -> tuple[str | None, SplitResult]:
    """`url` split, with why it is no http(s) URL naming a host (or None when it is one)."""
    try:
        parts = urlsplit(url)
        parts.port  # raises on a malformed port
    except ValueError as exc:
        return unreadable_url(exc), _NOTHING
    if parts.scheme.lower() not in FETCHABLE_SCHEMES:
        return (f"unsupported scheme {parts.scheme!r}: only http and https URLs are captured" if parts.scheme
                else "it has no scheme (http:// or https://)"), parts
    if not parts.hostname:
        return "it names no host (as example.org in https://example.org/page)", parts
    return None, parts


def unreadable_url(exc: ValueError) -> str:
    """Why urllib cannot split a URL, said of the URL's parts rather than of urllib's internals."""
    error = str(exc)
    if "Port" in error:
        return "its port is not a number from 0 to 65535"
    if "IPv6" in error or "IPv4" in error:  # "Invalid IPv6 URL", "'x' does not appear to be an IPv4 or IPv6 address"
        return "its host is not valid: square brackets in a host must enclose a whole IPv6 address (http://[2001:db8::1]/)"
    return f"it is not a well-formed URL ({error})"


_NOTHING = SplitResult("", "", "", "", "")


def wire_form(url: str) -> str:
    """`url` as a request names it (a URI, ASCII), as requests prepares it: its host in IDNA
    (`straße.example` is `xn--strae-oqa.example`; an index keyed by the Unicode name would read
    it as `strasse.example`, another site), the rest percent-encoded as UTF-8. A URL that
    cannot be so written is left as it is."""
    import idna
    from requests.utils import requote_uri

    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        host = host if host.isascii() else idna.encode(host, uts46=True).decode("ascii")
        netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port is not None else "")
        return requote_uri(urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)))
    except (ValueError, idna.IDNAError):
        return url


def without_credentials(url: str) -> str:
    """`url` with any user name and password in it replaced by ***, for a message or a record."""
    try:
        parts = urlsplit(url)
    except ValueError:  # unparsable (as an unclosed IPv6 bracket): whatever precedes an @ goes all the same
        return re.sub(r"(?<=://)[^/?#]*@", "***@", url)
    if parts.username is None and parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


SCHEME_FIX = "give a URL with its scheme (https://…)"


def lookup_key(url: str) -> str:
    """The key of a URL typed to look up its claims or captures (normalise_url), or the
    UsageProblem saying it is no http(s) URL, so was never cited nor captured (as `capture`
    refuses it) rather than a lookup finding nothing."""
    problem = _split(url.strip())[0] if "://" in url else "it has no scheme (http:// or https://)"
    if problem is not None:
        raise UsageProblem(f"{without_credentials(url)!r} is not an http(s) URL: {problem}", SCHEME_FIX)
    return normalise_url(url)


# Every tab and line break in a URL, and its leading and trailing spaces and controls, are
# taken out by a browser as it reads a link (WHATWG URL standard); any other space or control
# it sends percent-encoded.
_TAB_AND_NEWLINES = str.maketrans("", "", "\t\n\r")
_ENCODED = {code: f"%{code:02X}" for code in [*range(0x21), 0x7F]}
_C0_AND_SPACE = "".join(map(chr, range(0x21)))


def as_browsers_read(href: str) -> str:
    """A link's URL as a browser reads its href: an href wrapped over two lines, or holding an
    encoded line break (&#10;), names the URL without it."""
    return href.strip(_C0_AND_SPACE).translate(_TAB_AND_NEWLINES).translate(_ENCODED)
