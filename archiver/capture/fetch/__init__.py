"""Fetching: a safe resolver, a byte-recording transport under requests, and the capture engine."""
