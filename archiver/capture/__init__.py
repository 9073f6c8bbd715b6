"""Stage 4, capturing: a capture run (`run`) fetches URLs through `fetch/` (safe resolver,
byte-recording transport, engine), builds WARC records and writes them (`warc`), and has
each capture attested, cataloged and logged."""
