"""archiver: preserve the web pages that claims cite, as byte-exact, verifiable evidence."""

__version__ = "0.1.0"
