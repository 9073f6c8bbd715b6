-- Citations written before this version keep the order they were written in.
UPDATE citations SET position = rowid
