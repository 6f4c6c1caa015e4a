//! `ferry db` as a user runs it: the managed cluster's life cycle and migrations.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Output;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ferry");

fn ferry(state: &Path, args: &[&str]) -> Output {
    std::process::Command::new(BIN)
        .args(args)
        .env("FERRY_STATE_DIR", state)
        .env_remove("DATABASE_URL")
        .env_remove("PGHOST")
        .env_remove("PGDATABASE")
        .output()
        .unwrap()
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Stops the cluster even when an assertion fails.
struct Stop<'a>(&'a Path);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        let _ = ferry(self.0, &["db", "stop"]);
    }
}

#[test]
fn the_managed_cluster_starts_migrates_answers_psql_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let state = dir.path().join("state");
    let out = ferry(&state, &["db", "status", "--json"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["status"],
        "absent"
    );

    let _stop = Stop(&state);
    let started = json(&ferry(&state, &["db", "start", "--json"]));
    let port = started["port"].as_u64().unwrap();
    assert_eq!(
        started["url"],
        format!("postgresql://ferry@127.0.0.1:{port}/ferry")
    );
    let password = Path::new(started["password_file"].as_str().unwrap());
    assert_eq!(
        std::fs::metadata(password).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let secret = std::fs::read_to_string(password).unwrap();
    assert!(
        !String::from_utf8_lossy(&ferry(&state, &["db", "start"]).stdout).contains(secret.trim()),
        "the password is never printed"
    );
    assert_eq!(
        json(&ferry(&state, &["db", "migrate", "--json"]))["applied"],
        serde_json::json!(
            ferry_pg::MIGRATIONS
                .iter()
                .map(|m| m.version)
                .collect::<Vec<_>>()
        )
    );
    assert_eq!(
        json(&ferry(&state, &["db", "migrate", "--json"]))["applied"],
        serde_json::json!([])
    );
    let out = ferry(
        &state,
        &[
            "db",
            "psql",
            "-At",
            "-c",
            "SELECT count(*) FROM ferry.etl_runs",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");

    assert_eq!(
        json(&ferry(&state, &["db", "stop", "--json"]))["stopped"],
        true
    );
    assert_eq!(ferry(&state, &["db", "status"]).status.code(), Some(3));
    // Started again: same port, data kept.
    let again = json(&ferry(&state, &["db", "start", "--json"]));
    assert_eq!(again["port"], started["port"]);
    let out = ferry(
        &state,
        &[
            "db",
            "psql",
            "-At",
            "-c",
            "SELECT max(version) FROM ferry.schema_migrations",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        ferry_pg::MIGRATIONS.len().to_string()
    );
}

#[test]
fn a_state_dir_the_server_user_cannot_enter_is_a_clear_error() {
    if !running_as_root() {
        return; // only root hands the server to another user
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let state = dir.path().join("state");
    let _stop = Stop(&state);
    let out = ferry(&state, &["db", "start"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot enter") && stderr.contains("FERRY_STATE_DIR"),
        "{stderr}"
    );
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}
