//! `ferry quickstart`, the README's main job: a served folder with a sample, a 0600 key file,
//! the sample synced into the managed Postgres.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use ferry_testkit::{Service, wait_for_endpoint};

use crate::common::{BIN, body, client_for};

fn quickstart(state: &std::path::Path) -> (Service, String) {
    let mut command = Command::new(BIN);
    command
        .args(["quickstart", "--addr", "127.0.0.1:0"])
        .env("FERRY_STATE_DIR", state)
        .env("FERRY_LOG_FORMAT", "json")
        .env_remove("FERRY_S3_ACCESS_KEY_ID")
        .env_remove("FERRY_S3_SECRET_ACCESS_KEY");
    let mut service = Service::spawn("ferry quickstart", command, &state.with_extension("log"));
    let endpoint = wait_for_endpoint(&mut service);
    (service, endpoint)
}

/// Stops the managed cluster quickstart started, even when the test fails.
struct StopDb<'a>(&'a std::path::Path);

impl Drop for StopDb<'_> {
    fn drop(&mut self) {
        let _ = Command::new(BIN)
            .args(["db", "stop"])
            .env("FERRY_STATE_DIR", self.0)
            .output();
    }
}

#[tokio::test]
async fn quickstart_serves_a_sample_with_a_private_key_file() {
    let dir = tempfile::tempdir().unwrap();
    // As root, Postgres runs as another user, who must be able to enter the state dir.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let state = dir.path().join("state");
    let _stop = StopDb(&state);
    let (service, endpoint) = quickstart(&state);
    let creds = state.join("s3-credentials");
    let mode = std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let line = std::fs::read_to_string(&creds).unwrap();
    let (id, secret) = line.trim().split_once(':').unwrap();
    let log = service.log();
    assert!(
        log.contains(&format!("export AWS_ACCESS_KEY_ID={id}")),
        "{log}"
    );
    assert!(log.contains("aws --endpoint-url"), "{log}");
    assert!(log.contains("1 file(s) loaded, 3 row(s)"), "{log}");
    let out = Command::new(BIN)
        .args(["db", "psql", "-At", "-c"])
        .arg("SELECT string_agg(label, ',' ORDER BY id) FROM ai_raw_csv.\"sample__2024_06_01_e5065509\"")
        .env("FERRY_STATE_DIR", &state)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "up,flat,down",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!log.contains(secret), "the secret must not be printed");

    let s3 = client_for(&endpoint, id, secret);
    let got = s3
        .get_object()
        .bucket("datasets")
        .key("sample/2024-06-01/train.csv")
        .send()
        .await
        .unwrap();
    assert!(
        String::from_utf8(body(got).await)
            .unwrap()
            .starts_with("id,text,label")
    );
    drop(service);

    // A second start keeps the key and the data.
    let (_service, endpoint) = quickstart(&state);
    assert_eq!(std::fs::read_to_string(&creds).unwrap(), line);
    let s3 = client_for(&endpoint, id, secret);
    s3.head_object()
        .bucket("datasets")
        .key("sample/2024-06-01/train.csv")
        .send()
        .await
        .unwrap();
}
