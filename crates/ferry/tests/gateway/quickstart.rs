//! `ferry quickstart`, the README's main job: a served folder with a sample, a 0600 key file.

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

#[tokio::test]
async fn quickstart_serves_a_sample_with_a_private_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
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
