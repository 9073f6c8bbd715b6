-- What each capture run set out to capture, so that `capture --resume` takes up the runs it
-- resumes and no older one: the URL keys of its targets (planned_urls: how many, NULL for a run
-- recorded before runs kept their plans, whose captures a resume skips as it always did), and
-- the later run, finished, that captured every one of them (a resume of it, or a run over the
-- same URLs): from then on it counts as finished, and a second resume has nothing to take up.
ALTER TABLE runs ADD COLUMN planned_urls INTEGER;
ALTER TABLE runs ADD COLUMN completed_by TEXT REFERENCES runs(id);
CREATE TABLE run_urls (
    run_id TEXT NOT NULL REFERENCES runs(id),
    url_key TEXT NOT NULL,
    PRIMARY KEY (run_id, url_key)
)
