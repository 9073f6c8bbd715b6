"""The site bench/browser.py captures: 12 loopback hosts (127.0.0.1 .. 127.0.0.12, one port),
each page with 20 subresources from 3 origins, every response after 50 ms."""

from __future__ import annotations

import http.server
import json
import random
import struct
import threading
import time
import zlib

from capture import pseudo_text  # bench/capture.py, beside this script

HOSTS = 12
LATENCY = 0.05  # seconds each response waits

def host(i: int) -> str:
    return f"127.0.0.{i % HOSTS + 1}"


def png(seed: str, width: int = 48, height: int = 32) -> bytes:
    """A small PNG of seeded noise (about 4.6 kB), different for every URL."""
    rng = random.Random(seed)
    rows = b"".join(b"\0" + rng.randbytes(width * 3) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def page_files(n: int, port: int) -> dict[str, tuple[str, bytes]]:
    """Page n and its 20 subresources: URL → (content type, body). The page is on host n, its
    subresources on that host and the next two; one image only a stylesheet names, the JSON only
    a script fetches."""
    a, b, c = (f"http://{host(n + k)}:{port}/page{n}" for k in range(3))
    rng = random.Random(n)
    images = [f"{(a, b, c)[i % 3]}/img{i}.png" for i in range(13)]
    text = [pseudo_text(rng, 1200).decode() for _ in range(len(images))]
    body = "".join(f'<p>{t}</p>\n<p><img src="{src}" width="240" height="160" alt="figure {i}"></p>\n'
                   for i, (t, src) in enumerate(zip(text, images)))
    html = (f'<!doctype html>\n<html><head><meta charset="utf-8"><title>Page {n}</title>\n'
            f'<link rel="stylesheet" href="{a}/style.css">\n<link rel="stylesheet" href="{b}/theme.css">\n'
            f'<script src="{a}/lib.js"></script>\n<script src="{c}/widget.js" defer></script>\n'
            f'</head><body><h1 class="banner">Page {n}</h1>\n<div id="data">Loading…</div>\n{body}'
            f'<script src="{a}/app.js"></script>\n</body></html>\n')
    files = {
        f"{a}.html": ("text/html; charset=utf-8", html.encode()),
        f"{a}/style.css": ("text/css", (f'body {{ font-family: serif; max-width: 50em; margin: auto }}\n'
                                        f'.banner {{ background: url("{b}/bg.png") repeat-x }}\n').encode()),
        f"{b}/theme.css": ("text/css", f"h1 {{ color: #{n * 4099 % 0xFFFFFF:06x} }} /* page {n} */\n".encode()),
        f"{a}/lib.js": ("text/javascript", f"window.pageNumber = {n};\n".encode()),
        f"{c}/widget.js": ("text/javascript", f"document.title += ' ({n})';\n".encode()),
        f"{a}/app.js": ("text/javascript", (f'fetch("{c}/data.json").then(r => r.json())'
                                            '.then(d => { document.getElementById("data").textContent = d.text; });\n').encode()),
        f"{c}/data.json": ("application/json", json.dumps({"page": n, "text": pseudo_text(rng, 300).decode()}).encode()),
        f"{b}/bg.png": ("image/png", png(f"{n}/bg")),
    }
    files.update({src: ("image/png", png(src.split("/", 3)[3])) for src in images})
    return files


def site(pages: int, port: int) -> dict[str, tuple[str, bytes]]:
    return {url: file for n in range(pages) for url, file in page_files(n, port).items()}


def page_urls(pages: int, port: int) -> list[str]:
    return [f"http://{host(n)}:{port}/page{n}.html" for n in range(pages)]


def serve_site(ready, port_out, pages: int) -> None:
    """Process body (for capture.start_server): a ThreadingHTTPServer on each of the 12 hosts (one port), answering every
    request after LATENCY, with CORS allowed (the JSON is fetched across origins)."""
    files: dict[str, tuple[str, bytes]] = {}  # filled once the port is known: the pages name it

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # see capture.py: Nagle would delay every body by 40 ms

        def do_GET(self) -> None:
            time.sleep(LATENCY)
            address, port = self.server.server_address
            content_type, body = files.get(f"http://{address}:{port}{self.path}", ("text/plain", b""))
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Cache-Control", "max-age=3600")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args) -> None:
            pass

    port, servers = 0, []
    for i in range(HOSTS):
        servers.append(http.server.ThreadingHTTPServer((host(i), port), Handler))
        port = servers[0].server_address[1]
    files.update(site(pages, port))
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    port_out.value = port
    ready.set()
    threading.Event().wait()
