"""Credentials that may not read what an upload reads of its bucket are refused when the
collection is opened (before a capture, or by doctor), in one line naming the permission, not
at the first upload after a capture: a real radosgw (conftest's gateway) whose bucket policy
denies them that one action (radosgw holds its owner to a policy's Deny, as AWS does)."""

from __future__ import annotations

import json

import pytest

from tests.test_s3_storage import make_bucket, page_server, s3_collection, stored_keys


def deny(s3, bucket: str, action: str) -> None:
    """A bucket policy refusing `action` to the gateway's one user (tests/radosgw.py: uid
    archiver), which owns the bucket."""
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": {"AWS": ["arn:aws:iam:::user/archiver"]}, "Action": [action],
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]}))


@pytest.mark.parametrize("permission, refused", [
    ("s3:GetBucketVersioning", "may not read whether bucket"),
    ("s3:ListBucketVersions", "may not list the versions of objects in bucket"),
])
def test_credentials_that_may_not_read_versions_are_refused_at_set_up_naming_the_permission(
        tmp_path, run_cli, raw_server, s3, permission, refused):
    bucket = make_bucket(s3, "COMPLIANCE", days=1)
    collection = s3_collection(tmp_path, run_cli, f"s3://{bucket}/team/")
    deny(s3, bucket, permission)
    for command in (["capture", "-C", collection.root, page_server(raw_server).url("/")],
                    ["doctor", "-C", collection.root, "--fix"]):
        result = run_cli(*command)
        assert result.exit_code == 2, result.output
        assert refused in result.output and f"allow {permission} to them" in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
    assert not list((collection.root / "warcs").iterdir())  # nothing captured, nothing waiting in the spool
    assert not stored_keys(s3, bucket)
