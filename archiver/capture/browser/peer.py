"""Who is on the other end of a loopback connection: the user owning the connecting socket.

Any local user's process may connect to 127.0.0.1, so a capture's proxies serve a connection
only when its socket belongs to this process's user (Chromium, launched by it, runs as it).
Linux lists every TCP socket of the network namespace, with its owner, in /proc/net/tcp and
/proc/net/tcp6; elsewhere (no /proc/net) the owner cannot be read and connections are served
unchecked, as before: the check is Linux-only.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from pathlib import Path

_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))


def socket_owner(peer: tuple[str, int], listening: tuple[str, int]) -> int | None:
    """The uid owning the socket connected from `peer` to `listening`; -1 if no live socket of
    this namespace is (the peer gone, or one handed to no process); None where Linux's tables
    cannot be read."""
    tables = []
    for table in _TABLES:
        try:
            tables.append(table.read_text())
        except OSError:
            continue
    if not tables:
        return None
    wanted = (_endpoint(*peer), _endpoint(*listening))
    port = f":{peer[1]:04X}"  # read first: of a busy machine's thousands of lines, few have it
    for text in tables:
        for line in text.splitlines()[1:]:
            fields = line.split()
            # A closing socket no process holds (inode 0, as every TIME_WAIT entry) is listed as
            # uid 0: it must not pass for root's own.
            if (len(fields) > 9 and fields[1].endswith(port) and fields[9] != "0"
                    and (_parse(fields[1]), _parse(fields[2])) == wanted):
                return int(fields[7])
    return -1


def same_user(conn: socket.socket) -> bool:
    """Whether the accepted `conn` was opened by a socket of this process's user (always, where
    that cannot be read)."""
    try:
        owner = socket_owner(conn.getpeername()[:2], conn.getsockname()[:2])
    except OSError:  # hung up already: nothing left to serve
        return False
    return owner is None or owner == os.geteuid()


def _endpoint(host: str, port: int) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    address = ipaddress.ip_address(host)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # an IPv6 socket's connection to 127.0.0.1, listed in tcp6
    return address, port


def _parse(field: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int] | None:
    """'0100007F:1F90' as (127.0.0.1, 8080): the address is printed as 32-bit words in the
    machine's byte order, the port in hex."""
    hex_address, _, hex_port = field.partition(":")
    try:
        packed = b"".join(int(hex_address[i:i + 8], 16).to_bytes(4, sys.byteorder)
                          for i in range(0, len(hex_address), 8))
        address = ipaddress.ip_address(packed)
        return _endpoint(str(address), int(hex_port, 16))
    except ValueError:
        return None
