-- Documents and the claims they make, citations, revisits, signed attestations and manifests.
CREATE TABLE documents (
    key TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    kind TEXT NOT NULL,
    encoding TEXT NOT NULL,
    date TEXT,
    title TEXT,
    warnings TEXT NOT NULL,
    first_read_at TEXT NOT NULL,
    last_read_at TEXT NOT NULL
);
CREATE TABLE document_versions (
    key TEXT NOT NULL REFERENCES documents(key),
    sha256 TEXT NOT NULL,
    read_at TEXT NOT NULL,
    PRIMARY KEY (key, sha256)
);
CREATE TABLE claims (
    id TEXT PRIMARY KEY,
    document_key TEXT REFERENCES documents(key),
    text TEXT NOT NULL,
    start INTEGER,
    "end" INTEGER,
    kind TEXT NOT NULL,
    extra TEXT,
    first_seen_at TEXT NOT NULL,
    superseded_at TEXT,
    verbatim INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX claims_by_document ON claims (document_key);
CREATE TABLE citations (
    claim_id TEXT NOT NULL REFERENCES claims(id),
    url_key TEXT NOT NULL,
    url TEXT NOT NULL,
    standalone INTEGER NOT NULL,
    PRIMARY KEY (claim_id, url_key)
);
CREATE INDEX citations_by_url ON citations (url_key);
ALTER TABLE captures ADD COLUMN revisit_of TEXT REFERENCES captures(id);
CREATE INDEX captures_ok_by_url ON captures (url_key) WHERE outcome = 'ok';
CREATE TABLE attestations (
    capture_id TEXT PRIMARY KEY REFERENCES captures(id),
    envelope TEXT NOT NULL
);
CREATE TABLE manifests (
    sequence INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL,
    content_sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL,
    file TEXT NOT NULL
);
