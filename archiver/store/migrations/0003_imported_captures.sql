-- Captures and WARC files made by another tool and imported: the file they came in.
ALTER TABLE captures ADD COLUMN imported_from TEXT;
ALTER TABLE warc_files ADD COLUMN imported_from TEXT;
