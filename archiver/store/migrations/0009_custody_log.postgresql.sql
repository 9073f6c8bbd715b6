-- One row per entry, its line exactly as signed. seq is the chain's order, so two writers
-- can never both append entry N.
CREATE TABLE custody_entries (
    seq INTEGER PRIMARY KEY,
    line TEXT NOT NULL
)
