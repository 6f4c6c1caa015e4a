#![allow(clippy::unwrap_used)]
mod common;

use common::*;
use serde_json::{Value, json};

async fn token_req(env: &Env, tenant: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = env
        .http
        .post(format!(
            "{}/{tenant}/oauth2/v2.0/token",
            env.emu.authority()
        ))
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn assert_aad_error(v: &Value, error: &str, code: u64) {
    assert_eq!(v["error"], error, "{v}");
    assert_eq!(v["error_codes"], json!([code]), "{v}");
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .starts_with(&format!("AADSTS{code}:")),
        "{v}"
    );
    for k in ["timestamp", "trace_id", "correlation_id", "error_uri"] {
        assert!(v[k].is_string(), "{k} missing in {v}");
    }
}

const GRAPH_DEFAULT: &str = "https://graph.microsoft.com/.default";

#[tokio::test]
async fn client_credentials_with_secret() {
    let env = start().await;
    let (s, v) = token_req(
        &env,
        TENANT,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("client_secret", SECRET),
            ("scope", GRAPH_DEFAULT),
        ],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["token_type"], "Bearer");
    assert!(v["expires_in"].as_i64().unwrap() > 0);
    assert!(v["ext_expires_in"].is_i64());
    assert!(v.get("refresh_token").is_none());
    let token = v["access_token"].as_str().unwrap();
    // App-only tokens reach drives by id but not /me.
    let r = env.get(token, "/me/drive").await;
    assert_eq!(r.status(), 400);
    let drive_id = env.emu.drive_ids()[0].clone();
    let r = env.get(token, &format!("/drives/{drive_id}")).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn client_credentials_errors() {
    let env = start().await;
    let (s, v) = token_req(
        &env,
        TENANT,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("client_secret", "wrong"),
            ("scope", GRAPH_DEFAULT),
        ],
    )
    .await;
    assert_eq!(s, 401);
    assert_aad_error(&v, "invalid_client", 7000215);
    let (s, v) = token_req(
        &env,
        TENANT,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "nope"),
            ("client_secret", SECRET),
            ("scope", GRAPH_DEFAULT),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert_aad_error(&v, "unauthorized_client", 700016);
    let (s, v) = token_req(
        &env,
        "not-a-tenant",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("client_secret", SECRET),
            ("scope", GRAPH_DEFAULT),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert_aad_error(&v, "invalid_request", 90002);
    let (s, v) = token_req(
        &env,
        TENANT,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("client_secret", SECRET),
            ("scope", "Files.Read"),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert_aad_error(&v, "invalid_scope", 1002012);
    let (s, v) = token_req(
        &env,
        TENANT,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("scope", GRAPH_DEFAULT),
        ],
    )
    .await;
    assert_eq!(s, 401);
    assert_aad_error(&v, "invalid_client", 7000218);
    let (s, v) = token_req(
        &env,
        TENANT,
        &[("grant_type", "password"), ("client_id", CLIENT)],
    )
    .await;
    assert_eq!(s, 400);
    assert_aad_error(&v, "unsupported_grant_type", 70003);
}

#[tokio::test]
async fn client_credentials_with_certificate() {
    let env = start().await;
    let aud = env.token_url();
    let a = assertion(&aud, KEY, None);
    let form = |a: &str| {
        vec![
            ("grant_type".to_string(), "client_credentials".to_string()),
            ("client_id".into(), CLIENT.into()),
            (
                "client_assertion_type".into(),
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
            ),
            ("client_assertion".into(), a.to_string()),
            ("scope".into(), GRAPH_DEFAULT.into()),
        ]
    };
    let send = |f: Vec<(String, String)>| {
        let http = env.http.clone();
        let url = env.token_url();
        async move {
            let r = http.post(url).form(&f).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (s, v) = send(form(&a)).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["access_token"].is_string());
    // Replaying the same assertion (same jti) fails.
    let (s, _) = send(form(&a)).await;
    assert_eq!(s, 401);
    // Signed by a different key.
    let (s, v) = send(form(&assertion(&aud, OTHER_KEY, None))).await;
    assert_eq!(s, 401);
    assert_aad_error(&v, "invalid_client", 700027);
    // Wrong audience, expired, wrong issuer.
    let (s, _) = send(form(&assertion("https://example.invalid/token", KEY, None))).await;
    assert_eq!(s, 401);
    let (s, v) = send(form(&assertion(&aud, KEY, Some(json!({"exp": 1000}))))).await;
    assert_eq!(s, 401);
    assert_aad_error(&v, "invalid_client", 700024);
    let (s, v) = send(form(&assertion(&aud, KEY, Some(json!({"iss": "someone"}))))).await;
    assert_eq!(s, 401);
    assert_aad_error(&v, "invalid_client", 700021);
}

#[tokio::test]
async fn device_code_flow_and_refresh_rotation() {
    let env = start().await;
    let r = env
        .http
        .post(format!(
            "{}/{TENANT}/oauth2/v2.0/devicecode",
            env.emu.authority()
        ))
        .form(&[
            ("client_id", PUBLIC_CLIENT),
            ("scope", "Files.ReadWrite.All offline_access openid profile"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let dc: Value = r.json().await.unwrap();
    for k in ["device_code", "user_code", "verification_uri", "message"] {
        assert!(dc[k].is_string(), "{k}");
    }
    assert!(dc["expires_in"].is_i64() && dc["interval"].is_u64());
    let poll = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("client_id", PUBLIC_CLIENT),
        ("device_code", dc["device_code"].as_str().unwrap()),
    ];
    let (s, v) = token_req(&env, TENANT, &poll).await;
    assert_eq!(s, 400);
    assert_aad_error(&v, "authorization_pending", 70016);
    // Approve through the control endpoint.
    let r = env
        .http
        .post(format!("{}/_emulator/device/approve", env.emu.url))
        .json(&json!({"user_code": dc["user_code"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (s, v) = token_req(&env, TENANT, &poll).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["scope"].as_str().unwrap().contains("Files.ReadWrite.All"));
    let id_token = v["id_token"].as_str().unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            id_token.split('.').nth(1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    for k in ["oid", "tid", "preferred_username", "name"] {
        assert!(claims[k].is_string(), "{k} in id_token");
    }
    assert_eq!(claims["tid"], TENANT);
    // Redeemed codes can't be reused.
    let (s, _) = token_req(&env, TENANT, &poll).await;
    assert_eq!(s, 400);
    // Refresh rotates the token; the old one stops working.
    let rt1 = v["refresh_token"].as_str().unwrap().to_string();
    let (s, v2) = token_req(
        &env,
        TENANT,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", PUBLIC_CLIENT),
            ("refresh_token", &rt1),
        ],
    )
    .await;
    assert_eq!(s, 200);
    let rt2 = v2["refresh_token"].as_str().unwrap();
    assert_ne!(rt1, rt2);
    let (s, e) = token_req(
        &env,
        TENANT,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", PUBLIC_CLIENT),
            ("refresh_token", &rt1),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert_aad_error(&e, "invalid_grant", 70000);
    // The delegated token works on /me/drive.
    let r = env
        .get(v2["access_token"].as_str().unwrap(), "/me/drive")
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn refresh_token_expiry() {
    let env = start_with(|c| c.refresh_token_lifetime = std::time::Duration::from_secs(1)).await;
    let t = env.user_tokens().await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (s, e) = token_req(
        &env,
        TENANT,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", PUBLIC_CLIENT),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert_aad_error(&e, "invalid_grant", 700082);
}

#[tokio::test]
async fn device_code_expiry_and_slow_down() {
    let env = start_with(|c| {
        c.device_code_lifetime = std::time::Duration::from_secs(1);
        c.device_code_interval = std::time::Duration::from_secs(5);
    })
    .await;
    let dc: Value = env
        .http
        .post(format!(
            "{}/{TENANT}/oauth2/v2.0/devicecode",
            env.emu.authority()
        ))
        .form(&[("client_id", PUBLIC_CLIENT), ("scope", "Files.Read")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let poll = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("client_id", PUBLIC_CLIENT),
        ("device_code", dc["device_code"].as_str().unwrap()),
    ];
    let (_, v) = token_req(&env, TENANT, &poll).await;
    assert_eq!(v["error"], "authorization_pending");
    let (_, v) = token_req(&env, TENANT, &poll).await;
    assert_eq!(v["error"], "slow_down");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (_, v) = token_req(&env, TENANT, &poll).await;
    assert_eq!(v["error"], "expired_token");
}

#[tokio::test]
async fn authorization_code_with_pkce() {
    use sha2::Digest as _;
    let env = start().await;
    let verifier = "a-very-long-code-verifier-with-enough-entropy-0123456789";
    let challenge = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        sha2::Sha256::digest(verifier),
    );
    let redirect = "http://localhost:8765/callback";
    let r = env
        .http
        .get(format!(
            "{}/{TENANT}/oauth2/v2.0/authorize",
            env.emu.authority()
        ))
        .query(&[
            ("client_id", PUBLIC_CLIENT),
            ("response_type", "code"),
            ("redirect_uri", redirect),
            ("scope", "Files.ReadWrite offline_access openid"),
            ("state", "xyz"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with(redirect), "{loc}");
    let url = reqwest::Url::parse(&loc).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "xyz");
    let code = q["code"].clone();
    let base = [
        ("grant_type", "authorization_code"),
        ("client_id", PUBLIC_CLIENT),
        ("code", code.as_str()),
        ("redirect_uri", redirect),
    ];
    let mut bad = base.to_vec();
    bad.push(("code_verifier", "wrong"));
    let (s, e) = token_req(&env, TENANT, &bad).await;
    assert_eq!(s, 400);
    assert_aad_error(&e, "invalid_grant", 501481);
    let mut good = base.to_vec();
    good.push(("code_verifier", verifier));
    let (s, v) = token_req(&env, TENANT, &good).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["refresh_token"].is_string() && v["id_token"].is_string());
    let (s, e) = token_req(&env, TENANT, &good).await;
    assert_eq!(s, 400);
    assert_aad_error(&e, "invalid_grant", 54005);
}

#[tokio::test]
async fn graph_rejects_bad_and_expired_tokens() {
    let env = start().await;
    let r = env.http.get(env.graph("/me/drive")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "InvalidAuthenticationToken");
    let r = env.get("garbage.token.here", "/me/drive").await;
    assert_eq!(r.status(), 401);
    let token = env.user_token().await;
    assert_eq!(env.get(&token, "/me/drive").await.status(), 200);
    env.emu.faults().update(|f| f.token_expiry_secs = Some(0));
    let r = env.get(&token, "/me/drive").await;
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains("expired"));
}

#[tokio::test]
async fn token_lifetime_is_configurable() {
    let env = start_with(|c| c.token_lifetime = std::time::Duration::from_secs(1)).await;
    let token = env.app_token().await;
    let drive = env.emu.drive_ids()[0].clone();
    assert_eq!(
        env.get(&token, &format!("/drives/{drive}")).await.status(),
        200
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        env.get(&token, &format!("/drives/{drive}")).await.status(),
        401
    );
}
