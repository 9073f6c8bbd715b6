"""Which addresses may be fetched, and a resolver that pins each host to one checked address.

Every host is resolved once per run; the address that passed the check is the one the
transport connects to, so a second DNS answer (rebinding) can never reach a refused address.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from dataclasses import dataclass, field
from typing import Callable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Kinds that `allow_private` opens: addresses of one's own networks.
PRIVATE_KINDS = frozenset({"loopback", "private", "link-local", "site-local", "shared (carrier-grade NAT)"})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SHARED = ipaddress.ip_network("100.64.0.0/10")


class Refused(Exception):
    """The target may not be fetched; nothing was sent to it."""


class NameNotResolved(Exception):
    """DNS gave no address for the host. `missing`: DNS said the name does not exist (NXDOMAIN,
    or no address of it); otherwise no answer came (no resolver, offline, a server failing), and
    the name may well be there: a page is gone only when its name is."""

    def __init__(self, message: str, missing: bool) -> None:
        super().__init__(message)
        self.missing = missing


# getaddrinfo's answers that the name does not exist; EAI_AGAIN, EAI_FAIL and the rest say none came.
_NO_SUCH_NAME = frozenset({socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)})


def _embedded_ipv4(addr: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form stands for (mapped, NAT64, 6to4), if any."""
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped:
            return addr.ipv4_mapped
        if addr in _NAT64:
            return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
        if addr.sixtofour:
            return addr.sixtofour
    return None


def address_kind(addr: IPAddress) -> str | None:
    """What makes `addr` non-public (e.g. 'loopback'), or None for a public unicast address."""
    inner = _embedded_ipv4(addr)
    if inner is not None:
        kind = address_kind(inner)
        return f"{kind} (as {inner} in IPv6 form)" if kind else None
    if addr.is_unspecified:
        return "unspecified"
    if addr.is_loopback:
        return "loopback"
    if addr.is_link_local:
        return "link-local"
    if addr.version == 6 and addr.is_site_local:  # fec0::/10: deprecated, and Python counts it global
        return "site-local"
    if addr.is_multicast:
        return "multicast"
    if addr.is_reserved:  # before private: Python counts 240.0.0.0/4 as private too
        return "reserved"
    if addr in _SHARED:
        return "shared (carrier-grade NAT)"
    if addr.is_private:
        return "private"
    if not addr.is_global:
        return "reserved"
    return None


@dataclass(frozen=True)
class AddressPolicy:
    allow_private: bool = False
    allow_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def from_settings(cls, allow_private: bool, allow_networks: tuple[str, ...]) -> "AddressPolicy":
        return cls(allow_private, tuple(ipaddress.ip_network(n, strict=False) for n in allow_networks))

    def refusal(self, ip: str) -> str | None:
        """Why connecting to `ip` is refused, or None when it is allowed."""
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
        inner = _embedded_ipv4(addr)
        if any(a in net for net in self.allow_networks for a in (addr, inner) if a is not None and a.version == net.version):
            return None
        kind = address_kind(addr)
        if kind is None:
            return None
        base_kind = address_kind(inner) if inner is not None else kind
        if self.allow_private and base_kind in PRIVATE_KINDS:
            return None
        article = "an" if kind[0] in "aeiou" else "a"
        return (f"{ip} is {article} {kind} address; allow it with allow_networks in archiver.toml"
                + (" or --allow-private" if base_kind in PRIVATE_KINDS else ""))


def system_lookup(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


@dataclass(frozen=True)
class Resolution:
    """What DNS answered for a host and the one address we pinned it to."""

    host: str
    answers: tuple[str, ...]
    address: str
    from_dns: bool
    refused: tuple[tuple[str, str], ...] = field(default=())

    def as_record(self) -> dict:
        return {"host": self.host, "answers": list(self.answers), "pinned": self.address,
                "from_dns": self.from_dns, "refused": [list(r) for r in self.refused]}


class SafeResolver:
    """Resolves each host once, keeps the first allowed answer, and refuses the rest."""

    def __init__(self, policy: AddressPolicy, lookup: Callable[[str, int], list[str]] = system_lookup) -> None:
        self.policy = policy
        self._lookup = lookup
        self._cache: dict[str, Resolution | Exception] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def resolve(self, host: str, port: int) -> Resolution:
        host = host.strip("[]").rstrip(".").lower()
        with self._guard:
            lock = self._locks.setdefault(host, threading.Lock())
        with lock:
            if host not in self._cache:
                try:
                    self._cache[host] = self._resolve_uncached(host, port)
                except (Refused, NameNotResolved) as exc:
                    self._cache[host] = exc
            outcome = self._cache[host]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def _resolve_uncached(self, host: str, port: int) -> Resolution:
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
            answers, from_dns = [host], False
        except ValueError:
            try:
                answers, from_dns = self._lookup(host, port), True
            except (socket.gaierror, UnicodeError, OSError) as exc:
                missing = isinstance(exc, socket.gaierror) and exc.errno in _NO_SUCH_NAME
                raise NameNotResolved(f"cannot resolve {host}: {getattr(exc, 'strerror', None) or exc}", missing) from None
            if not answers:
                raise NameNotResolved(f"cannot resolve {host}: no addresses", missing=True)
        refused = []
        for ip in answers:
            reason = self.policy.refusal(ip)
            if reason is None:
                return Resolution(host, tuple(answers), ip, from_dns, tuple(refused))
            refused.append((ip, reason))
        if from_dns:
            raise Refused(f"{host} resolves only to refused addresses: {refused[0][1]}")
        raise Refused(f"refused target: {refused[0][1]}")
