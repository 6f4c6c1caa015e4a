"""Virtual-host style requests (BUCKET.DOMAIN) when the gateway has a --domain."""

import http.client

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest

from gateway import REGION, TARGET, VIRTUAL_HOST_DOMAIN

pytestmark = pytest.mark.skipif(TARGET != "ferry", reason="ferry's --domain")


def virtual_host_request(gw, method: str, bucket: str, key: str, body: bytes = b""):
    """Signs for http://BUCKET.DOMAIN:PORT/KEY and sends it to the gateway's address."""
    host = f"{bucket}.{VIRTUAL_HOST_DOMAIN}:{gw.port}"
    req = botocore.awsrequest.AWSRequest(method=method, url=f"http://{host}/{key}", data=body)
    creds = botocore.credentials.Credentials(gw.access_key, gw.secret_key)
    botocore.auth.S3SigV4Auth(creds, "s3", REGION).add_auth(req)
    headers = dict(req.headers.items())
    headers["Host"] = host
    conn = http.client.HTTPConnection(gw.host, gw.port, timeout=30)
    try:
        conn.request(method, f"/{key}", body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_virtual_host_put_and_get(gw, s3, bucket):
    status, body = virtual_host_request(gw, "PUT", bucket, "vh/object.txt", b"virtual")
    assert status == 200, body
    assert s3.get_object(Bucket=bucket, Key="vh/object.txt")["Body"].read() == b"virtual"
    status, body = virtual_host_request(gw, "GET", bucket, "vh/object.txt")
    assert (status, body) == (200, b"virtual")
    assert gw.object_path(bucket, "vh/object.txt").read_bytes() == b"virtual"


def test_path_style_still_works_with_a_domain(gw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="p", Body=b"path")
    assert s3.get_object(Bucket=bucket, Key="p")["Body"].read() == b"path"
