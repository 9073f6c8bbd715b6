"""pywb, the replay tool archivists use, serving a bundle for the tests: an `evidence`
collection made with wb-manager in its own folder, `wayback` listening on 127.0.0.1 only."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def serve(bundle: Path | list[Path], workdir: Path) -> tuple[subprocess.Popen, int]:
    """pywb serving the bundle (or a list of WARC files, as an archivist points it at a
    collection's warcs/) unframed on 127.0.0.1, and its port, once it answers."""
    bin_dir = Path(sys.executable).parent
    workdir.mkdir()
    (workdir / "config.yaml").write_text("framed_replay: false\n")
    subprocess.run([str(bin_dir / "wb-manager"), "init", "evidence"], cwd=workdir, check=True, capture_output=True)
    sources = ["--unpack-wacz", str(bundle)] if isinstance(bundle, Path) else [str(path) for path in bundle]
    subprocess.run([str(bin_dir / "wb-manager"), "add", *sources[:1], "evidence", *sources[1:]] if isinstance(bundle, Path)
                   else [str(bin_dir / "wb-manager"), "add", "evidence", *sources], cwd=workdir, check=True, capture_output=True)
    for _ in range(3):  # a port free when chosen may be another's before pywb binds it: then a new one
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        wayback = subprocess.Popen([str(bin_dir / "wayback"), "-b", "127.0.0.1", "-p", str(port)], cwd=workdir,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if _answers(wayback, port):
            return wayback, port
    raise AssertionError("pywb did not start")


def _answers(wayback: subprocess.Popen, port: int) -> bool:
    """Whether pywb answers on `port`, polled (it has no readiness signal) until it does or ends;
    stopped if it does not."""
    deadline = time.monotonic() + 120  # a guard against a hang, not a guess of how long it takes
    while wayback.poll() is None and time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/evidence/", timeout=5).read()
            return True
        except OSError:
            time.sleep(0.1)
    wayback.terminate()
    wayback.wait(10)
    return False
