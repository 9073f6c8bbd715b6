-- Claims by document, place in it and id: SQLite puts NULLs first (notes, claims of no span).
CREATE INDEX claims_in_listing_order ON claims (document_key, text_start, id)
