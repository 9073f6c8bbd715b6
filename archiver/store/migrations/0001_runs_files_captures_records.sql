-- Runs, WARC files, captures and the records of each.
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    software TEXT NOT NULL,
    operator TEXT NOT NULL,
    settings TEXT NOT NULL
);
CREATE TABLE warc_files (
    name TEXT PRIMARY KEY,
    warcinfo_id TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    closed_at TEXT,
    size INTEGER,
    sha256 TEXT
);
CREATE TABLE captures (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id),
    url TEXT NOT NULL,
    url_key TEXT NOT NULL,
    final_url TEXT,
    outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'truncated', 'failed')),
    http_status INTEGER,
    error TEXT,
    truncated TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    ip TEXT,
    cert_sha256 TEXT,
    redirects INTEGER NOT NULL DEFAULT 0,
    payload_digest TEXT,
    response_length INTEGER,
    warc_file TEXT REFERENCES warc_files(name),
    response_record_id TEXT,
    metadata_record_id TEXT
);
CREATE INDEX captures_by_url ON captures (url_key, started_at);
CREATE TABLE records (
    record_id TEXT PRIMARY KEY,
    capture_id TEXT NOT NULL REFERENCES captures(id),
    seq INTEGER NOT NULL,
    warc_type TEXT NOT NULL,
    role TEXT NOT NULL,
    target_uri TEXT,
    warc_date TEXT NOT NULL,
    warc_file TEXT NOT NULL REFERENCES warc_files(name),
    "offset" INTEGER NOT NULL,
    length INTEGER NOT NULL,
    content_length INTEGER NOT NULL,
    block_digest TEXT NOT NULL,
    payload_digest TEXT,
    truncated TEXT
);
CREATE INDEX records_by_capture ON records (capture_id, seq);
