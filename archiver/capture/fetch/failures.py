"""Why a request got no complete response head, or a head no client can take, in words a person
reads in a table, found under the wrappers requests and urllib3 put around the exception that ended it."""

from __future__ import annotations

import http.client
import re
import ssl

import requests
import urllib3.exceptions as u3

from archiver.capture.fetch.policy import NameNotResolved, Refused
from archiver.capture.fetch.transport import CaptureLimitReached, SizeLimitReached


def root_cause(exc: BaseException) -> BaseException:
    """The innermost exception under requests' and urllib3's wrappers."""
    seen = set()
    # A bad status line is raised from within the int() that failed on it: the line says more.
    while id(exc) not in seen and not isinstance(exc, (Refused, NameNotResolved, CaptureLimitReached, http.client.BadStatusLine)):
        seen.add(id(exc))
        inner = getattr(exc, "reason", None) or exc.__cause__
        if inner is None and not exc.__suppress_context__:
            inner = exc.__context__
        if isinstance(exc, requests.RequestException) and exc.args and isinstance(exc.args[0], BaseException):
            inner = exc.args[0]
        if not isinstance(inner, BaseException):
            break
        exc = inner
    return exc


# OpenSSL's reasons a reader would not decode, in words (the others, as a certificate's
# CERTIFICATE_VERIFY_FAILED with its detail, read well enough as OpenSSL words them).
_TLS_REASONS = {
    "WRONG_VERSION_NUMBER": "the server did not speak TLS on this port",
}


_PRIVATE_CA_HINT = ("if the site uses a private CA, pass --ca-bundle FILE "
                   "or set ca_bundle under [capture] in archiver.toml")


# urllib3's words for a response whose Content-Length lines (or values) differ.
_UNMATCHED_LENGTHS = re.compile(r"Content-Length contained multiple unmatching values \((.*)\)")


def describe_failure(exc: BaseException) -> str:
    """A reason a person reads in a table, for a request that got no complete response head or
    one refused as it was read (two Content-Lengths that disagree)."""
    cause = root_cause(exc)
    if isinstance(cause, (Refused, NameNotResolved)):
        return str(cause)
    if isinstance(cause, SizeLimitReached):
        return "response headers larger than the size cap"
    if isinstance(cause, ssl.SSLCertVerificationError):  # the certificate no CA trusted here vouches for
        return f"TLS failure: {cause}; {_PRIVATE_CA_HINT}"
    if isinstance(exc, requests.exceptions.SSLError) or isinstance(cause, ssl.SSLError):
        return f"TLS failure: {_TLS_REASONS.get(getattr(cause, 'reason', None), cause)}"
    if isinstance(cause, u3.ConnectTimeoutError) or isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"connection timed out: {cause}"
    if isinstance(cause, (u3.ReadTimeoutError, TimeoutError)) or isinstance(exc, requests.exceptions.ReadTimeout):
        return "server sent no response in time"
    if isinstance(cause, u3.NewConnectionError):
        return str(cause).split(": ", 1)[-1]
    if isinstance(cause, http.client.RemoteDisconnected):
        return "server closed the connection without a response"
    if isinstance(cause, http.client.BadStatusLine):
        return f"malformed status line: {cause.line.strip()!r}"
    if isinstance(cause, u3.InvalidHeader) and (lengths := _UNMATCHED_LENGTHS.search(str(cause))):
        return (f"the server sent Content-Lengths that disagree ({lengths.group(1)}): where its body ends "
                "is ambiguous, so only its head was kept")
    if isinstance(cause, (http.client.HTTPException, u3.ProtocolError, u3.InvalidHeader,
                          requests.exceptions.InvalidHeader)):
        return f"malformed response: {cause}"
    if isinstance(cause, ConnectionResetError):
        return "connection reset by the server"
    if isinstance(cause, OSError):
        return f"network error: {cause.strerror or cause}"
    return f"{type(cause).__name__}: {cause}"
