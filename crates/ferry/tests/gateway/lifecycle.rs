//! The server around the API: health, metrics, auth, credential reload, shutdown, cleanup, TLS.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use ferry_testkit::wait_until;

use crate::common::{builder, client, client_for, client_with, code, gateway};

#[tokio::test]
async fn health_metrics_and_anonymous_requests() {
    let gw = gateway();
    let (status, body) = gw.get_unsigned("/health");
    assert_eq!(status, 200);
    assert!(body.contains("\"ok\""), "{body}");

    let (status, body) = gw.get_unsigned("/");
    assert_eq!(status, 403);
    assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");

    let s3 = client(&gw);
    s3.create_bucket().bucket("data").send().await.unwrap();
    s3.list_buckets().send().await.unwrap();
    let (status, metrics) = gw.get_unsigned("/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("ferry_s3_requests_total{op=\"CreateBucket\",status=\"200\"} 1"),
        "{metrics}"
    );
    // The anonymous request above was refused and counted as an error.
    assert!(metrics.contains("ferry_s3_requests_total{op=\"ListBuckets\",status=\"403\"} 1"));
    assert!(metrics.contains("ferry_s3_request_duration_seconds_count{op=\"ListBuckets\"} 2"));
    assert!(metrics.contains("ferry_s3_errors_total{op=\"ListBuckets\"} 1"));
}

#[tokio::test]
async fn wrong_secret_is_rejected() {
    let gw = gateway();
    let s3 = client_for(&gw.endpoint, &gw.access_key, "not-the-secret");
    let err = s3.list_buckets().send().await.unwrap_err();
    assert_eq!(code(&err), "SignatureDoesNotMatch");
    let s3 = client_for(&gw.endpoint, "unknown-key", "whatever");
    let err = s3.list_buckets().send().await.unwrap_err();
    assert_eq!(code(&err), "InvalidAccessKeyId");
}

#[tokio::test]
async fn credentials_file_is_reloaded_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("creds");
    std::fs::write(&path, "# team keys\nalice:alice-secret\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let gw = builder()
        .arg("--credentials-file")
        .arg(path.to_str().unwrap())
        .start();
    let alice = client_for(&gw.endpoint, "alice", "alice-secret");
    alice.list_buckets().send().await.unwrap();
    let bob = client_for(&gw.endpoint, "bob", "bob-secret");
    assert_eq!(
        code(&bob.list_buckets().send().await.unwrap_err()),
        "InvalidAccessKeyId"
    );

    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    writeln!(file, "bob:bob-secret").unwrap();
    drop(file);
    gw.service.signal(libc::SIGHUP);
    let mut ok = false;
    for _ in 0..200 {
        if bob.list_buckets().send().await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(ok, "bob's key was not picked up after SIGHUP");
    // The environment's key stays valid throughout.
    client(&gw).list_buckets().send().await.unwrap();
}

#[test]
fn credentials_file_readable_by_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("creds");
    std::fs::write(&path, "alice:alice-secret\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = std::process::Command::new(crate::common::BIN)
        .args(["serve", "s3", "--addr", "127.0.0.1:0", "--root"])
        .arg(dir.path().join("root"))
        .arg("--credentials-file")
        .arg(&path)
        .env_remove("FERRY_S3_ACCESS_KEY_ID")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("chmod 600"), "{stderr}");
    assert!(!stderr.contains("alice-secret"));
}

#[test]
fn secret_never_appears_in_the_log() {
    let gw = gateway();
    let (status, _) = gw.get_unsigned("/health");
    assert_eq!(status, 200);
    assert!(!gw.service.log().contains(&gw.secret_key));
}

#[tokio::test]
async fn abandoned_uploads_are_removed_after_their_max_age() {
    let gw = builder().arg("--upload-max-age").arg("1s").start();
    let s3 = client(&gw);
    s3.create_bucket().bucket("data").send().await.unwrap();
    s3.create_multipart_upload()
        .bucket("data")
        .key("left")
        .send()
        .await
        .unwrap();
    let mut gone = false;
    for _ in 0..100 {
        let uploads = s3
            .list_multipart_uploads()
            .bucket("data")
            .send()
            .await
            .unwrap();
        if uploads.uploads().is_empty() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the abandoned upload was not removed");
}

#[tokio::test]
async fn shutdown_lets_requests_in_flight_finish() {
    let mut gw = gateway();
    let s3 = client(&gw);
    s3.create_bucket().bucket("data").send().await.unwrap();
    let presigned = s3
        .put_object()
        .bucket("data")
        .key("slow")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
        .await
        .unwrap();
    let url = presigned.uri();
    let path = &url[url.find("/data/").unwrap()..];
    // Send half the body, then stop: the request is surely in flight when SIGTERM comes.
    let half = vec![7u8; 512 * 1024];
    let mut conn = std::net::TcpStream::connect(&gw.addr).unwrap();
    write!(
        conn,
        "PUT {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n",
        gw.addr,
        2 * half.len()
    )
    .unwrap();
    conn.write_all(&half).unwrap();
    let tmp = gw.root.join(".ferry/tmp");
    wait_until(
        "the upload to reach the disk",
        Duration::from_secs(10),
        || std::fs::read_dir(&tmp).ok()?.next().map(|_| ()),
    );
    gw.service.signal(libc::SIGTERM);
    wait_until("the listener to close", Duration::from_secs(10), || {
        std::net::TcpStream::connect(&gw.addr)
            .is_err()
            .then_some(())
    });
    conn.write_all(&half).unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert_eq!(gw.service.wait(Duration::from_secs(30)), Some(0));
    assert_eq!(
        std::fs::read(gw.root.join("data/slow")).unwrap(),
        [half.clone(), half].concat()
    );
}

#[tokio::test]
async fn serves_https_with_the_configured_certificate() {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let gw = builder()
        .arg("--tls-cert")
        .arg(cert_path.to_str().unwrap())
        .arg("--tls-key")
        .arg(key_path.to_str().unwrap())
        .start();
    assert!(gw.endpoint.starts_with("https://"), "{}", gw.endpoint);
    use aws_smithy_http_client::tls;
    let trust = tls::TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(cert.cert.pem().into_bytes());
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .tls_context(
            tls::TlsContext::builder()
                .with_trust_store(trust)
                .build()
                .unwrap(),
        )
        .build_https();
    let endpoint = gw.endpoint.replace("127.0.0.1", "localhost");
    let s3 = client_with(&endpoint, &gw.access_key, &gw.secret_key, http);
    s3.create_bucket().bucket("secure").send().await.unwrap();
    s3.put_object()
        .bucket("secure")
        .key("k")
        .body(ByteStream::from_static(b"over tls"))
        .send()
        .await
        .unwrap();
}

/// A small tmpfs, unmounted when dropped.
struct SmallDisk {
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "this test mounts a tmpfs to fill a disk: run it as root (CI does)"
        );
        Self { path, _dir: dir }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

#[tokio::test]
async fn a_full_disk_answers_507_and_leaves_nothing_behind() {
    let disk = SmallDisk::mount("4m");
    let gw = builder().root(&disk.path).start();
    let s3 = client(&gw);
    s3.create_bucket().bucket("data").send().await.unwrap();
    let err = s3
        .put_object()
        .bucket("data")
        .key("too-big")
        .body(ByteStream::from(vec![1u8; 6 * 1024 * 1024]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "XFerryStorageFull");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(507));
    assert!(
        s3.head_object()
            .bucket("data")
            .key("too-big")
            .send()
            .await
            .is_err()
    );
    let leftovers = std::fs::read_dir(gw.root.join(".ferry/tmp"))
        .unwrap()
        .count();
    assert_eq!(leftovers, 0, "the partial temp file is removed");
    // Space is back: the gateway keeps working.
    s3.put_object()
        .bucket("data")
        .key("small")
        .body(ByteStream::from_static(b"fits"))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn fsync_can_be_turned_off_and_the_log_says_so() {
    let gw = builder().arg("--fsync").arg("false").start();
    assert!(
        gw.service.log().contains("\"fsync\":false"),
        "{}",
        gw.service.log()
    );
    let s3 = client(&gw);
    s3.create_bucket().bucket("scratch").send().await.unwrap();
    s3.put_object()
        .bucket("scratch")
        .key("k")
        .body(ByteStream::from_static(b"fast"))
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket("scratch")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(crate::common::body(got).await, b"fast");
    let defaults = gateway();
    assert!(defaults.service.log().contains("\"fsync\":true"));
}
