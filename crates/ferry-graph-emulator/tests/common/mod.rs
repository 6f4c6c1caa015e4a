//! Shared helpers for the emulator's integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ferry_graph_emulator::{App, Emulator, EmulatorConfig};
use serde_json::{Value, json};
use sha1::Digest as _;

pub const TENANT: &str = "11111111-2222-3333-4444-555555555555";
pub const CLIENT: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
pub const SECRET: &str = "s3cret~value";
pub const PUBLIC_CLIENT: &str = "99999999-bbbb-cccc-dddd-eeeeeeeeeeee";
pub const CERT: &str = include_str!("../fixtures/app-cert.pem");
pub const KEY: &str = include_str!("../fixtures/app-key.pem");
pub const OTHER_KEY: &str = include_str!("../fixtures/other-key.pem");

pub struct Env {
    pub emu: Emulator,
    pub http: reqwest::Client,
    pub _dir: tempfile::TempDir,
}

pub fn config(dir: &std::path::Path) -> EmulatorConfig {
    let mut c = EmulatorConfig::new(dir);
    let mut app = App::new(TENANT, CLIENT);
    app.client_secret = Some(SECRET.into());
    app.certificate_pem = Some(CERT.into());
    c.apps.push(app);
    c.apps.push(App::new(TENANT, PUBLIC_CLIENT));
    c.device_code_interval = Duration::ZERO;
    c.token_lifetime = Duration::from_secs(3600);
    c
}

pub async fn start_with(f: impl FnOnce(&mut EmulatorConfig)) -> Env {
    // The workspace's reqwest needs a rustls provider even for plain HTTP clients.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    f(&mut c);
    let emu = Emulator::start(c).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Env {
        emu,
        http,
        _dir: dir,
    }
}

pub async fn start() -> Env {
    start_with(|_| {}).await
}

impl Env {
    pub fn token_url(&self) -> String {
        format!("{}/{TENANT}/oauth2/v2.0/token", self.emu.authority())
    }

    pub fn graph(&self, path: &str) -> String {
        format!("{}{path}", self.emu.graph_url())
    }

    /// An app-only token via client credentials + secret.
    pub async fn app_token(&self) -> String {
        let r = self
            .http
            .post(self.token_url())
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT),
                ("client_secret", SECRET),
                ("scope", "https://graph.microsoft.com/.default"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        v["access_token"].as_str().unwrap().to_string()
    }

    /// A delegated token for the first user via the device-code flow.
    pub async fn user_tokens(&self) -> Value {
        let r = self
            .http
            .post(format!(
                "{}/{TENANT}/oauth2/v2.0/devicecode",
                self.emu.authority()
            ))
            .form(&[
                ("client_id", PUBLIC_CLIENT),
                ("scope", "Files.ReadWrite.All offline_access openid profile"),
            ])
            .send()
            .await
            .unwrap();
        let dc: Value = r.json().await.unwrap();
        assert!(
            self.emu
                .approve_device_code(dc["user_code"].as_str().unwrap())
        );
        let r = self
            .http
            .post(self.token_url())
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", PUBLIC_CLIENT),
                ("device_code", dc["device_code"].as_str().unwrap()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    pub async fn user_token(&self) -> String {
        self.user_tokens().await["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn get(&self, token: &str, path: &str) -> reqwest::Response {
        self.http
            .get(self.graph(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn get_json(&self, token: &str, path: &str) -> Value {
        let r = self.get(token, path).await;
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.unwrap()
    }

    pub async fn put_bytes(&self, token: &str, path: &str, bytes: Vec<u8>) -> reqwest::Response {
        self.http
            .put(self.graph(path))
            .bearer_auth(token)
            .body(bytes)
            .send()
            .await
            .unwrap()
    }

    pub async fn send_json(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: Value,
    ) -> reqwest::Response {
        self.http
            .request(method, self.graph(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// The first user's drive folder on disk.
    pub async fn drive_dir(&self, token: &str) -> std::path::PathBuf {
        let d = self.get_json(token, "/me/drive").await;
        self.emu.drive_folder(d["id"].as_str().unwrap()).unwrap()
    }
}

fn pem_der(pem: &str, label: &str) -> Vec<u8> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let s = pem.find(&begin).unwrap() + begin.len();
    let e = pem.find(&end).unwrap();
    let b64: String = pem[s..e].chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(b64).unwrap()
}

/// An RS256 client assertion for `aud`, signed with `key_pem`, thumbprinted with CERT.
pub fn assertion(aud: &str, key_pem: &str, claims_override: Option<Value>) -> String {
    let cert_der = pem_der(CERT, "CERTIFICATE");
    let x5t = URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(&cert_der));
    let header = json!({"alg": "RS256", "typ": "JWT", "x5t": x5t});
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut claims = json!({
        "aud": aud, "iss": CLIENT, "sub": CLIENT, "exp": now + 600, "nbf": now,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    if let Some(Value::Object(o)) = claims_override {
        for (k, v) in o {
            claims[k] = v;
        }
    }
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let key = ring::signature::RsaKeyPair::from_pkcs8(&pem_der(key_pem, "PRIVATE KEY")).unwrap();
    let mut sig = vec![0u8; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}
