"""RFC 3161 timestamps: ask a timestamp authority (TSA) to attest that some bytes (the
manifest) existed, and check such a token later.

A token proves that a hash existed by its `genTime`, as the TSA attests; it says nothing
about who made the data. What is saved is the whole DER TimeStampResponse, exactly as the
TSA sent it (a `.tsr` file), so `openssl ts -verify` can check it without this program.

- `token`: reading a token once into every field used, and describing it for a report;
- `request`: asking TSAs for a token over HTTP, the reply checked on arrival;
- `verification`: checking a token offline, every failed part named;
- `cms`: the TSA's CMS signature, checked with `cryptography` (a small DER walk).
"""
