-- The queued job a worker made a capture for (archiver worker), NULL for every other capture.
-- Unique, so a job taken again after its worker died is cataloged once (INSERT … ON CONFLICT).
ALTER TABLE captures ADD COLUMN job_id TEXT;
CREATE UNIQUE INDEX captures_job_id ON captures (job_id)
