"""rclone as an S3 client (remote from env vars only): copy, then check compares MD5s."""

import os

import pytest

from gateway import MiB, find_tool, rclone_env
from helpers import make_tree, read_tree, run_tool

pytestmark = pytest.mark.rclone

TREE = {
    "one.txt": b"first file\n",
    "nested/two.bin": os.urandom(123_456),
    "nested/deep/three with space.txt": b"third\n",
    "nested/deep/four-\u00e9.txt": b"fourth\n",
}


@pytest.fixture
def rclone(gw):
    exe, env = find_tool("rclone"), rclone_env(gw)
    return lambda *args: run_tool([exe, *args], env)


def test_copy_then_check(rclone, gw, bucket, tmp_path):
    make_tree(tmp_path / "src", TREE)
    rclone("copy", str(tmp_path / "src"), f"ferry:{bucket}/copied")
    assert read_tree(gw.bucket_dir(bucket) / "copied") == TREE
    rclone("check", str(tmp_path / "src"), f"ferry:{bucket}/copied")  # exit 0 = no differences
    sizes = rclone("ls", f"ferry:{bucket}")
    assert {line.split(None, 1)[1]: int(line.split(None, 1)[0])
            for line in sizes.splitlines()} == {f"copied/{k}": len(v) for k, v in TREE.items()}


def test_check_detects_difference(rclone, gw, bucket, tmp_path):
    """Guards the test above: check really compares content."""
    make_tree(tmp_path / "src", {"f.txt": b"original"})
    rclone("copy", str(tmp_path / "src"), f"ferry:{bucket}")
    (tmp_path / "src" / "f.txt").write_bytes(b"modified")  # same size, other MD5
    with pytest.raises(pytest.fail.Exception, match="differen"):
        rclone("check", str(tmp_path / "src"), f"ferry:{bucket}")


def test_multipart_copy_then_check(rclone, gw, bucket, tmp_path):
    data = os.urandom(11 * MiB)
    make_tree(tmp_path / "src", {"big.bin": data})
    rclone("copy", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M",
           str(tmp_path / "src"), f"ferry:{bucket}/mp")
    assert gw.object_path(bucket, "mp/big.bin").read_bytes() == data
    rclone("check", str(tmp_path / "src"), f"ferry:{bucket}/mp")
    rclone("copy", f"ferry:{bucket}/mp", str(tmp_path / "back"))
    assert (tmp_path / "back" / "big.bin").read_bytes() == data
