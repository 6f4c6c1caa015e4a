#![allow(clippy::unwrap_used)]
mod common;

use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn throttling_grows_retry_after() {
    let env = start().await;
    let t = env.user_token().await;
    env.emu.faults().update(|f| {
        f.throttle_next = 2;
        f.retry_after_secs = 3;
    });
    let r = env.get(&t, "/me/drive").await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "3");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "activityLimitReached");
    let r = env.get(&t, "/me/drive").await;
    assert_eq!(r.headers()["retry-after"], "6");
    assert_eq!(env.get(&t, "/me/drive").await.status(), 200);
}

#[tokio::test]
async fn faults_over_http_and_503_and_rate_limit_headers() {
    let env = start().await;
    let t = env.user_token().await;
    let url = format!("{}/_emulator/faults", env.emu.url);
    let r = env
        .http
        .put(&url)
        .json(&json!({"throttle_next": 1, "throttle_status": 503}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = env.get(&t, "/me/drive").await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    env.http
        .put(&url)
        .json(&json!({"rate_limit": {"limit": 3, "window_secs": 60}}))
        .send()
        .await
        .unwrap();
    assert!(
        !env.get(&t, "/me/drive")
            .await
            .headers()
            .contains_key("ratelimit-limit")
    );
    assert!(
        !env.get(&t, "/me/drive")
            .await
            .headers()
            .contains_key("ratelimit-limit")
    );
    let r = env.get(&t, "/me/drive").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["ratelimit-remaining"], "0");
    let r = env.get(&t, "/me/drive").await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["ratelimit-limit"], "3");
    env.http
        .put(&url)
        .json(&json!({"server_error_next": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(env.get(&t, "/me/drive").await.status(), 503);
    assert_eq!(env.http.delete(&url).send().await.unwrap().status(), 204);
    assert_eq!(env.get(&t, "/me/drive").await.status(), 200);
    let r = env
        .http
        .put(&url)
        .json(&json!({"no_such_fault": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn client_request_id_is_echoed() {
    let env = start().await;
    let t = env.user_token().await;
    let r = env
        .http
        .get(env.graph("/me/drive/root:/missing"))
        .bearer_auth(&t)
        .header("client-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["client-request-id"], "abc-123");
    let rid = r.headers()["request-id"].to_str().unwrap().to_string();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["innerError"]["client-request-id"], "abc-123");
    assert_eq!(v["error"]["innerError"]["request-id"], rid.as_str());
}

#[tokio::test]
async fn dropped_download_is_short() {
    let env = start().await;
    let t = env.user_token().await;
    std::fs::write(env.drive_dir(&t).await.join("big.bin"), vec![7u8; 1 << 20]).unwrap();
    let r = env.get(&t, "/me/drive/root:/big.bin:/content").await;
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    env.emu.faults().update(|f| f.drop_downloads_next = 1);
    let r = env.http.get(&loc).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.is_err(), "body must be cut short");
    let r = env.http.get(&loc).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), 1 << 20);
}

#[tokio::test]
async fn latency_is_added() {
    let env = start().await;
    env.emu.faults().update(|f| f.latency_ms = 200);
    let start = std::time::Instant::now();
    env.http
        .get(format!("{}/_emulator/health", env.emu.url))
        .send()
        .await
        .unwrap();
    assert!(start.elapsed() >= std::time::Duration::from_millis(200));
}

#[tokio::test]
async fn stats_count_graph_and_transfer_requests() {
    let env = start().await;
    let t = env.user_token().await;
    let stats = || async {
        let url = format!("{}/_emulator/stats", env.emu.url);
        let v: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        (v["graph_requests"].clone(), v["transfer_requests"].clone())
    };
    // Sign-in and the stats themselves are not Graph requests.
    assert_eq!(stats().await, (json!(0), json!(0)));
    env.put_bytes(&t, "/me/drive/root:/a.txt:/content", b"hello".to_vec())
        .await;
    let item = env.get_json(&t, "/me/drive/root:/a.txt").await;
    let url = item["@microsoft.graph.downloadUrl"].as_str().unwrap();
    assert_eq!(
        reqwest::get(url).await.unwrap().text().await.unwrap(),
        "hello"
    );
    env.emu.faults().update(|f| f.throttle_next = 1);
    assert_eq!(env.get(&t, "/me/drive").await.status(), 429);
    assert_eq!(
        stats().await,
        (json!(3), json!(1)),
        "a throttled request counts"
    );
}
