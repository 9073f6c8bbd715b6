"""Who owns the socket at the other end of a loopback connection (capture/browser/peer.py), read
from Linux's /proc/net/tcp and tcp6 for real connections: this process's own, and another user's,
which a capture's proxies refuse before reading a byte of it."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from archiver.capture.browser.peer import same_user, socket_owner
from archiver.capture.browser.proxy import RefusingProxy
from tests import other_user
from tests.conftest import eventually

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="Linux's /proc/net/tcp is needed")

# Connects to 127.0.0.1:PORT, says from which port, and holds the connection until told to end.
_HOLD = """
import socket, sys
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print(sock.getsockname()[1], flush=True)
sys.stdin.read()
"""


@pytest.fixture
def listener():
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server


def test_the_owner_of_this_processs_own_connection_is_its_user_over_ipv4_and_ipv6(listener):
    with socket.create_connection(listener.getsockname()) as client:
        accepted, peer = listener.accept()
        with accepted:
            assert peer == client.getsockname()
            assert socket_owner(peer, listener.getsockname()) == os.geteuid()
            assert same_user(accepted)
    # tcp6 prints a 16-byte address as four 32-bit words, each in the machine's byte order.
    with socket.create_server(("::1", 0), family=socket.AF_INET6) as server, \
            socket.create_connection(server.getsockname()[:2]) as client:
        accepted, peer = server.accept()
        with accepted:
            assert peer[:2] == client.getsockname()[:2]
            assert socket_owner(peer[:2], server.getsockname()[:2]) == os.geteuid()
            assert same_user(accepted)


def test_a_peer_no_process_holds_a_socket_for_has_no_owner(listener):
    """Not even root's: a closed connection lingering in TIME_WAIT is listed as uid 0."""
    with socket.create_connection(listener.getsockname()):
        accepted, peer = listener.accept()
    with accepted:
        accepted.recv(1)  # the client's end: it closed first, so its side waits in TIME_WAIT
    eventually(lambda: "06" in {line.split()[3] for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
                                if line.split()[1].endswith(f":{peer[1]:04X}")}, "in TIME_WAIT")
    assert socket_owner(peer, listener.getsockname()) == -1
    assert socket_owner(("127.0.0.1", 1), listener.getsockname()) == -1


@pytest.mark.skipif(other_user.why_not() is not None, reason=str(other_user.why_not()))
def test_another_users_connection_is_owned_by_that_user_and_refused(listener):
    holder = subprocess.Popen(other_user.command(_HOLD, str(listener.getsockname()[1])),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = int(holder.stdout.readline())
        accepted, peer = listener.accept()
        with accepted:
            assert peer == ("127.0.0.1", port)
            assert socket_owner(peer, listener.getsockname()) == other_user.NOBODY
            assert not same_user(accepted)
    finally:
        holder.communicate("", timeout=30)


@pytest.mark.skipif(other_user.why_not() is not None, reason=str(other_user.why_not()))
def test_the_refusing_proxy_answers_another_user_403_and_notes_nothing(network_sandbox):
    refusing = RefusingProxy()
    refusing.start()
    try:
        port = int(refusing.address.rsplit(":", 1)[1])
        [(_, _, got)] = other_user.forge([(port, "GET http://updates.test/check HTTP/1.1\r\nHost: updates.test\r\n\r\n")])
        assert got.startswith(b"HTTP/1.1 403 ") and b"another user" in got, got
        assert refusing.refused == []
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:  # its own user's is served
            sock.sendall(b"GET http://updates.test/check HTTP/1.1\r\nHost: updates.test\r\n\r\n")
            assert sock.recv(200).startswith(b"HTTP/1.1 403 ")
        assert refusing.refused == ["GET http://updates.test/check"]
    finally:
        refusing.close()
    assert network_sandbox == []
