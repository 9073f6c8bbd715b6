-- Indexes in the order of the listings (store/listings.py), which `archiver claims` and
-- `archiver captures` read a page at a time, each page starting after the last row of the page
-- before: each page is a range of its index, not a sort of every claim or capture.
CREATE INDEX captures_by_start ON captures (started_at, id)
