"""A throwaway one-node Ceph cluster with radosgw on 127.0.0.1, for tests that need a real S3
store enforcing Object Lock: a monitor, one OSD keeping its objects in memory, and radosgw,
started in a temporary folder and stopped after (settings as in ../shared/SCALE.md)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

NEEDED = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "monmaptool", "ceph")
ACCESS_KEY = "ARCHIVERTESTKEY00000"
SECRET_KEY = "archiver-test-secret-key-0000000000000000"


def missing_tools() -> list[str]:
    return [tool for tool in NEEDED if shutil.which(tool) is None]


def _free_ports(count: int) -> list[int]:
    """`count` different ports free on 127.0.0.1: all held bound at once while chosen, as a port
    bound and released may be given again to the very next bind."""
    held = [socket.socket() for _ in range(count)]
    try:
        for sock in held:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in held]
    finally:
        for sock in held:
            sock.close()


@dataclass
class Radosgw:
    """A running cluster: its S3 endpoint and the keys of its one user."""

    folder: Path
    endpoint: str
    processes: list[subprocess.Popen]
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY

    @property
    def log(self) -> Path:
        """radosgw's log: one line per request served (method, path, status, bytes sent)."""
        return self.folder / "log" / "client.rgw.test.log"

    def environment(self) -> dict[str, str]:
        """The standard AWS variables that point a client at this store."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": self.endpoint}

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in reversed(self.processes):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _config(folder: Path, fsid: str, mon_port: int, rgw_port: int) -> str:
    return f"""[global]
fsid = {fsid}
mon host = v1:127.0.0.1:{mon_port}
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr2 = false
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
osd objectstore = memstore
memstore device bytes = 1073741824
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon max pg per osd = 1000
osd crush chooseleaf type = 0
# Placed in the CRUSH map by `ceph osd crush add` before it starts: placing itself, the OSD
# could ask the monitor before knowing the cluster's fsid, and be refused ("wrong fsid").
osd crush update on start = false
osd class update on start = false
mon data = {folder}/mon/$name
osd data = {folder}/osd/$name
run dir = {folder}/run
admin socket = {folder}/run/$name.asok
log file = {folder}/log/$name.log
pid file = {folder}/run/$name.pid
keyring = /dev/null
debug ms = 0

[client.rgw.test]
rgw frontends = beast endpoint=127.0.0.1:{rgw_port}
rgw data = {folder}/rgw
debug rgw = 1
rgw dns name = 127.0.0.1
"""


def _run(folder: Path, *command: str) -> str:
    done = subprocess.run([*command, "-c", str(folder / "ceph.conf")], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def _wait_for_port(port: int, process: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listened on 127.0.0.1:{port} in time")


def start(folder: Path) -> Radosgw:
    """Make and start the cluster in `folder` (empty); about 15 seconds."""
    mon_port, rgw_port = _free_ports(2)
    fsid = str(uuid.uuid4())
    for sub in ("mon", "run", "log", "rgw"):
        (folder / sub).mkdir(parents=True)
    (folder / "ceph.conf").write_text(_config(folder, fsid, mon_port, rgw_port))
    conf = ["-c", str(folder / "ceph.conf")]
    processes: list[subprocess.Popen] = []
    gateway = Radosgw(folder, f"http://127.0.0.1:{rgw_port}", processes)
    try:
        subprocess.run(["monmaptool", "--create", "--addv", "a", f"[v1:127.0.0.1:{mon_port}]", "--fsid", fsid,
                        str(folder / "monmap")], check=True, capture_output=True)
        _run(folder, "ceph-mon", "--mkfs", "-i", "a", "--monmap", str(folder / "monmap"))
        processes.append(subprocess.Popen(["ceph-mon", "-f", "-i", "a", *conf], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 90
        _wait_for_port(mon_port, processes[-1], deadline)
        osd_uuid = str(uuid.uuid4())
        osd_id = _run(folder, "ceph", "osd", "new", osd_uuid).strip()
        (folder / "osd" / f"osd.{osd_id}").mkdir(parents=True)
        _run(folder, "ceph-osd", "-i", osd_id, "--mkfs", "--osd-uuid", osd_uuid)
        _run(folder, "ceph", "osd", "crush", "add", f"osd.{osd_id}", "1.0", "root=default")
        processes.append(subprocess.Popen(["ceph-osd", "-f", "-i", osd_id, *conf], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
        processes.append(subprocess.Popen(["radosgw", "-f", "-n", "client.rgw.test", *conf], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
        _wait_for_port(rgw_port, processes[-1], deadline)
        _run(folder, "radosgw-admin", "user", "create", "--uid", "archiver", "--display-name", "archiver tests",
             "--access-key", ACCESS_KEY, "--secret", SECRET_KEY)
    except BaseException:
        gateway.stop()
        raise
    return gateway
