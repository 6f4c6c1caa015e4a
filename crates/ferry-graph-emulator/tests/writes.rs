#![allow(clippy::unwrap_used)]
mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn simple_upload_conflicts_and_disk_mirror() {
    let env = start().await;
    let t = env.user_token().await;
    let r = env
        .put_bytes(&t, "/me/drive/root:/new.txt:/content", b"hello".to_vec())
        .await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    let id = v["id"].as_str().unwrap().to_string();
    let etag1 = v["eTag"].clone();
    let dir = env.drive_dir(&t).await;
    assert_eq!(std::fs::read(dir.join("new.txt")).unwrap(), b"hello");
    // Default replace keeps the id and bumps the eTag.
    let r = env
        .put_bytes(&t, "/me/drive/root:/new.txt:/content", b"hello2".to_vec())
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], id.as_str());
    assert_ne!(v["eTag"], etag1);
    let r = env
        .put_bytes(
            &t,
            "/me/drive/root:/new.txt:/content?@microsoft.graph.conflictBehavior=fail",
            b"x".to_vec(),
        )
        .await;
    assert_eq!(r.status(), 409);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "nameAlreadyExists");
    let r = env
        .put_bytes(
            &t,
            "/me/drive/root:/new.txt:/content?@microsoft.graph.conflictBehavior=rename",
            b"x".to_vec(),
        )
        .await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["name"], "new 1.txt");
    // Upload by parent id + file name.
    let root = env.get_json(&t, "/me/drive/root").await;
    let r = env
        .put_bytes(
            &t,
            &format!(
                "/me/drive/items/{}:/by-id.txt:/content",
                root["id"].as_str().unwrap()
            ),
            b"y".to_vec(),
        )
        .await;
    assert_eq!(r.status(), 201);
    // Bad names are refused with the rule named.
    for bad in ["a%3Ab.txt", "CON", "trailing.", "desktop.ini"] {
        let r = env
            .put_bytes(
                &t,
                &format!("/me/drive/root:/{bad}:/content"),
                b"z".to_vec(),
            )
            .await;
        assert_eq!(r.status(), 400, "{bad}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "invalidRequest");
    }
}

#[tokio::test]
async fn folders_move_rename_delete() {
    let env = start().await;
    let t = env.user_token().await;
    let r = env
        .send_json(
            Method::POST,
            &t,
            "/me/drive/root/children",
            json!({"name": "A", "folder": {}}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let a: Value = r.json().await.unwrap();
    let r = env
        .send_json(
            Method::POST,
            &t,
            "/me/drive/root/children",
            json!({"name": "a", "folder": {}}),
        )
        .await;
    assert_eq!(r.status(), 409, "names are case-insensitive");
    let r = env
        .send_json(
            Method::POST,
            &t,
            "/me/drive/root/children",
            json!({"name": "B", "folder": {}, "@microsoft.graph.conflictBehavior": "fail"}),
        )
        .await;
    let b: Value = r.json().await.unwrap();
    let f: Value = env
        .put_bytes(&t, "/me/drive/root:/A/f.txt:/content", b"data".to_vec())
        .await
        .json()
        .await
        .unwrap();
    let before = env.get_json(&t, "/me/drive/root:/B").await;
    // Move + rename in one PATCH.
    let r = env
        .send_json(
            Method::PATCH,
            &t,
            &format!("/me/drive/items/{}", f["id"].as_str().unwrap()),
            json!({"name": "g.txt", "parentReference": {"id": b["id"]}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let moved: Value = r.json().await.unwrap();
    assert_eq!(moved["parentReference"]["path"], "/drive/root:/B");
    let dir = env.drive_dir(&t).await;
    assert!(dir.join("B/g.txt").exists() && !dir.join("A/f.txt").exists());
    let after = env.get_json(&t, "/me/drive/root:/B").await;
    assert_ne!(
        before["eTag"], after["eTag"],
        "parent changes with its children"
    );
    // A folder can't move into itself.
    let r = env
        .send_json(
            Method::PATCH,
            &t,
            &format!("/me/drive/items/{}", a["id"].as_str().unwrap()),
            json!({"parentReference": {"id": a["id"]}}),
        )
        .await;
    assert_eq!(r.status(), 400);
    // If-Match mismatch.
    let r = env
        .http
        .delete(env.graph(&format!("/me/drive/items/{}", b["id"].as_str().unwrap())))
        .bearer_auth(&t)
        .header("If-Match", "\"{0},1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    let r = env
        .http
        .delete(env.graph(&format!("/me/drive/items/{}", b["id"].as_str().unwrap())))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(!dir.join("B").exists());
    assert_eq!(
        env.get(
            &t,
            &format!("/me/drive/items/{}", moved["id"].as_str().unwrap())
        )
        .await
        .status(),
        404
    );
    // fileSystemInfo is settable.
    let r = env
        .send_json(
            Method::PATCH,
            &t,
            &format!("/me/drive/items/{}", a["id"].as_str().unwrap()),
            json!({"fileSystemInfo": {"lastModifiedDateTime": "2020-01-02T03:04:05Z"}}),
        )
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["fileSystemInfo"]["lastModifiedDateTime"],
        "2020-01-02T03:04:05Z"
    );
}

#[tokio::test]
async fn copy_with_monitor() {
    let env = start().await;
    let t = env.user_token().await;
    let f: Value = env
        .put_bytes(&t, "/me/drive/root:/src.txt:/content", b"copy me".to_vec())
        .await
        .json()
        .await
        .unwrap();
    let r = env
        .send_json(
            Method::POST,
            &t,
            &format!("/me/drive/items/{}/copy", f["id"].as_str().unwrap()),
            json!({"name": "dst.txt"}),
        )
        .await;
    assert_eq!(r.status(), 202);
    let monitor = r.headers()["location"].to_str().unwrap().to_string();
    let mut resource = None;
    for _ in 0..50 {
        let r = env.http.get(&monitor).send().await.unwrap();
        let v: Value = r.json().await.unwrap();
        if v["status"] == "completed" {
            resource = v["resourceId"].as_str().map(str::to_string);
            break;
        }
        assert_eq!(v["status"], "inProgress");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let id = resource.expect("copy completes");
    let v = env.get_json(&t, &format!("/me/drive/items/{id}")).await;
    assert_eq!(v["name"], "dst.txt");
    assert_eq!(v["file"]["hashes"], f["file"]["hashes"]);
    let r = env
        .send_json(
            Method::POST,
            &t,
            &format!("/me/drive/items/{}/copy", f["id"].as_str().unwrap()),
            json!({"name": "dst.txt"}),
        )
        .await;
    assert_eq!(r.status(), 409);
}

async fn session(env: &Env, t: &str, path: &str, body: Value) -> Value {
    let r = env
        .send_json(
            Method::POST,
            t,
            &format!("/me/drive/root:/{path}:/createUploadSession"),
            body,
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["nextExpectedRanges"], json!(["0-"]));
    assert!(v["expirationDateTime"].is_string());
    v
}

async fn put_fragment(
    env: &Env,
    url: &str,
    data: &[u8],
    start: usize,
    total: usize,
) -> reqwest::Response {
    env.http
        .put(url)
        .header(
            "Content-Range",
            format!("bytes {start}-{}/{total}", start + data.len() - 1),
        )
        .body(data.to_vec())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn upload_session_fragments() {
    let env = start().await;
    let t = env.user_token().await;
    const UNIT: usize = 327_680;
    let data: Vec<u8> = (0..(2 * UNIT + 1000)).map(|i| (i % 251) as u8).collect();
    let s = session(
        &env,
        &t,
        "big.bin",
        json!({"item": {"@microsoft.graph.conflictBehavior": "fail"}}),
    )
    .await;
    let url = s["uploadUrl"].as_str().unwrap();
    // Fragment not a multiple of 320 KiB.
    assert_eq!(
        put_fragment(&env, url, &data[..1000], 0, data.len())
            .await
            .status(),
        400
    );
    // Bearer tokens are refused on the upload URL.
    let r = env
        .http
        .put(url)
        .bearer_auth(&t)
        .header(
            "Content-Range",
            format!("bytes 0-{}/{}", UNIT - 1, data.len()),
        )
        .body(data[..UNIT].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = put_fragment(&env, url, &data[..UNIT], 0, data.len()).await;
    assert_eq!(r.status(), 202);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["nextExpectedRanges"], json!([format!("{UNIT}-")]));
    // Overlap and gaps are 416 invalidRange.
    let r = put_fragment(&env, url, &data[..UNIT], 0, data.len()).await;
    assert_eq!(r.status(), 416);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "invalidRange");
    assert_eq!(
        put_fragment(&env, url, &data[2 * UNIT..], 2 * UNIT, data.len())
            .await
            .status(),
        416
    );
    let st: Value = env
        .http
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(st["nextExpectedRanges"], json!([format!("{UNIT}-")]));
    assert_eq!(
        put_fragment(&env, url, &data[UNIT..2 * UNIT], UNIT, data.len())
            .await
            .status(),
        202
    );
    let r = put_fragment(&env, url, &data[2 * UNIT..], 2 * UNIT, data.len()).await;
    assert_eq!(r.status(), 201);
    let item: Value = r.json().await.unwrap();
    assert_eq!(item["size"], data.len());
    let mut q = ferry_graph_emulator::QuickXor::new();
    q.update(&data);
    assert_eq!(item["file"]["hashes"]["quickXorHash"], q.finish_base64());
    assert_eq!(
        std::fs::read(env.drive_dir(&t).await.join("big.bin")).unwrap(),
        data
    );
    // The session is gone after commit.
    assert_eq!(env.http.get(url).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn upload_session_defer_commit_cancel_and_expiry() {
    let env = start().await;
    let t = env.user_token().await;
    let s = session(&env, &t, "later.txt", json!({"deferCommit": true, "item": {"fileSystemInfo": {"lastModifiedDateTime": "2021-05-06T07:08:09Z"}}})).await;
    let url = s["uploadUrl"].as_str().unwrap();
    let r = put_fragment(&env, url, b"abc", 0, 3).await;
    assert_eq!(r.status(), 202);
    assert_eq!(env.get(&t, "/me/drive/root:/later.txt").await.status(), 404);
    let r = env.http.post(url).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["fileSystemInfo"]["lastModifiedDateTime"],
        "2021-05-06T07:08:09Z"
    );
    // Cancel.
    let s = session(&env, &t, "gone.txt", json!({})).await;
    let url = s["uploadUrl"].as_str().unwrap();
    assert_eq!(env.http.delete(url).send().await.unwrap().status(), 204);
    assert_eq!(put_fragment(&env, url, b"abc", 0, 3).await.status(), 404);
    // Expiry via fault.
    env.emu
        .faults()
        .update(|f| f.upload_session_expiry_secs = Some(0));
    let s = session(&env, &t, "exp.txt", json!({})).await;
    assert_eq!(
        put_fragment(&env, s["uploadUrl"].as_str().unwrap(), b"abc", 0, 3)
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn quota_is_enforced() {
    let env = start_with(|c| c.default_quota = 100).await;
    let t = env.user_token().await;
    assert_eq!(
        env.put_bytes(&t, "/me/drive/root:/a:/content", vec![1; 95])
            .await
            .status(),
        201
    );
    let r = env
        .put_bytes(&t, "/me/drive/root:/b:/content", vec![1; 8])
        .await;
    assert_eq!(r.status(), 507);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "quotaLimitReached");
    let d = env.get_json(&t, "/me/drive").await;
    assert_eq!(d["quota"]["used"], 95);
    assert_eq!(d["quota"]["state"], "nearing");
}
