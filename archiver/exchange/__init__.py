"""Stage 6, exchanging: evidence bundles (WACZ and evidence/) and their report, verifying a
bundle with no collection, reading any WACZ safely, and importing other tools' captures."""
