"""Stage 5, checking: reading WARC files once (`scan`), every offline check of a collection
(`verify` runs them: `custody_log`, `records`, `attestations`, `manifests`, each reporting in
`findings`), live drift (`drift`) and the repair of what an interrupted run left (`doctor`)."""
