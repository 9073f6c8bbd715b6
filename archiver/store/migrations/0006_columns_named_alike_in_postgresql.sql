-- Column names PostgreSQL reserves (offset, end) renamed, and start with end, and each
-- citation's place among its claim's citations, which SQLite's rowid gave and PostgreSQL lacks.
ALTER TABLE records RENAME COLUMN "offset" TO warc_offset;
ALTER TABLE claims RENAME COLUMN start TO text_start;
ALTER TABLE claims RENAME COLUMN "end" TO text_end;
ALTER TABLE citations ADD COLUMN position INTEGER
