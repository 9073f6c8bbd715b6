"""Another local user's process, for tests of what only archiver's own user may do: a Python
child run as `nobody` (uid 65534) by setpriv, which the test process can do as root (as CI runs)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

NOBODY = 65534

# Sends each (port, request) its bytes on a connection of its own and prints what came back
# (its first 200 bytes; empty when the proxy hung up or reset the connection).
_FORGE = r"""
import json, socket, sys
answers = []
for port, asked in json.loads(sys.argv[1]):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(asked.encode())
            got = sock.recv(200)
            if got.startswith(b"HTTP/1.1 200 Connection established"):  # a tunnel granted carries it inside
                host = asked.split()[1]
                sock.sendall(f"GET /INJECTED HTTP/1.1\r\nHost: {host}\r\nX-Forged: yes\r\n\r\n".encode())
                got += sock.recv(200)
        except OSError:
            got = b""
    answers.append([port, asked.split()[0], got.decode("latin-1")])
print(json.dumps(answers))
"""


def why_not() -> str | None:
    """Why another user's process cannot be started here, or None."""
    if os.geteuid() != 0:
        return "only root can run a process as another user"
    return None if shutil.which("setpriv") else "setpriv (util-linux) is needed to run a process as another user"


def command(script: str, *args: str) -> list[str]:
    """The command running the Python `script` with `args` as user nobody."""
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
            sys.executable, "-I", "-c", script, *args]


def forge(asked: list[tuple[int, str]]) -> list[tuple[int, str, bytes]]:
    """Each request sent as user nobody to its port on 127.0.0.1: (port, method, what came back)."""
    done = subprocess.run(command(_FORGE, json.dumps(asked)), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [(port, method, got.encode("latin-1")) for port, method, got in json.loads(done.stdout)]
