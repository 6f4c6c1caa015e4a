#![allow(clippy::unwrap_used)]

use ferry_graph_emulator::{DriveType, EmulatorConfig};

#[test]
fn toml_config_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cert.pem"),
        include_str!("fixtures/app-cert.pem"),
    )
    .unwrap();
    let path = dir.path().join("emulator.toml");
    std::fs::write(
        &path,
        r#"
root = "data"
token_lifetime_secs = 120
device_code_interval_secs = 1
default_drive_type = "personal"

[[apps]]
tenant = "t1"
client_id = "c1"
client_secret = "s1"
certificate_file = "cert.pem"

[[users]]
id = "u1"
user_principal_name = "u1@example.test"
display_name = "User One"

[[drives]]
site = "site1"
quota_total = 1000

[faults]
throttle_rate = 0.5
latency_ms = 10
"#,
    )
    .unwrap();
    let c = EmulatorConfig::from_file(&path).unwrap();
    assert_eq!(c.root, dir.path().join("data"));
    assert_eq!(c.token_lifetime.as_secs(), 120);
    assert_eq!(c.default_drive_type, DriveType::Personal);
    assert!(
        c.apps[0]
            .certificate_pem
            .as_deref()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    assert_eq!(c.users[0].id, "u1");
    assert_eq!(c.drives[0].site.as_deref(), Some("site1"));
    assert_eq!(c.faults.latency_ms, 10);
    c.validate().unwrap();
    let lifetime = EmulatorConfig::new("x").token_lifetime.as_secs();
    assert!((3600..=5400).contains(&lifetime));
}
