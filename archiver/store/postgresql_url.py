"""A PostgreSQL catalog URL, checked before it is kept in archiver.toml, and shown in messages.

archiver.toml is copied to every machine of a team, so the URL must carry no secret: one that
does is refused, and a refusal never quotes the URL, nor psycopg's reading of it (which repeats
its password). libpq's secrets come from PGPASSWORD, ~/.pgpass or its service file instead."""

from __future__ import annotations

from functools import lru_cache

import psycopg
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict

from archiver.errors import UsageProblem
from archiver.store.database import POSTGRESQL_SCHEMES

URL_FORM = "postgresql://user@host:port/database"
# What libpq 18 takes that lets one log in or unlock a key: a password, a client key's
# passphrase, an OAuth client's secret, and SCRAM keys (a password's equivalent). Older libpq
# versions know fewer of them, and refuse the others as unknown; newer ones add their own,
# which _secret_parameters() reads.
SECRET_PARAMETERS = frozenset({"password", "sslpassword", "oauth_client_secret", "scram_client_key",
                               "scram_server_key"})
_WHERE_SECRETS_GO = ("remove it from the URL: the password goes in PGPASSWORD or a ~/.pgpass line, other "
                     "secrets in a PGSERVICEFILE service (see libpq's documentation)")


def check_url(url: str, where: str = "the catalog URL") -> None:
    """Refuse, in a UsageProblem naming `where` it was given, a URL that is not a PostgreSQL
    one, that psycopg cannot read, or that carries a secret; never quoting it."""
    fix = f"write it as {URL_FORM}, its password in PGPASSWORD or ~/.pgpass"
    if not url.startswith(POSTGRESQL_SCHEMES):
        raise UsageProblem(f"{where} must be a PostgreSQL URL (postgresql://…; libpq's key=value form is not taken)",
                           fix)
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        raise UsageProblem(f"{where} is not a PostgreSQL URL libpq can read (a '%' not followed by two hex digits,"
                           " an unknown parameter, an unclosed '['…)", fix) from None
    if found := sorted(_secret_parameters() & {key for key, value in parts.items() if value}):
        what = "a password" if found == ["password"] else f"a secret ({', '.join(found)})"
        raise UsageProblem(f"{where} carries {what}, which archiver.toml would keep for every machine to read",
                           _WHERE_SECRETS_GO)
    port = parts.get("port")
    if port is not None and not all(p.isdigit() for p in str(port).split(",")):
        raise UsageProblem(f"{where} is not a PostgreSQL URL: its port is not a number", fix)


def shown(url: str) -> str:
    """A checked URL as a message names it: where the server is and who logs in, nothing of
    its parameters."""
    parts = conninfo_to_dict(url)
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host', '')}{port}/{parts.get('dbname', '')}"


@lru_cache(maxsize=1)
def _secret_parameters() -> frozenset[str]:
    # libpq marks a parameter whose value a program must hide ("*": a password field).
    hidden = {option.keyword.decode() for option in pq.Conninfo.get_defaults() if option.dispchar == b"*"}
    return SECRET_PARAMETERS | hidden
