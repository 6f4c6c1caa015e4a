"""MLflow (its own venv) with its artifact store on the gateway: log a run, download it back.

Set up as a user would for a non-AWS S3 endpoint: a local tracking store (SQLite, MLflow's
default), an experiment whose artifact location is s3://model-checkpoints/mlflow, and
MLFLOW_S3_ENDPOINT_URL plus the AWS keys in the environment. The MLflow code runs in the
mlflow venv's python as a script. Runs over each backend (a folder, and OneDrive through the
Graph emulator).
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from gateway import MiB, tool_python
from helpers import ensure_bucket, files_under, make_tree, read_tree

pytestmark = pytest.mark.mlflow

BUCKET = "model-checkpoints"
ARTIFACT_LOCATION = f"s3://{BUCKET}/mlflow"
CHECKPOINT = {
    "weights.bin": os.urandom(2 * MiB + 4321),
    "config.json": b'{"layers": 4, "hidden": 128}\n',
    "tokenizer/vocab.txt": b"".join(b"token%d\n" % i for i in range(1000)),
}
PARAMS = {"lr": "0.001", "epochs": "3", "optimizer": "adam"}
LOSSES = [0.9, 0.5, 0.25]

SCRIPT = r"""
import json, sys
import mlflow
from mlflow import MlflowClient

tracking_uri, src, dst, params_json, losses_json = sys.argv[1:6]
mlflow.set_tracking_uri(tracking_uri)
experiment_id = mlflow.create_experiment("ferry-test", artifact_location=sys.argv[6])
with mlflow.start_run(experiment_id=experiment_id) as run:
    mlflow.log_params(json.loads(params_json))
    for step, loss in enumerate(json.loads(losses_json)):
        mlflow.log_metric("loss", loss, step=step)
    mlflow.log_artifacts(src, artifact_path="checkpoint")
run_id = run.info.run_id

client = MlflowClient()
finished = client.get_run(run_id)
listed = client.list_artifacts(run_id, "checkpoint")
local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="checkpoint",
                                            dst_path=dst)
print(json.dumps({
    "run_id": run_id,
    "status": finished.info.status,
    "artifact_uri": finished.info.artifact_uri,
    "params": finished.data.params,
    "losses": [m.value for m in client.get_metric_history(run_id, "loss")],
    "listed": sorted((f.path, f.is_dir, f.file_size) for f in listed),
    "downloaded_to": local,
}))
"""


def test_log_run_and_download_artifacts(backend_gw, tmp_path):
    s3 = backend_gw.client()
    ensure_bucket(s3, BUCKET)
    make_tree(tmp_path / "checkpoint", CHECKPOINT)
    (tmp_path / "download").mkdir()

    env = backend_gw.client_env()
    del env["S3_ENDPOINT_URL"]
    env.update(MLFLOW_S3_ENDPOINT_URL=backend_gw.endpoint,
               MLFLOW_DISABLE_TELEMETRY="true")  # it would send usage reports otherwise
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    argv = [tool_python("mlflow"), "-c", SCRIPT, tracking_uri, str(tmp_path / "checkpoint"),
            str(tmp_path / "download"), json.dumps(PARAMS), json.dumps(LOSSES),
            ARTIFACT_LOCATION]
    proc = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=150, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        pytest.fail(f"the MLflow script exited {proc.returncode}\n"
                    f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-6000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])

    run_id = out["run_id"]
    assert out["status"] == "FINISHED"
    assert out["params"] == PARAMS
    assert out["losses"] == LOSSES
    assert out["artifact_uri"] == f"{ARTIFACT_LOCATION}/{run_id}/artifacts"
    assert out["listed"] == [["checkpoint/config.json", False, len(CHECKPOINT["config.json"])],
                             ["checkpoint/tokenizer", True, None],
                             ["checkpoint/weights.bin", False, len(CHECKPOINT["weights.bin"])]]
    assert read_tree(tmp_path / "download" / "checkpoint") == CHECKPOINT

    # boto3 sees the same objects under the run's artifact prefix...
    prefix = f"mlflow/{run_id}/artifacts/checkpoint/"
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    objects = {o["Key"][len(prefix):]: o["Size"] for o in listed.get("Contents", [])}
    assert objects == {rel: len(data) for rel, data in CHECKPOINT.items()}
    weights = s3.get_object(Bucket=BUCKET, Key=prefix + "weights.bin")["Body"].read()
    assert weights == CHECKPOINT["weights.bin"]
    # ...and they are in the backend's storage: the folder, or the emulated drive.
    on_disk = backend_gw.bucket_dir(BUCKET) / "mlflow" / run_id / "artifacts" / "checkpoint"
    assert files_under(on_disk) == set(CHECKPOINT)
