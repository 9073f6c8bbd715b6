-- The size of each document version read, set when the collection keeps a copy of its bytes
-- (documents/sha256/..): NULL for versions read before copies were kept.
ALTER TABLE document_versions ADD COLUMN size INTEGER;
