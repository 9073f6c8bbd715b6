-- Claims by document, place in it and id, NULLs first (notes, claims of no span) as the listing
-- asks: PostgreSQL puts them last unless told.
CREATE INDEX claims_in_listing_order ON claims (document_key NULLS FIRST, text_start NULLS FIRST, id)
