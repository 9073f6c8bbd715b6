"""Stage 3, evidence: Ed25519 signing and keys over time, the signed attestation of each
capture, the hash-chained custody log, RFC 3161 timestamps, the Merkle tree, and the
manifest export and its seal."""
