//! `ferry onedrive` and `ferry emulator approve`, run as a user would, against the emulator.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::process::Output;
use std::time::Duration;

use ferry_graph_emulator::Emulator;
use ferry_testkit::graph::{APP, APP_SECRET as SECRET, PUBLIC_APP, TENANT, USER, start_emulator};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ferry");

struct Env {
    emu: Emulator,
    dir: tempfile::TempDir,
}

async fn start() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let emu = start_emulator(dir.path(), |_| {}).await;
    Env { emu, dir }
}

impl Env {
    fn command(&self, app_only: bool, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.arg("onedrive")
            .args(args)
            .current_dir(self.dir.path())
            .env("FERRY_STATE_DIR", self.dir.path().join("state"))
            .env("FERRY_LOG_FORMAT", "json")
            .env("FERRY_GRAPH_AUTHORITY", self.emu.authority())
            .env("FERRY_GRAPH_URL", self.emu.graph_url())
            .env("FERRY_GRAPH_TENANT", TENANT);
        if app_only {
            cmd.env("FERRY_GRAPH_CLIENT_ID", APP)
                .env("FERRY_GRAPH_CLIENT_SECRET", SECRET)
                .env("FERRY_GRAPH_DRIVE", format!("user:{USER}"));
        } else {
            cmd.env("FERRY_GRAPH_CLIENT_ID", PUBLIC_APP)
                .env("FERRY_GRAPH_DRIVE", "me");
        }
        cmd
    }

    async fn run(&self, args: &[&str]) -> Output {
        let out = self.command(true, args).output().await.unwrap();
        assert!(
            out.status.success(),
            "ferry onedrive {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    async fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_slice(&self.run(&all).await.stdout).unwrap()
    }
}

#[tokio::test]
async fn files_go_up_around_and_down_through_the_cli() {
    let env = start().await;
    let small = env.dir.path().join("train.csv");
    std::fs::write(&small, b"id,label\n1,up\n").unwrap();
    let big = env.dir.path().join("weights.bin");
    let data: Vec<u8> = (0..5 * 1024 * 1024 + 3).map(|i| (i % 253) as u8).collect();
    std::fs::write(&big, &data).unwrap();

    env.run(&["mkdir", "DynamicCapital/ai-training/datasets"])
        .await;
    let put = env
        .json(&[
            "put",
            small.to_str().unwrap(),
            "DynamicCapital/ai-training/datasets/train.csv",
        ])
        .await;
    assert_eq!(put["size"], 14);
    env.run(&[
        "put",
        big.to_str().unwrap(),
        "DynamicCapital/ai-training/model-checkpoints/w.bin",
    ])
    .await;
    let listed = env.json(&["ls", "DynamicCapital/ai-training"]).await;
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["datasets", "model-checkpoints"]);

    let back = env.dir.path().join("back.bin");
    env.run(&[
        "get",
        "DynamicCapital/ai-training/model-checkpoints/w.bin",
        back.to_str().unwrap(),
    ])
    .await;
    assert_eq!(std::fs::read(&back).unwrap(), data);

    env.run(&[
        "mv",
        "DynamicCapital/ai-training/datasets/train.csv",
        "DynamicCapital/ai-training/reports/",
    ])
    .await;
    let reports = env
        .json(&["ls", "DynamicCapital/ai-training/reports"])
        .await;
    assert_eq!(reports[0]["name"], "train.csv");
    env.run(&["rm", "DynamicCapital/ai-training/reports/train.csv"])
        .await;
    assert!(
        env.json(&["ls", "DynamicCapital/ai-training/reports"])
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );

    let quota = env.json(&["quota"]).await;
    assert!(quota["used"].as_u64().unwrap() >= data.len() as u64);

    let first = env.json(&["delta"]).await;
    let cursor = first["deltaLink"].as_str().unwrap().to_owned();
    env.run(&["put", small.to_str().unwrap(), "new.csv"]).await;
    let next = env.json(&["delta", "--cursor", &cursor]).await;
    let changed: Vec<&str> = next["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(changed.contains(&"new.csv"), "{changed:?}");
}

#[tokio::test]
async fn a_missing_file_is_a_clear_error() {
    let env = start().await;
    let out = env
        .command(true, &["get", "nope.csv"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("ferry: ") && stderr.contains("itemNotFound"),
        "{stderr}"
    );
    assert!(!stderr.contains(SECRET));
}

#[tokio::test]
async fn device_code_login_approved_with_the_emulator_command() {
    let env = start().await;
    let log = env.dir.path().join("login.log");
    let login = env
        .command(false, &["login"])
        .stderr(std::fs::File::create(&log).unwrap())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut code = None;
    for _ in 0..200 {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(line) = text.lines().find_map(|l| l.strip_prefix("code: ")) {
            code = Some(line.trim().to_owned());
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let code = code.expect("login printed no code");
    let approve = tokio::process::Command::new(BIN)
        .args(["emulator", "approve", &code, "--url", &env.emu.url])
        .output()
        .await
        .unwrap();
    assert!(
        approve.status.success(),
        "{}",
        String::from_utf8_lossy(&approve.stderr)
    );
    let out = tokio::time::timeout(Duration::from_secs(30), login.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("signed in as"));
    let cache = env.dir.path().join("state/graph-token-cache.json");
    assert_eq!(
        std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let out = env
        .command(false, &["whoami", "--json"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let me: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(me["username"].as_str().unwrap().contains('@'), "{me}");
}
