"""Stage 5, checking: reading WARC files once (`scan`), every offline check of a collection
(`verify`), live drift (`drift`) and the repair of what an interrupted run left (`doctor`)."""
