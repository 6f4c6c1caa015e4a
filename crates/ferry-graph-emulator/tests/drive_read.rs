#![allow(clippy::unwrap_used)]
mod common;

use common::*;
use serde_json::Value;

#[tokio::test]
async fn drive_quota_and_items_from_disk() {
    let env = start().await;
    let t = env.user_token().await;
    let d = env.get_json(&t, "/me/drive").await;
    assert_eq!(d["driveType"], "business");
    for k in ["total", "used", "remaining", "deleted"] {
        assert!(d["quota"][k].is_u64(), "{k}");
    }
    assert_eq!(d["quota"]["state"], "normal");
    let dir = env.drive_dir(&t).await;
    std::fs::create_dir_all(dir.join("Docs/Sub Folder")).unwrap();
    std::fs::write(dir.join("Docs/Sub Folder/a.txt"), b"J").unwrap();
    // Lookup by path is case-insensitive and percent-decoded.
    let item = env
        .get_json(&t, "/me/drive/root:/docs/sub%20folder/A.TXT")
        .await;
    assert_eq!(item["name"], "a.txt");
    assert_eq!(item["size"], 1);
    assert_eq!(
        item["file"]["hashes"]["quickXorHash"],
        "SgAAAAAAAAAAAAAAAQAAAAAAAAA="
    );
    assert_eq!(
        item["parentReference"]["path"],
        "/drive/root:/Docs/Sub Folder"
    );
    assert!(item["eTag"].as_str().unwrap().starts_with("\"{"));
    assert!(item["cTag"].is_string());
    assert!(item["@microsoft.graph.downloadUrl"].is_string());
    assert!(
        item["fileSystemInfo"]["lastModifiedDateTime"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    // Same item by id; ids are stable.
    let id = item["id"].as_str().unwrap();
    let again = env.get_json(&t, &format!("/me/drive/items/{id}")).await;
    assert_eq!(again["id"], id);
    let root = env.get_json(&t, "/me/drive/root").await;
    assert!(root["root"].is_object());
    assert_eq!(root["folder"]["childCount"], 1);
    let r = env.get(&t, "/me/drive/root:/nope").await;
    assert_eq!(r.status(), 404);
    assert!(r.headers().contains_key("request-id"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "itemNotFound");
    assert!(v["error"]["innerError"]["request-id"].is_string());
    // $select keeps only the named properties.
    let sel = env
        .get_json(&t, &format!("/me/drive/items/{id}?$select=id,name"))
        .await;
    assert_eq!(sel.as_object().unwrap().len(), 2);
    // Other addressings of the same drive.
    let drive_id = d["id"].as_str().unwrap();
    let via = env
        .get_json(&t, &format!("/drives/{drive_id}/root:/Docs"))
        .await;
    assert_eq!(
        via["parentReference"]["path"],
        format!("/drives/{drive_id}/root:")
    );
    let user = env.get_json(&t, "/me").await;
    let via_user = env
        .get_json(
            &t,
            &format!("/users/{}/drive", user["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(via_user["id"], drive_id);
}

#[tokio::test]
async fn ids_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    // A file the first start's scan finds: the GET's hashes are then its only change.
    let drive_dir = {
        let emu = ferry_graph_emulator::Emulator::start(config(dir.path())).await;
        emu.drive_folder(&emu.drive_ids()[0]).unwrap()
    };
    std::fs::write(drive_dir.join("keep.txt"), b"x").unwrap();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let emu = ferry_graph_emulator::Emulator::start(config(dir.path())).await;
        let r: Value = http
            .post(format!("{}/{TENANT}/oauth2/v2.0/token", emu.url))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT),
                ("client_secret", SECRET),
                ("scope", "https://graph.microsoft.com/.default"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let t = r["access_token"].as_str().unwrap().to_string();
        let drive = emu.drive_ids()[0].clone();
        let v: Value = http
            .get(format!("{}/drives/{drive}/root:/keep.txt", emu.graph_url()))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(v["id"].as_str().unwrap().to_string());
        drop(emu);
        // The hashes computed for that GET were saved too (at shutdown at the latest).
        let sha256 = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881";
        let state = std::fs::read_dir(dir.path().join(".ferry-emulator"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("drive-"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap())
            .collect::<String>();
        assert!(state.contains(sha256), "hashes saved with the drive state");
    }
    assert_eq!(ids[0], ids[1]);
}

#[tokio::test]
async fn children_paging() {
    let env = start().await;
    let t = env.user_token().await;
    let dir = env.drive_dir(&t).await;
    for i in 0..5 {
        std::fs::write(dir.join(format!("f{i}.bin")), vec![0u8; i]).unwrap();
    }
    let mut url = env.graph("/me/drive/root/children?$top=2");
    let mut names = Vec::new();
    let mut pages = 0;
    loop {
        let v: Value = env
            .http
            .get(&url)
            .bearer_auth(&t)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        pages += 1;
        for it in v["value"].as_array().unwrap() {
            names.push(it["name"].as_str().unwrap().to_string());
        }
        match v["@odata.nextLink"].as_str() {
            Some(n) => {
                assert!(n.starts_with("http://") && n.contains("$skiptoken="));
                url = n.to_string();
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        names,
        vec!["f0.bin", "f1.bin", "f2.bin", "f3.bin", "f4.bin"]
    );
}

#[tokio::test]
async fn download_redirect_and_ranges() {
    let env = start().await;
    let t = env.user_token().await;
    let dir = env.drive_dir(&t).await;
    std::fs::write(dir.join("data.bin"), b"0123456789").unwrap();
    let r = env.get(&t, "/me/drive/root:/data.bin:/content").await;
    assert_eq!(r.status(), 302);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    // The pre-authenticated URL needs no token.
    let r = env.http.get(&loc).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"0123456789");
    let r = env
        .http
        .get(&loc)
        .header("Range", "bytes=2-5")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 2-5/10");
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"2345");
    let r = env
        .http
        .get(&loc)
        .header("Range", "bytes=20-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["content-range"], "bytes */10");
    // A tampered link is refused.
    let r = env.http.get(format!("{loc}x")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn personal_drives_report_sha_hashes() {
    let env =
        start_with(|c| c.default_drive_type = ferry_graph_emulator::DriveType::Personal).await;
    let t = env.user_token().await;
    let d = env.get_json(&t, "/me/drive").await;
    assert_eq!(d["driveType"], "personal");
    std::fs::write(env.drive_dir(&t).await.join("x.txt"), b"abc").unwrap();
    let it = env.get_json(&t, "/me/drive/root:/x.txt").await;
    assert_eq!(
        it["file"]["hashes"]["sha1Hash"],
        "A9993E364706816ABA3E25717850C26C9CD0D89D"
    );
    assert!(it["id"].as_str().unwrap().contains('!'));
}

#[tokio::test]
async fn users_cannot_read_other_drives() {
    let env = start_with(|c| {
        c.users.push(ferry_graph_emulator::User {
            id: "other-user".into(),
            user_principal_name: "other@ferry.test".into(),
            display_name: "Other".into(),
        })
    })
    .await;
    let t = env.user_token().await;
    let r = env.get(&t, "/users/other-user/drive").await;
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "accessDenied");
}

#[tokio::test]
async fn changes_are_saved_within_a_second_without_further_requests() {
    let env = start().await;
    let t = env.user_token().await;
    let r = env
        .put_bytes(
            &t,
            "/me/drive/root:/saved-later.txt:/content",
            b"x".to_vec(),
        )
        .await;
    assert_eq!(r.status(), 201);
    let state = || {
        std::fs::read_dir(env.emu.root().join(".ferry-emulator"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("drive-"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect::<String>()
    };
    let mut saved = false;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        if state().contains("saved-later.txt") {
            saved = true;
            break;
        }
    }
    assert!(saved, "the new item is in the saved state within 10 s");
}
