"""`verify --live` tells a name that no longer exists (gone) from a name it could not look up
(no resolver, offline: unreachable), through the system resolver asking a real DNS server on
this machine's loopback-only network, and recaptures only what went."""

from __future__ import annotations

import ipaddress
import json
import socket
import struct
import subprocess
import threading
from pathlib import Path

import pytest

from tests import conftest
from tests.conftest import http_response, send_bytes

A, AAAA = 1, 28
NOERROR, SERVFAIL, NXDOMAIN = 0, 2, 3


class DnsServer:
    """Answers each name as `answers` says now: an address (A 127.0.0.1), or an error code."""

    def __init__(self, address: str, answers: dict[str, int | str]) -> None:
        self.answers = answers
        self.family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
        self.sock = socket.socket(self.family, socket.SOCK_DGRAM)
        self.sock.bind((address, 53))
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            query, client = self.sock.recvfrom(512)
            if not query:  # stop() woke it
                return
            self.sock.sendto(self._answer(query), client)

    def _answer(self, query: bytes) -> bytes:
        at, labels = 12, []
        while query[at]:
            labels.append(query[at + 1:at + 1 + query[at]].decode())
            at += 1 + query[at]
        qtype = struct.unpack("!H", query[at + 1:at + 3])[0]
        question = query[12:at + 5]
        answer = self.answers.get(".".join(labels).lower(), NXDOMAIN)
        records = b""
        if isinstance(answer, str):
            if qtype == A:
                records = struct.pack("!HHHIH", 0xC00C, A, 1, 0, 4) + socket.inet_aton(answer)
            answer = NOERROR  # an AAAA query: the name is there, with no such address
        flags = 0x8180 | (struct.unpack("!H", query[2:4])[0] & 0x0100) | answer
        return query[:2] + struct.pack("!HHHHH", flags, 1, 1 if records else 0, 0, 0) + question + records

    def stop(self) -> None:
        """No server answers from now on (a resolver that is not there)."""
        if self.thread.is_alive():
            with socket.socket(self.family, socket.SOCK_DGRAM) as waker:
                waker.sendto(b"", self.sock.getsockname()[:2])
            self.thread.join()
            self.sock.close()


@pytest.fixture
def system_dns(request, monkeypatch):
    """The system resolver, as is, asking a DNS server of the test's own at the address
    /etc/resolv.conf names, put on loopback in the test's network namespace (never the machine's)."""
    if request.config.loopback_only_network is not None:
        pytest.skip(f"needs a network namespace of the test's own: {request.config.loopback_only_network}")
    resolv_conf = Path("/etc/resolv.conf")
    servers = [line.split()[1] for line in (resolv_conf.read_text() if resolv_conf.exists() else "").splitlines()
               if line.split()[:1] == ["nameserver"] and len(line.split()) > 1]
    address = servers[0].split("%")[0] if servers else "127.0.0.1"  # none named: glibc asks the local machine
    added = not ipaddress.ip_address(address).is_loopback
    prefix = f"{address}/{128 if ipaddress.ip_address(address).version == 6 else 32}"
    if added:
        subprocess.run(["ip", "addr", "add", prefix, "dev", "lo"], check=True)
    monkeypatch.setattr(socket, "getaddrinfo", conftest._real_getaddrinfo)
    server = DnsServer(address, {})
    try:
        yield server
    finally:
        server.stop()
        if added:
            subprocess.run(["ip", "addr", "del", prefix, "dev", "lo"], check=True)


def test_only_a_name_that_does_not_exist_is_gone_and_recaptured(run_cli, raw_server, collection, system_dns):
    server = raw_server({"/page": send_bytes(http_response(b"<html><p>the statement</p></html>"))})
    gone, flaky = f"http://gone.test:{server.port}/page", f"http://flaky.test:{server.port}/page"
    system_dns.answers.update({"gone.test": "127.0.0.1", "flaky.test": "127.0.0.1"})
    captured = run_cli("capture", "-C", collection.root, gone, flaky, "--json")
    assert [c["outcome"] for c in json.loads(captured.stdout)["captures"]] == ["ok", "ok"], captured.output

    system_dns.answers.update({"gone.test": NXDOMAIN, "flaky.test": SERVFAIL})
    result = run_cli("verify", "-C", collection.root, "--live", "--recapture", "--json")
    assert result.exit_code == 1, result.output  # the recapture of the gone page failed: a URL not captured
    report = json.loads(result.stdout)
    assert {d["url"]: d["state"] for d in report["live"]} == {gone: "gone", flaky: "unreachable"}, report["live"]
    assert [r["url"] for r in report["recaptured"]] == [gone]

    system_dns.stop()  # no resolver answers at all: offline
    result = run_cli("verify", "-C", collection.root, "--live", "--recapture", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {d["url"]: d["state"] for d in report["live"]} == {gone: "unreachable", flaky: "unreachable"}, report["live"]
    assert all("cannot resolve" in d["detail"] for d in report["live"]) and report["recaptured"] == []


def test_a_name_gone_of_a_page_already_missing_when_captured_is_still_gone_not_gone(run_cli, raw_server, collection,
                                                                                     system_dns):
    server = raw_server({"/page": send_bytes(http_response(b"no such page", "404 Not Found"))})
    url = f"http://was-404.test:{server.port}/page"
    system_dns.answers["was-404.test"] = "127.0.0.1"
    assert run_cli("capture", "-C", collection.root, url).exit_code == 0
    system_dns.answers["was-404.test"] = NXDOMAIN
    report = json.loads(run_cli("verify", "-C", collection.root, "--live", "--recapture", "--json").stdout)
    [drift] = report["live"]
    assert drift["state"] == "still gone" and drift["detail"].endswith("(was http-error 404)"), drift
    assert report["recaptured"] == []
