-- What a capture's record holds less of than the page had, in one line ("incomplete: 2 requests
-- of the page not recorded …"), read from its metadata record when it was made (capture/shortfalls.py).
-- Signed in the capture's attestation (evidence/attestation.py, SIGNED_SINCE), so that verify holds
-- the listings to it. NULL when nothing is missing, and for captures made before it was kept.
ALTER TABLE captures ADD COLUMN incomplete TEXT
