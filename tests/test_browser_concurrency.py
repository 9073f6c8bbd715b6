"""Browser captures render several pages at once in the one Chromium, never more per host than
`per_host`, and each page's requests still land in its own capture; without a concurrency set,
a browser run renders 4 pages at once and a plain run fetches 8."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

import pytest

from archiver.store.collection import Collection
from tests.conftest import http_response, send_bytes, warc_records
from tests.test_browser_capture import CHROMIUM, PHOTO, chromium  # noqa: F401 (a fixture)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it)")

# How long a page's image waits for another page's before it fails the test: far beyond how
# long two pages rendered together take to ask for theirs, and within the capture deadline.
MEETING_WAIT = 30.0


@dataclass
class Meeting:
    """The origins' log. Each page's image is held until an image of a page on the other host
    arrives, so it is answered only if two pages were in flight together; a page's document
    asked for while another page of its host is still unanswered breaks the per-host limit."""

    met: list[tuple[str, str]] = field(default_factory=list)
    alone: list[str] = field(default_factory=list)  # images that waited in vain
    crowded: list[str] = field(default_factory=list)  # pages started while their host had one open
    _open: dict[str, int] = field(default_factory=dict)
    _waiting: list[list] = field(default_factory=list)  # [host, path, met?]
    _change: threading.Condition = field(default_factory=threading.Condition)

    def page(self, host: str, body: bytes):
        def respond(conn, request: bytes) -> None:
            with self._change:
                if self._open.get(host):
                    self.crowded.append(request.split(b" ", 2)[1].decode())
                self._open[host] = self._open.get(host, 0) + 1
            conn.sendall(http_response(body))
        return respond

    def image(self, host: str, path: str):
        def respond(conn, request: bytes) -> None:
            met = self._meet(host, path)
            with self._change:
                self._open[host] -= 1
            conn.sendall(http_response(PHOTO, headers=[("Content-Type", "image/png")]) if met
                         else http_response(b"no other page", "503 Service Unavailable"))
        return respond

    def _meet(self, host: str, path: str) -> bool:
        with self._change:
            partner = next((w for w in self._waiting if w[0] != host and not w[2]), None)
            if partner is not None:
                partner[2] = True
                self.met.append((partner[1], path))
                self._change.notify_all()
                return True
            me = [host, path, False]
            self._waiting.append(me)
            met = self._change.wait_for(lambda: me[2], timeout=MEETING_WAIT)
            self._waiting.remove(me)
            if not met:
                self.alone.append(path)
            return met


def test_pages_render_together_within_the_per_host_limit_each_with_its_own_requests(
        run_cli, raw_server, collection, chromium, network_sandbox):
    config = collection.root / "archiver.toml"
    config.write_text(config.read_text().replace('["127.0.0.1/32"]', '["127.0.0.1/32", "127.0.0.2/32"]'))
    meeting = Meeting()
    servers, sent = {}, {}
    for host in ("127.0.0.1", "127.0.0.2"):
        routes = {}
        for page in ("first", "second"):
            image = f"/{page}.png"
            body = f'<html><body><h1>{page} on {host}</h1><img src="{image}"></body></html>'.encode()
            routes[f"/{page}"] = meeting.page(host, body)
            routes[image] = meeting.image(host, image)
            routes["/favicon.ico"] = send_bytes(http_response(b"none", "404 Not Found"))
            sent[(host, page)] = body
        servers[host] = raw_server(routes, host=host)
    urls = [server.url(f"/{page}") for server in servers.values() for page in ("first", "second")]

    result = run_cli("capture", "-C", collection.root, "--browser", "--per-host", "1", "--json", *urls)
    assert result.exit_code == 0, result.output
    assert meeting.alone == [], "a page's image waited for another page in vain: pages were rendered one by one"
    assert len(meeting.met) == 2
    assert meeting.crowded == [], "two pages of one host were rendered at once despite --per-host 1"

    summary = json.loads(result.stdout)
    assert sorted(c["url"] for c in summary["captures"]) == sorted(urls)
    assert {c["outcome"] for c in summary["captures"]} == {"ok"}
    records = warc_records(collection.storage.folder)
    responses = {r.headers["WARC-Target-URI"]: r for r in records if r.type == "response"}
    metadata = {json.loads(r.block)["requested_url"]: json.loads(r.block) for r in records
                if r.type == "metadata" and r.headers.get("Content-Type") == "application/json"}
    for (host, page), body in sent.items():
        url, image = servers[host].url(f"/{page}"), servers[host].url(f"/{page}.png")
        assert responses[url].block == http_response(body)
        assert responses[image].block == http_response(PHOTO, headers=[("Content-Type", "image/png")])
        # Each page's image is in that page's capture, not in the capture of a page rendered beside it.
        listed = {resource["url"]: resource for resource in metadata[url]["resources"]}
        assert listed[image]["response_record_id"] == responses[image].headers["WARC-Record-ID"]
        assert not {servers[h].url(f"/{p}.png") for h, p in sent if (h, p) != (host, page)} & set(listed)
        assert metadata[url]["settings"]["concurrency"] == 4  # none set: a browser's default
        assert "screenshot" in metadata[url]["artifacts"]
    assert network_sandbox == []

    verified = run_cli("verify", "-C", collection.root, "--json")
    assert verified.exit_code == 0, verified.output


def test_concurrency_unset_is_written_as_unset_and_means_8_over_http(run_cli, raw_server, collection):
    assert Collection.open(collection.root).config.capture.concurrency is None
    active = [line for line in (collection.root / "archiver.toml").read_text().splitlines()
              if line.startswith("concurrency")]
    assert active == []  # a number written there would apply to browser runs too
    server = raw_server({"/a": send_bytes(http_response(b"<p>a</p>")), "/b": send_bytes(http_response(b"<p>b</p>"))})
    assert run_cli("capture", "-C", collection.root, "--no-browser", server.url("/a")).exit_code == 0
    assert run_cli("capture", "-C", collection.root, "--no-browser", "--concurrency", "3",
                   server.url("/b")).exit_code == 0
    recorded = {json.loads(r.block)["requested_url"]: json.loads(r.block)["settings"]["concurrency"]
                for r in warc_records(collection.storage.folder)
                if r.type == "metadata" and r.headers.get("Content-Type") == "application/json"}
    assert recorded == {server.url("/a"): 8, server.url("/b"): 3}
