"""The boto3 client of an S3 store, and how long it waits: each request waits at most the
collection's `timeout` ([storage] of archiver.toml) to connect and for each answer, and one the
store left unanswered that long is not sent again. botocore retries a timed-out request (a
first attempt and three retries, at 60 s each by default: four minutes, measured), so a hung
store would hold a command four times as long as the setting says; a store that answers it is
busy (503 Slow Down) is still retried."""

from __future__ import annotations

from archiver.store.storage_settings import StorageSettings

RETRIES = 3  # of a request the store answered with an error it may not make again (throttled, 500)
CONNECT_TIMEOUT = 10  # seconds: a store that answers at all connects at once


def make_client(settings: StorageSettings):
    import boto3
    from botocore.config import Config
    # boto3's default CRC32 checksums are off: the SHA-256 is the one sent, on every upload.
    config = Config(request_checksum_calculation="when_required", response_checksum_validation="when_required",
                    connect_timeout=min(CONNECT_TIMEOUT, settings.timeout), read_timeout=settings.timeout,
                    retries={"mode": "standard", "max_attempts": RETRIES},  # retries, after the first
                    **({"s3": {"addressing_style": settings.addressing_style}} if settings.addressing_style else {}))
    # A session of its own: the AWS variables and files as they are now, not as first read.
    client = boto3.session.Session().client("s3", endpoint_url=settings.endpoint, region_name=settings.region,
                                            config=config)
    # Asked before botocore's own retry handler: the first answer that is not None decides.
    client.meta.events.register_first("needs-retry.s3", _not_after_a_timeout)
    return client


def _not_after_a_timeout(caught_exception=None, **_) -> bool | None:
    """False (no retry) for a request that timed out; None leaves the decision to botocore."""
    return False if timed_out(caught_exception) else None


def timed_out(exc: BaseException | None) -> bool:
    """Whether botocore gave up waiting for the store (to connect, or for an answer)."""
    from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError
    return isinstance(exc, (ConnectTimeoutError, ReadTimeoutError))


def no_answer(settings: StorageSettings, endpoint: str) -> tuple[str, str]:
    """The one line (message, fix) saying that the store did not answer in time."""
    return (f"the S3 store at {endpoint} did not answer within {settings.timeout:g} s",
            "check that it is up and reachable from here (or raise timeout in [storage] of archiver.toml), "
            "then run the command again")


def error_code(exc) -> str:
    """The S3 error code of a botocore ClientError (its HTTP status when the answer named none)."""
    return str(exc.response.get("Error", {}).get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode"))
