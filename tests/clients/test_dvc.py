"""DVC (dvc[s3], its own venv) with an S3 remote on the gateway: push, wipe, pull.

The remote is set up as a user would for a non-AWS S3 endpoint: `endpointurl` in the
repository's config, the keys in its .dvc/config.local; nothing else. Runs over each backend
(a folder, and OneDrive through the Graph emulator).
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from gateway import MiB, find_tool
from helpers import ensure_bucket, files_under, read_tree, run_tool

pytestmark = pytest.mark.dvc

BUCKET = "datasets"
PREFIX = "dvc-store"
DATASET = {
    "train.csv": b"id,label\n" + b"".join(b"%d,cat\n" % i for i in range(500)),
    "labels.json": b'{"0": "cat", "1": "dog"}\n',
    "images/shard-000.bin": os.urandom(3 * MiB + 12_345),
    "images/README.txt": b"random bytes standing in for images\n",
}


@pytest.fixture
def dvc(backend_gw, tmp_path):
    """Runs `dvc ARGS...` in a fresh git + DVC repository; returns its output."""
    repo = tmp_path / "repo"
    repo.mkdir()
    env = backend_gw.client_env()
    # The keys come from DVC's own config only: no AWS variables, and empty AWS config files
    # (aiobotocore refuses AWS_CONFIG_FILE=/dev/null: "config file ... could not be found").
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
                 "AWS_REGION", "S3_ENDPOINT_URL"):
        env.pop(name, None)
    empty = tmp_path / "aws-empty"
    empty.write_text("")
    env.update(AWS_CONFIG_FILE=str(empty), AWS_SHARED_CREDENTIALS_FILE=str(empty))
    env.update(DVC_NO_ANALYTICS="1", DVC_SITE_CACHE_DIR=str(tmp_path / "dvc-site-cache"),
               GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
    exe = find_tool("dvc")

    def run(*args: str, timeout: float = 120) -> str:
        return run_tool([exe, *args], env, timeout=timeout, cwd=repo)

    run_tool(["git", "init", "-q"], env, cwd=repo)
    run("init", "-q")
    run.repo = repo
    return run


def add_remote(dvc, gw, prefix: str, secret_key: str | None = None):
    """The default remote s3://datasets/PREFIX on the gateway; returns a boto3 client."""
    s3 = gw.client()
    ensure_bucket(s3, BUCKET)
    dvc("remote", "add", "-d", "store", f"s3://{BUCKET}/{prefix}")
    dvc("remote", "modify", "store", "endpointurl", gw.endpoint)
    dvc("remote", "modify", "--local", "store", "access_key_id", gw.access_key)
    dvc("remote", "modify", "--local", "store", "secret_access_key", secret_key or gw.secret_key)
    return s3


def test_push_wipe_pull(dvc, backend_gw):
    s3 = add_remote(dvc, backend_gw, PREFIX)

    data = dvc.repo / "data"
    for rel, content in DATASET.items():
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_bytes(content)
    dvc("add", "data")
    dvc("push")

    # The remote holds each file once by content hash, plus the directory's manifest.
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/")
    keys = [o["Key"] for o in listed.get("Contents", [])]
    assert len(keys) == len(DATASET) + 1, keys
    assert all(k.startswith(f"{PREFIX}/files/md5/") for k in keys), keys
    assert sum(k.endswith(".dir") for k in keys) == 1, keys
    # ...and it is in the backend's storage: the folder, or the emulated drive.
    stored = files_under(backend_gw.bucket_dir(BUCKET) / PREFIX)
    assert {f"{PREFIX}/{p}" for p in stored} == set(keys)
    sizes = sorted(o["Size"] for o in listed["Contents"] if not o["Key"].endswith(".dir"))
    assert sizes == sorted(len(v) for v in DATASET.values())

    shutil.rmtree(dvc.repo / ".dvc" / "cache")
    shutil.rmtree(data)
    dvc("pull")
    assert read_tree(data) == DATASET

    status = json.loads(dvc("status", "--cloud", "--json"))
    assert status == {}, status

    # Guards the check above: `dvc status -c` really asks the remote. (It takes a directory
    # whose manifest is on the remote as complete, so all of it goes.)
    s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys]})
    status = json.loads(dvc("status", "--cloud", "--json"))
    assert status == {"data": "new", **{f"data/{rel}": "new" for rel in DATASET}}, status


def test_wrong_secret_is_refused(dvc, backend_gw):
    """A push signed with a wrong secret fails; DVC reports it and uploads nothing."""
    prefix = f"{PREFIX}-denied-{os.urandom(4).hex()}"
    s3 = add_remote(dvc, backend_gw, prefix, secret_key="not-the-secret")
    (dvc.repo / "model.bin").write_bytes(os.urandom(1000))
    dvc("add", "model.bin")
    with pytest.raises(pytest.fail.Exception, match="403|Forbidden|SignatureDoesNotMatch"):
        dvc("push", timeout=60)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/")
