"""aws cli (its own venv and botocore): s3 cp, s3 sync, s3 ls, s3api head-object."""

import json
import os

import pytest

from gateway import MiB, find_tool
from helpers import make_tree, md5_hex, multipart_etag, read_tree, run_tool

pytestmark = pytest.mark.awscli

TREE = {
    "a.txt": b"alpha\n",
    "sub/b.bin": os.urandom(70_000),
    "sub/deeper/c d.txt": b"name with a space\n",
    "sub/deeper/ü.txt": "unicode ✓\n".encode(),
}


@pytest.fixture
def aws(gw):
    exe, env = find_tool("aws"), gw.client_env()
    return lambda *args: run_tool([exe, "--endpoint-url", gw.endpoint, *args], env)


def test_cp_up_and_down(aws, gw, bucket, tmp_path):
    data = os.urandom(9 * MiB + 7)  # above the cli's 8 MiB multipart threshold
    (tmp_path / "up.bin").write_bytes(data)
    aws("s3", "cp", str(tmp_path / "up.bin"), f"s3://{bucket}/cli/up.bin")
    assert gw.object_path(bucket, "cli/up.bin").read_bytes() == data

    aws("s3", "cp", f"s3://{bucket}/cli/up.bin", str(tmp_path / "down.bin"))
    assert (tmp_path / "down.bin").read_bytes() == data

    head = json.loads(aws("s3api", "head-object", "--bucket", bucket, "--key", "cli/up.bin"))
    assert head["ContentLength"] == len(data)
    assert head["ETag"] == multipart_etag(data, 8 * MiB)


def test_head_object_single_put(aws, bucket, tmp_path):
    (tmp_path / "f").write_bytes(b"tiny")
    aws("s3", "cp", str(tmp_path / "f"), f"s3://{bucket}/f", "--content-type", "text/x-tiny")
    head = json.loads(aws("s3api", "head-object", "--bucket", bucket, "--key", "f"))
    assert head["ETag"] == f'"{md5_hex(b"tiny")}"'
    assert head["ContentLength"] == 4
    assert head["ContentType"] == "text/x-tiny"


def test_sync_both_ways_and_ls(aws, gw, bucket, tmp_path):
    src, back = tmp_path / "src", tmp_path / "back"
    make_tree(src, TREE)
    aws("s3", "sync", str(src), f"s3://{bucket}/tree/")
    assert read_tree(gw.bucket_dir(bucket) / "tree") == TREE

    listing = aws("s3", "ls", "--recursive", f"s3://{bucket}/")
    rows = [line.split(None, 3) for line in listing.splitlines() if line.strip()]
    assert {r[3]: int(r[2]) for r in rows} == {f"tree/{k}": len(v) for k, v in TREE.items()}

    aws("s3", "sync", f"s3://{bucket}/tree/", str(back))
    assert read_tree(back) == TREE

    # a second sync with one change uploads only that change
    (src / "a.txt").write_bytes(b"alpha, changed and longer\n")
    out = aws("s3", "sync", str(src), f"s3://{bucket}/tree/")
    assert "a.txt" in out and "b.bin" not in out
    assert gw.object_path(bucket, "tree/a.txt").read_bytes() == b"alpha, changed and longer\n"
