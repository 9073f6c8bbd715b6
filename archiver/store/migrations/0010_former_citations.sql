-- What a claim cited before a re-read of its document changed its URLs but not its words (same
-- text, same id): each URL it no longer cites, and when the re-read dropped it. A claim's id
-- then keeps the evidence it was quoted or bundled with in view (`show`, `claims --url`).
CREATE TABLE former_citations (
    claim_id TEXT NOT NULL REFERENCES claims(id),
    url_key TEXT NOT NULL,
    url TEXT NOT NULL,
    standalone INTEGER NOT NULL,
    dropped_at TEXT NOT NULL
);
CREATE INDEX former_citations_by_claim ON former_citations (claim_id);
CREATE INDEX former_citations_by_url ON former_citations (url_key)
