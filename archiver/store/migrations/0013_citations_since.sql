-- When a claim began citing each URL: the read of its document (or the note) that first found
-- the URL in it, kept while the claim goes on citing it and, once a re-read drops it, with the
-- former citation. NULL for a citation recorded before this column: a read then recorded when
-- it dropped a URL, never when it added one.
ALTER TABLE citations ADD COLUMN cited_since TEXT;
ALTER TABLE former_citations ADD COLUMN cited_since TEXT
