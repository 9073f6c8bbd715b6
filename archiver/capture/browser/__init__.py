"""Browser captures: a cited page rendered in Chromium as a reader saw it, every request it made
recorded byte for byte by archiver's own transport.

The browser never connects to an origin. Each capture's browser context has a recording proxy
of its own (`proxy.RecordingProxy`) that hands every request, plain or inside a CONNECT tunnel
whose TLS it ends with the run's throwaway authority (`authority.InterceptAuthority`, pinned in
Chromium by its leaf key), to `Fetcher.forward`: the same safe resolver, address policy,
pinning, limits and byte-exact spooling as a plain capture, applied before any connection.
`wire` is the HTTP/1.1 the proxy speaks with the browser, `holding` what becomes of a connection
after a response (a document cut short is held open). Chromium's own background traffic
goes to `proxy.RefusingProxy` and is refused, never recorded. `chromium` drives the browser
(Playwright, Debian's Chromium) and `render` one page's bounded life in it; `session` is the
run's one Chromium with its authority and refusing proxy; `pages` captures a page through
browser and proxy; `result` and `records` are what a browser capture returns and the WARC
records it adds; `replay` serves a capture's own records back to the browser, offline.
"""
