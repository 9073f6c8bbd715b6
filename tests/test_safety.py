"""Targets that must be refused before a single byte is sent, and the resolver that pins hosts."""

from __future__ import annotations

import ipaddress

import pytest

from archiver.capture.fetch.policy import AddressPolicy, Refused, SafeResolver, address_kind
from tests.conftest import capture, http_response, redirect, send_bytes, warc_records



@pytest.mark.parametrize("address, kind", [
    ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"),
    ("10.0.0.1", "private"), ("172.16.5.4", "private"), ("192.168.1.1", "private"), ("fd00::1", "private"),
    ("fec0::1", "site-local"),  # deprecated, yet still some networks' own addresses
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("224.0.0.1", "multicast"), ("ff02::1", "multicast"),
    ("100.64.0.1", "shared (carrier-grade NAT)"), ("240.0.0.1", "reserved"), ("255.255.255.255", "reserved"),
    ("::ffff:127.0.0.1", "loopback (as 127.0.0.1 in IPv6 form)"),
    ("::ffff:169.254.169.254", "link-local (as 169.254.169.254 in IPv6 form)"),
    ("64:ff9b::a00:1", "private (as 10.0.0.1 in IPv6 form)"),
    ("2002:7f00:1::", "loopback (as 127.0.0.1 in IPv6 form)"),
    ("93.184.215.14", None), ("2606:4700::6810:84e5", None),
])
def test_address_kinds(address, kind):
    assert address_kind(ipaddress.ip_address(address)) == kind


def test_policy_allows_only_the_networks_named():
    policy = AddressPolicy.from_settings(False, ("127.0.0.1/32",))
    assert policy.refusal("127.0.0.1") is None
    assert policy.refusal("::ffff:127.0.0.1") is None  # the same address in IPv6 form
    assert "127.0.0.2 is a loopback address" in policy.refusal("127.0.0.2")
    assert "link-local" in policy.refusal("169.254.169.254")
    assert policy.refusal("8.8.8.8") is None


def test_allow_private_opens_own_networks_but_never_multicast_or_unspecified():
    policy = AddressPolicy.from_settings(True, ())
    for address in ("10.0.0.1", "127.0.0.1", "169.254.169.254", "::ffff:192.168.0.1"):
        assert policy.refusal(address) is None
    for address in ("0.0.0.0", "224.0.0.1", "240.0.0.1"):
        assert policy.refusal(address) is not None


def test_each_host_is_resolved_once_and_pinned_to_its_first_allowed_answer():
    answers = iter([["10.0.0.5", "127.0.0.1"], ["127.0.0.9"]])
    lookups = []

    def lookup(host, port):
        lookups.append(host)
        return next(answers)

    resolver = SafeResolver(AddressPolicy.from_settings(False, ("127.0.0.1/32",)), lookup)
    first = resolver.resolve("Example.TEST", 80)
    again = resolver.resolve("example.test", 443)
    assert lookups == ["example.test"]
    assert first == again and first.address == "127.0.0.1"
    assert first.refused[0][0] == "10.0.0.5"


def test_a_host_with_only_refused_answers_is_refused():
    resolver = SafeResolver(AddressPolicy(), lambda host, port: ["169.254.169.254"])
    with pytest.raises(Refused, match="metadata.test resolves only to refused addresses: 169.254.169.254 is a link-local"):
        resolver.resolve("metadata.test", 80)


def test_refused_targets_get_no_byte(collection, raw_server, network_sandbox):
    other_loopback = raw_server({"/": send_bytes(http_response(b"secret"))}, host="127.0.0.2")
    rows = capture(collection, other_loopback.url("/"), "http://169.254.169.254/latest/meta-data/",
                   "http://10.0.0.1/", "http://[::ffff:127.0.0.2]/", "http://0.0.0.0:80/", "http://[fec0::1]/")
    assert [r.outcome for r in rows] == ["failed"] * 6
    assert "127.0.0.2 is a loopback address" in rows[0].error
    assert "169.254.169.254 is a link-local address" in rows[1].error
    assert "10.0.0.1 is a private address" in rows[2].error
    assert "::ffff:127.0.0.2 is a loopback (as 127.0.0.2 in IPv6 form) address" in rows[3].error
    assert "0.0.0.0 is an unspecified address" in rows[4].error
    assert "fec0::1 is a site-local address" in rows[5].error
    assert other_loopback.connections == 0
    assert network_sandbox == []  # nothing even tried to connect beyond loopback
    assert not list(collection.storage.folder.glob("*.warc.gz"))  # nothing to store: no request was sent


def test_redirect_from_an_allowed_host_to_a_refused_address_stops_there(collection, raw_server, network_sandbox):
    inside = raw_server({"/": send_bytes(http_response(b"internal"))}, host="127.0.0.2")
    server = raw_server({"/hop": redirect(inside.url("/")), "/meta": redirect("http://169.254.169.254/")})
    rows = capture(collection, server.url("/hop"), server.url("/meta"))
    assert [r.outcome for r in rows] == ["failed", "failed"]
    assert rows[0].error.startswith(f"redirect to {inside.url('/')}: refused target: 127.0.0.2 is a loopback")
    assert "169.254.169.254 is a link-local" in rows[1].error
    assert inside.connections == 0 and network_sandbox == []
    # the redirect that was received is kept as evidence
    assert sum(r.type == "response" for r in warc_records(collection.storage.folder)) == 2


def test_an_unresolvable_host_fails_with_its_reason(collection):
    [row] = capture(collection, "http://nonexistent.invalid/page")
    assert row.outcome == "failed" and row.error.startswith("cannot resolve nonexistent.invalid")


def test_dns_is_answered_once_per_run_even_when_it_would_change(collection, raw_server):
    # A rebinding DNS answers 127.0.0.1 first, then a refused address: the second capture of
    # the host must still go to the address that was checked.
    server = raw_server({"/1": send_bytes(http_response(b"one")), "/2": send_bytes(http_response(b"two"))})
    answers = iter([["127.0.0.1"], ["169.254.169.254"]])
    resolver = SafeResolver(AddressPolicy.from_settings(False, ("127.0.0.1/32",)), lambda host, port: next(answers))
    rows = capture(collection, f"http://rebind.test:{server.port}/1", f"http://rebind.test:{server.port}/2",
                   resolver=resolver, concurrency=1)
    assert [(r.outcome, r.ip) for r in rows] == [("ok", "127.0.0.1"), ("ok", "127.0.0.1")]
    assert all(b"Host: rebind.test:" in request for request in server.requests)


def test_allow_private_setting_lets_tests_reach_their_own_server(collection, raw_server):
    server = raw_server({"/": send_bytes(http_response(b"intranet"))}, host="127.0.0.2")
    [row] = capture(collection, server.url("/"), allow_private=True)
    assert row.outcome == "ok" and row.ip == "127.0.0.2"
