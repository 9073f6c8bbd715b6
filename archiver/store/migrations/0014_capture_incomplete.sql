-- What a capture's record holds less of than the page had, in one line ("incomplete: 2 requests
-- of the page not recorded …"), read from its metadata record when it was made (capture/shortfalls.py).
-- A view for listings, not signed: the metadata record it is read from is. NULL when nothing is
-- missing, and for captures made before it was kept.
ALTER TABLE captures ADD COLUMN incomplete TEXT
