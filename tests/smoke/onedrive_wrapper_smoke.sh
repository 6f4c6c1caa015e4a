#!/usr/bin/env bash
# Smoke test: ferry's S3 gateway over a temporary folder, driven by boto3 and rclone.
#
# Starts `ferry serve s3` on 127.0.0.1:${FERRY_SMOKE_PORT:-9900} with fresh SigV4 keys (passed
# by environment only), uploads and downloads datasets/train.csv with boto3, then lists it
# with `rclone ls` through an S3 remote defined by environment variables.
# With FERRY_SMOKE_BACKEND=onedrive the gateway serves a OneDrive folder instead, through
# ferry's Graph emulator (`ferry emulator`, on the next port), and the object must end up in
# the emulated drive.
# Tools come from scripts/install-tools ($FERRY_TOOLS_DIR/env.sh).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PORT="${FERRY_SMOKE_PORT:-9900}"
BACKEND="${FERRY_SMOKE_BACKEND:-folder}"
EMULATOR_PORT=$((PORT + 1))
TOOLS_DIR="${FERRY_TOOLS_DIR:-$HOME/.cache/ferry/tools}"
FERRY_BIN="${FERRY_BIN:-target/debug/ferry}"
[[ "$FERRY_BIN" = /* ]] || FERRY_BIN="$REPO_ROOT/$FERRY_BIN"

WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/ferry-smoke.XXXXXX")"
ROOT_DIR="$WORK_DIR/root"
LOG_FILE="$WORK_DIR/gateway.log"
GATEWAY_PID=""
EMULATOR_PID=""

cleanup() {
    local status=$?
    for pid in "$GATEWAY_PID" "$EMULATOR_PID"; do
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    if [[ $status -ne 0 ]]; then
        echo "[smoke] FAILED (exit $status); gateway log:" >&2
        tail -n 50 "$LOG_FILE" >&2 2>/dev/null || true
    fi
    rm -rf "$WORK_DIR"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() { echo "[smoke] error: $*" >&2; exit 1; }

# health_ok: does GET /health answer 200? Pure bash, so it works before any tool is installed.
health_ok() {
    local line port="${1:-$PORT}"
    { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
    printf 'GET /health HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' "$port" >&3
    IFS= read -r -t 2 line <&3 || line=""
    exec 3<&- 3>&-
    [[ "$line" == "HTTP/1."?" 200"* ]]
}

[[ -x "$FERRY_BIN" ]] || fail "ferry binary not found at $FERRY_BIN (cargo build -p ferry, or set FERRY_BIN)"
health_ok && fail "something is already listening on 127.0.0.1:$PORT"

ACCESS_KEY="SMOKE$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n' | tr 'a-f' 'A-F')"
SECRET_KEY="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
mkdir -p "$ROOT_DIR"

SERVE_ARGS=(--root "$ROOT_DIR")
if [[ "$BACKEND" == onedrive ]]; then
    # The emulator keeps the drive's files under ROOT_DIR; the gateway signs in as an app.
    APP_SECRET="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
    cat >"$WORK_DIR/emulator.toml" <<TOML
root = "$ROOT_DIR"
[[apps]]
tenant = "smoke-tenant"
client_id = "smoke-app"
client_secret = "$APP_SECRET"
[[users]]
id = "smoke-user"
user_principal_name = "smoke@example.test"
display_name = "Smoke"
TOML
    echo "[smoke] starting ferry emulator on port $EMULATOR_PORT"
    "$FERRY_BIN" emulator --emulator-config "$WORK_DIR/emulator.toml" \
        --addr "127.0.0.1:$EMULATOR_PORT" </dev/null >"$WORK_DIR/emulator.log" 2>&1 &
    EMULATOR_PID=$!
    deadline=$((SECONDS + 30))
    until { exec 4<>"/dev/tcp/127.0.0.1/$EMULATOR_PORT"; } 2>/dev/null; do
        kill -0 "$EMULATOR_PID" 2>/dev/null || fail "emulator exited before it was ready"
        ((SECONDS < deadline)) || fail "emulator not ready on port $EMULATOR_PORT after 30s"
        sleep 0.1
    done
    exec 4<&- 4>&-
    export FERRY_GRAPH_AUTHORITY="http://127.0.0.1:$EMULATOR_PORT"
    export FERRY_GRAPH_URL="http://127.0.0.1:$EMULATOR_PORT/v1.0"
    export FERRY_GRAPH_TENANT=smoke-tenant FERRY_GRAPH_CLIENT_ID=smoke-app
    export FERRY_GRAPH_CLIENT_SECRET="$APP_SECRET" FERRY_GRAPH_DRIVE=user:smoke-user
    export FERRY_STATE_DIR="$WORK_DIR/state"
    SERVE_ARGS=(--onedrive)
fi

echo "[smoke] starting ferry serve s3 ($BACKEND) on port $PORT"
FERRY_S3_ACCESS_KEY_ID="$ACCESS_KEY" FERRY_S3_SECRET_ACCESS_KEY="$SECRET_KEY" \
    "$FERRY_BIN" serve s3 "${SERVE_ARGS[@]}" --addr "127.0.0.1:$PORT" \
    </dev/null >"$LOG_FILE" 2>&1 &
GATEWAY_PID=$!
deadline=$((SECONDS + 30))
until health_ok; do
    kill -0 "$GATEWAY_PID" 2>/dev/null || fail "gateway exited before it was ready"
    ((SECONDS < deadline)) || fail "gateway not ready on port $PORT after 30s"
    sleep 0.1
done

echo "[smoke] ensuring boto3 dependency is available"
if [[ ! -f "$TOOLS_DIR/env.sh" ]]; then
    FERRY_TOOLS_DIR="$TOOLS_DIR" "$REPO_ROOT/scripts/install-tools" >&2
fi
# shellcheck source=/dev/null
source "$TOOLS_DIR/env.sh"
python -c 'import boto3' || fail "boto3 is not importable; run scripts/install-tools"
command -v rclone >/dev/null || fail "rclone not found; run scripts/install-tools"

export AWS_ACCESS_KEY_ID="$ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$SECRET_KEY"
export AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export SMOKE_ENDPOINT="http://127.0.0.1:$PORT" SMOKE_ROOT="$ROOT_DIR" SMOKE_BACKEND="$BACKEND"

echo "[smoke] running boto3 smoke flow"
python - <<'PY'
import os
import pathlib
import tempfile

import boto3
from botocore.config import Config

payload = b"id,label\n1,cat\n2,dog\n3,horse\n"
assert len(payload) == 29
s3 = boto3.client("s3", endpoint_url=os.environ["SMOKE_ENDPOINT"],
                  config=Config(s3={"addressing_style": "path"}))
s3.create_bucket(Bucket="onedrive-bucket")
with tempfile.TemporaryDirectory() as tmp:
    src = pathlib.Path(tmp, "train.csv")
    dst = pathlib.Path(tmp, "train.downloaded.csv")
    src.write_bytes(payload)
    s3.upload_file(str(src), "onedrive-bucket", "datasets/train.csv")
    s3.download_file("onedrive-bucket", "datasets/train.csv", str(dst))
    assert dst.read_bytes() == payload, "downloaded bytes differ from the upload"
root = pathlib.Path(os.environ["SMOKE_ROOT"])
if os.environ["SMOKE_BACKEND"] == "onedrive":
    # In the emulated drive, under the gateway's default root folder.
    found = list(root.glob("*/DynamicCapital/ai-training/onedrive-bucket/datasets/train.csv"))
    assert len(found) == 1, f"not in the emulated drive: {sorted(root.rglob('*'))}"
    on_disk = found[0]
else:
    on_disk = root / "onedrive-bucket" / "datasets" / "train.csv"
assert on_disk.read_bytes() == payload, f"{on_disk} does not hold the uploaded bytes"
keys = [o["Key"] for o in s3.list_objects_v2(Bucket="onedrive-bucket")["Contents"]]
assert keys == ["datasets/train.csv"], keys
print("Smoke test payload verified")
PY

echo "[smoke] listing uploaded objects via rclone"
listing="$(RCLONE_CONFIG=/dev/null \
    RCLONE_CONFIG_FERRY_TYPE=s3 \
    RCLONE_CONFIG_FERRY_PROVIDER=Other \
    RCLONE_CONFIG_FERRY_ENDPOINT="$SMOKE_ENDPOINT" \
    RCLONE_CONFIG_FERRY_ACCESS_KEY_ID="$ACCESS_KEY" \
    RCLONE_CONFIG_FERRY_SECRET_ACCESS_KEY="$SECRET_KEY" \
    RCLONE_CONFIG_FERRY_REGION=us-east-1 \
    RCLONE_CONFIG_FERRY_FORCE_PATH_STYLE=true \
    rclone ls ferry:onedrive-bucket)"
echo "$listing"
[[ "$listing" == "       29 datasets/train.csv" ]] || fail "unexpected rclone listing"

echo "[smoke] smoke test complete"
