"""s5cmd: parallel cp of a directory up and down, ls."""

import os

import pytest

from gateway import find_tool
from helpers import make_tree, read_tree, run_tool

pytestmark = pytest.mark.s5cmd

TREE = {f"set{i % 4}/file-{i:03d}.bin": os.urandom(1000 + 997 * i) for i in range(60)}
TREE["top level.txt"] = b"space in name\n"


@pytest.fixture
def s5cmd(gw):
    exe, env = find_tool("s5cmd"), gw.client_env()
    return lambda *args: run_tool([exe, "--endpoint-url", gw.endpoint, *args], env)


def test_parallel_cp_up_down_and_ls(s5cmd, gw, bucket, tmp_path):
    src, back = tmp_path / "src", tmp_path / "back"
    make_tree(src, TREE)
    s5cmd("--numworkers", "16", "cp", f"{src}/*", f"s3://{bucket}/dir/")
    assert read_tree(gw.bucket_dir(bucket) / "dir") == TREE

    listing = s5cmd("ls", f"s3://{bucket}/dir/*")
    # lines: "DATE TIME SIZE KEY" where KEY is relative to the listed prefix
    rows = [line.split(None, 3) for line in listing.splitlines() if line.strip()]
    assert {r[3]: int(r[2]) for r in rows} == {k: len(v) for k, v in TREE.items()}

    s5cmd("--numworkers", "16", "cp", f"s3://{bucket}/dir/*", f"{back}/")
    assert read_tree(back) == TREE
