#![allow(clippy::unwrap_used)]
mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

/// Follows nextLinks to the deltaLink; returns (items, deltaLink).
async fn round(env: &Env, t: &str, url: String) -> (Vec<Value>, String) {
    let mut url = url;
    let mut items = Vec::new();
    loop {
        let r = env.http.get(&url).bearer_auth(t).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        items.extend(v["value"].as_array().unwrap().iter().cloned());
        if let Some(n) = v["@odata.nextLink"].as_str() {
            url = n.to_string();
            continue;
        }
        return (items, v["@odata.deltaLink"].as_str().unwrap().to_string());
    }
}

fn names(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .filter_map(|i| i["name"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn delta_full_then_incremental() {
    let env = start().await;
    let t = env.user_token().await;
    let dir = env.drive_dir(&t).await;
    std::fs::create_dir_all(dir.join("F/G")).unwrap();
    for i in 0..5 {
        std::fs::write(dir.join(format!("F/G/{i}.txt")), b"x").unwrap();
    }
    let (items, link) = round(&env, &t, env.graph("/me/drive/root/delta?$top=3")).await;
    assert_eq!(items.len(), 8, "root, F, G and 5 files");
    assert!(items[0]["root"].is_object());
    assert!(
        items
            .iter()
            .all(|i| i["parentReference"].get("path").is_none()),
        "no paths in delta"
    );
    // Nothing changed: empty round.
    let (items, link) = round(&env, &t, link).await;
    assert!(items.is_empty(), "{items:?}");
    // API change + disk change + delete + rename of a folder.
    env.put_bytes(&t, "/me/drive/root:/api.txt:/content", b"1".to_vec())
        .await;
    std::fs::write(dir.join("disk.txt"), b"2").unwrap();
    let zero = env.get_json(&t, "/me/drive/root:/F/G/0.txt").await;
    std::fs::remove_file(dir.join("F/G/0.txt")).unwrap();
    let g = env.get_json(&t, "/me/drive/root:/F/G").await;
    env.send_json(
        Method::PATCH,
        &t,
        &format!("/me/drive/items/{}", g["id"].as_str().unwrap()),
        json!({"name": "H"}),
    )
    .await;
    let (items, link) = round(&env, &t, link).await;
    let n = names(&items);
    assert!(
        n.contains(&"api.txt".into()) && n.contains(&"disk.txt".into()) && n.contains(&"H".into()),
        "{n:?}"
    );
    assert!(
        !n.iter().any(|x| x.ends_with(".txt") && x.len() == 5),
        "children of a renamed folder are not resent: {n:?}"
    );
    let deleted: Vec<&Value> = items.iter().filter(|i| i["deleted"].is_object()).collect();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["id"], zero["id"]);
    assert_eq!(deleted[0]["deleted"]["state"], "deleted");
    assert!(deleted[0]["parentReference"]["id"].is_string());
    // token=latest gives no items and a usable link.
    let (items, _) = round(&env, &t, env.graph("/me/drive/root/delta?token=latest")).await;
    assert!(items.is_empty());
    let _ = link;
}

#[tokio::test]
async fn delta_resync_on_bad_token_and_fault() {
    let env = start().await;
    let t = env.user_token().await;
    let r = env.get(&t, "/me/drive/root/delta?token=bogus").await;
    assert_eq!(r.status(), 410);
    assert!(r.headers()["location"].to_str().unwrap().contains("/delta"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "resyncRequired");
    env.emu
        .faults()
        .update(|f| f.delta_resync = Some("resyncChangesUploadDifferences".into()));
    let r = env.get(&t, "/me/drive/root/delta").await;
    assert_eq!(r.status(), 410);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "resyncChangesUploadDifferences");
    // One-shot.
    assert_eq!(env.get(&t, "/me/drive/root/delta").await.status(), 200);
    let drive = env.get_json(&t, "/me/drive").await;
    let (items, _) = round(
        &env,
        &t,
        env.graph(&format!(
            "/drives/{}/root/delta",
            drive["id"].as_str().unwrap()
        )),
    )
    .await;
    assert_eq!(items.len(), 1);
}
