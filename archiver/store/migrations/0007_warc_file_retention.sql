-- How an object store locks each WARC file (COMPLIANCE, GOVERNANCE) and until when (ISO 8601),
-- as it reported on upload: NULL for files in a local folder.
ALTER TABLE warc_files ADD COLUMN retention_mode TEXT;
ALTER TABLE warc_files ADD COLUMN retain_until TEXT
