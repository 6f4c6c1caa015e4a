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

/// 1 GiB whose every MiB differs, written without holding it in memory.
fn write_big_file(path: &std::path::Path, mib: usize) {
    use std::io::Write as _;
    let mut block: Vec<u8> = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..mib {
        block[..8].copy_from_slice(&(i as u64).to_le_bytes());
        out.write_all(&block).unwrap();
    }
    out.flush().unwrap();
}

/// Bytes the emulator holds for unfinished upload sessions.
fn session_bytes(emu: &Emulator) -> u64 {
    let tmp = emu.root().join(".ferry-emulator").join("tmp");
    std::fs::read_dir(tmp)
        .map(|dir| {
            dir.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("session-"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Runs a command to the end; returns its status, stderr and peak RSS in MiB (VmHWM, read
/// until it exits).
async fn run_measured(mut cmd: tokio::process::Command) -> (std::process::ExitStatus, String, f64) {
    let stderr = tempfile::NamedTempFile::new().unwrap();
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(stderr.reopen().unwrap())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id().unwrap());
    let mut peak_kib = 0u64;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file)
            && let Some(line) = text.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kib = line.split_whitespace().nth(1).and_then(|n| n.parse().ok());
            peak_kib = peak_kib.max(kib.unwrap_or(0));
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let log = std::fs::read_to_string(stderr.path()).unwrap();
    (status, log, peak_kib as f64 / 1024.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_gigabyte_upload_killed_at_sixty_percent_resumes_and_arrives_intact() {
    const MIB: u64 = 1024 * 1024;
    let env = start().await;
    let src = env.dir.path().join("checkpoint.bin");
    write_big_file(&src, 1024);
    let size = 1024 * MIB;
    let args = [
        "put",
        src.to_str().unwrap(),
        "model-checkpoints/checkpoint.bin",
    ];

    // First run: killed once the emulator holds 60% of the file.
    let mut first = env.command(true, &args).kill_on_drop(true).spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while session_bytes(&env.emu) < size * 6 / 10 {
        assert!(
            std::time::Instant::now() < deadline,
            "upload did not reach 60%"
        );
        assert!(first.try_wait().unwrap().is_none(), "upload ended early");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.kill().await.unwrap();
    let records: Vec<_> = std::fs::read_dir(env.dir.path().join("state/upload-sessions"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(records.len(), 1, "the session was saved for a later run");
    let mode = records[0].metadata().unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the record holds a pre-authenticated URL");

    // Second run: resumes from the session, sends only the rest, in bounded memory.
    let mut cmd = env.command(true, &args);
    cmd.env("FERRY_LOG", "info");
    let (status, log, rss_mib) = run_measured(cmd).await;
    assert!(status.success(), "{log}");
    let resumed_at = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["message"].as_str().unwrap_or("").contains("resuming"))
        .and_then(|v| v["offset"].as_u64())
        .unwrap_or_else(|| panic!("no resume in the log:\n{log}"));
    eprintln!("second run: resumed at byte {resumed_at}, peak RSS {rss_mib:.1} MiB");
    // Everything but the fragment in flight when the first run died was kept.
    let fragment = 10 * MIB;
    assert!(
        resumed_at >= size * 6 / 10 - fragment,
        "resumed at {resumed_at}"
    );
    assert!(rss_mib < 100.0, "peak RSS {rss_mib:.1} MiB");
    assert!(
        std::fs::read_dir(env.dir.path().join("state/upload-sessions"))
            .unwrap()
            .next()
            .is_none(),
        "the record is removed once the upload is complete"
    );

    // The drive holds exactly the file (the client also checked the quickXorHash).
    let drive = env.emu.drive_folder(&env.emu.drive_ids()[0]).unwrap();
    let got = drive.join("model-checkpoints/checkpoint.bin");
    assert_eq!(std::fs::metadata(&got).unwrap().len(), size);
    let (mut a, mut b) = (
        std::fs::File::open(&src).unwrap(),
        std::fs::File::open(&got).unwrap(),
    );
    let (mut x, mut y) = (vec![0u8; 8 * MIB as usize], vec![0u8; 8 * MIB as usize]);
    use std::io::Read as _;
    for _ in 0..size / (8 * MIB) {
        a.read_exact(&mut x).unwrap();
        b.read_exact(&mut y).unwrap();
        assert!(x == y, "the uploaded bytes differ");
    }
}
