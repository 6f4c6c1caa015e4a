//! The client against the emulator: every flow, and the faults it must survive.

#![allow(clippy::unwrap_used)]

use futures::StreamExt as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_graph::{
    Change, Conflict, Credential, DeltaTree, DriveSelector, Error, GraphClient, GraphConfig,
    RetryPolicy, Secret,
};
use ferry_graph_emulator::{Emulator, EmulatorConfig};
use ferry_testkit::graph::{APP, APP_SECRET as SECRET, PUBLIC_APP, TENANT, USER, start_emulator};

struct Env {
    emu: Emulator,
    dir: tempfile::TempDir,
}

async fn start(f: impl FnOnce(&mut EmulatorConfig)) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let emu = start_emulator(dir.path(), f).await;
    Env { emu, dir }
}

impl Env {
    fn config(&self) -> GraphConfig {
        let mut config = GraphConfig::new(TENANT, APP);
        config.authority = self.emu.authority();
        config.graph_url = self.emu.graph_url();
        config.credential = Credential::Secret(Secret::new(SECRET));
        config.drive = DriveSelector::User(USER.into());
        config.retry = RetryPolicy {
            budget: Duration::from_secs(30),
            base_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
            timeout: Duration::from_secs(30),
        };
        config
    }

    fn app_client(&self) -> GraphClient {
        GraphClient::new(&self.config()).unwrap()
    }

    fn local(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed))
        .collect()
}

#[tokio::test]
async fn app_only_client_walks_the_drive() {
    let env = start(|_| {}).await;
    let graph = env.app_client();
    let drive = graph.drive().await.unwrap();
    assert!(drive.quota.unwrap().total.unwrap() > 0);
    let folder = graph
        .create_folders("DynamicCapital/ai-training/datasets")
        .await
        .unwrap();
    assert!(folder.is_folder());
    // Again: nothing to create, the same folder comes back, for one request.
    let before = env.emu.graph_requests();
    assert_eq!(
        graph
            .create_folders("DynamicCapital/ai-training/datasets")
            .await
            .unwrap()
            .id,
        folder.id
    );
    assert_eq!(env.emu.graph_requests() - before, 1);
    // Two new levels below an existing one: three lookups, two creations.
    let before = env.emu.graph_requests();
    let run = graph
        .create_folders("DynamicCapital/ai-training/models/run-1")
        .await
        .unwrap();
    assert_eq!(env.emu.graph_requests() - before, 5);
    assert_eq!(
        graph
            .item_by_path("DynamicCapital/ai-training/models/run-1")
            .await
            .unwrap()
            .id,
        run.id
    );

    let src = env.local("train.csv");
    std::fs::write(&src, b"id,label\n1,up\n").unwrap();
    let item = graph
        .upload_file(
            &src,
            "DynamicCapital/ai-training/datasets/train.csv",
            Conflict::Replace,
        )
        .await
        .unwrap();
    assert_eq!(item.size, Some(14));
    let by_path = graph
        .item_by_path("DynamicCapital/ai-training/datasets/train.csv")
        .await
        .unwrap();
    assert_eq!(by_path.id, item.id);
    let children = graph.children(&folder.id).await.unwrap();
    assert_eq!(
        children.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["train.csv"]
    );

    let dest = env.local("back.csv");
    graph.download_file(&by_path, &dest).await.unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), b"id,label\n1,up\n");

    let moved = graph
        .move_item(&item.id, None, Some("renamed.csv"))
        .await
        .unwrap();
    assert_eq!(moved.name, "renamed.csv");
    graph.delete(&item.id).await.unwrap();
    let err = graph.item(&item.id).await.unwrap_err();
    assert_eq!(err.graph_code(), Some("itemNotFound"));
}

#[tokio::test]
async fn wrong_secret_is_an_identity_error_with_its_aadsts_code() {
    let env = start(|_| {}).await;
    let mut config = env.config();
    config.credential = Credential::Secret(Secret::new("wrong"));
    let err = GraphClient::new(&config)
        .unwrap()
        .drive()
        .await
        .unwrap_err();
    let Error::Identity { error, aadsts, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(error, "invalid_client");
    assert_eq!(aadsts, &[7000215]);
    assert!(
        !format!("{err:?} {err}").contains("wrong"),
        "the secret leaks"
    );
}

#[tokio::test]
async fn fifty_concurrent_callers_share_one_token_request() {
    let env = start(|_| {}).await;
    let graph = env.app_client();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let graph = graph.clone();
        tasks.push(tokio::spawn(
            async move { graph.auth().token().await.unwrap() },
        ));
    }
    let mut tokens = Vec::new();
    for task in tasks {
        tokens.push(task.await.unwrap());
    }
    assert!(tokens.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(graph.auth().token_requests(), 1);
}

#[tokio::test]
async fn device_code_sign_in_then_refresh_tokens_rotate_in_the_cache() {
    let env = start(|c| c.token_lifetime = Duration::from_secs(2)).await;
    let mut config = env.config();
    config.client_id = PUBLIC_APP.into();
    config.credential = Credential::None;
    config.drive = DriveSelector::Me;
    config.token_cache = Some(env.local("tokens.json"));
    let graph = GraphClient::new(&config).unwrap();
    let code = graph.auth().start_device_login().await.unwrap();
    assert!(!code.user_code.is_empty() && !code.message.is_empty());
    let approve = {
        let code = code.user_code.clone();
        let emu = &env.emu;
        async move {
            // The person approves a moment later, while the client polls.
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(emu.approve_device_code(&code));
        }
    };
    let (account, ()) = tokio::join!(graph.auth().complete_device_login(&code), approve);
    let account = account.unwrap();
    assert!(!account.username.is_empty());
    let cache = graph.auth().cache().unwrap();
    let first = cache.refresh_token().unwrap().unwrap().0;
    graph.drive().await.unwrap();
    // Tokens live 2 s here: the next call refreshes and the new refresh token is saved.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    graph.drive().await.unwrap();
    let second = cache.refresh_token().unwrap().unwrap().0;
    assert_ne!(first, second, "a used refresh token is replaced at once");
    // A new client (a new process) signs in silently from the cache.
    let again = GraphClient::new(&config).unwrap();
    again.drive().await.unwrap();
}

#[tokio::test]
async fn throttling_is_waited_out_for_the_whole_client() {
    let env = start(|_| {}).await;
    let graph = env.app_client();
    graph.drive().await.unwrap();
    env.emu.faults().update(|f| {
        f.throttle_next = 2;
        f.retry_after_secs = 1;
    });
    let started = Instant::now();
    graph.drive().await.unwrap();
    // Retry-After grows 1 s, 2 s with consecutive throttles.
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_throttled_request_beyond_the_budget_is_a_clear_error() {
    let env = start(|_| {}).await;
    let mut config = env.config();
    config.retry.budget = Duration::from_secs(1);
    let graph = GraphClient::new(&config).unwrap();
    env.emu.faults().update(|f| {
        f.throttle_next = 10;
        f.retry_after_secs = 5;
    });
    let err = graph.drive().await.unwrap_err();
    assert!(matches!(err, Error::Throttled { .. }), "{err:?}");
}

#[tokio::test]
async fn large_uploads_go_through_a_session_and_downloads_resume() {
    let env = start(|_| {}).await;
    let graph = env.app_client();
    let data = pattern(12 * 1024 * 1024 + 12_345, 3);
    let src = env.local("model.bin");
    std::fs::write(&src, &data).unwrap();
    let item = graph
        .upload_file(&src, "models/model.bin", Conflict::Replace)
        .await
        .unwrap();
    assert_eq!(item.size, Some(data.len() as u64));
    assert_eq!(
        item.quick_xor_hash().unwrap(),
        ferry_graph::quick_xor_hash(&data)
    );

    env.emu.faults().update(|f| f.drop_downloads_next = 2);
    let dest = env.local("model.back");
    graph.download_file(&item, &dest).await.unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), data);
}

#[tokio::test]
async fn an_existing_name_fails_is_replaced_or_renamed_as_asked() {
    let env = start(|_| {}).await;
    let graph = env.app_client();
    for (name, size) in [("small.csv", 10usize), ("big.bin", 5 * 1024 * 1024)] {
        let src = env.local(name);
        std::fs::write(&src, pattern(size, 1)).unwrap();
        let first = graph.upload_file(&src, name, Conflict::Fail).await.unwrap();
        let err = graph
            .upload_file(&src, name, Conflict::Fail)
            .await
            .unwrap_err();
        assert_eq!(err.graph_code(), Some("nameAlreadyExists"), "{name}: {err}");
        let renamed = graph
            .upload_file(&src, name, Conflict::Rename)
            .await
            .unwrap();
        assert_ne!(renamed.id, first.id);
        assert_ne!(renamed.name, name, "{name}: a new name beside the old one");
        let replaced = graph
            .upload_file(&src, name, Conflict::Replace)
            .await
            .unwrap();
        assert_eq!(replaced.id, first.id, "{name}: replaced in place");
    }
}

#[tokio::test]
async fn every_drive_selector_and_drive_type_works_the_same() {
    use ferry_graph_emulator::{DriveConfig, DriveType};
    let drive = |id: &str, site: Option<&str>, drive_type| DriveConfig {
        id: Some(id.into()),
        owner: None,
        site: site.map(Into::into),
        drive_type: Some(drive_type),
        folder: None,
        quota_total: None,
    };
    let env = start(|c| {
        c.drives
            .push(drive("b!personal0001", None, DriveType::Personal));
        c.drives.push(drive(
            "b!library0001",
            Some("contoso.sharepoint.com,site-1,web-1"),
            DriveType::DocumentLibrary,
        ));
    })
    .await;
    let cases = [
        (DriveSelector::User(USER.into()), "business"),
        (DriveSelector::Id("b!personal0001".into()), "personal"),
        (
            DriveSelector::parse("site:contoso.sharepoint.com,site-1,web-1"),
            "documentLibrary",
        ),
    ];
    let src = env.local("row.csv");
    std::fs::write(&src, b"a,b\n1,2\n").unwrap();
    for (selector, drive_type) in cases {
        let mut config = env.config();
        config.drive = selector.clone();
        let graph = GraphClient::new(&config).unwrap();
        let drive = graph.drive().await.unwrap();
        assert_eq!(
            drive.drive_type.as_deref(),
            Some(drive_type),
            "{selector:?}"
        );
        let start = graph.delta(None).await.unwrap();
        let item = graph
            .upload_file(&src, "datasets/demo/v1/row.csv", Conflict::Replace)
            .await
            .unwrap();
        assert_eq!(item.size, Some(8), "{selector:?}");
        let listed = graph
            .children(&graph.item_by_path("datasets/demo/v1").await.unwrap().id)
            .await
            .unwrap();
        assert_eq!(listed.len(), 1, "{selector:?}");
        // Following a subfolder works by filtering the root delta, on every drive type.
        let mut tree = DeltaTree::new();
        tree.apply(&start.items);
        let delta = graph.delta(Some(&start.delta_link)).await.unwrap();
        let changes = ferry_graph::scoped(tree.apply(&delta.items), "datasets/demo");
        let paths: Vec<String> = changes.iter().map(|c| format!("{c:?}")).collect();
        assert!(
            paths.iter().any(|p| p.contains("v1/row.csv")),
            "{selector:?}: {paths:?}"
        );
    }
}

#[tokio::test]
async fn a_deferred_upload_appears_only_when_committed() {
    let env = start(|_| {}).await;
    let graph = env.app_client();
    let data = pattern(11 * 1024 * 1024, 4);
    let src = env.local("staged.bin");
    std::fs::write(&src, &data).unwrap();
    graph.create_folders("staging").await.unwrap();
    let pending = graph
        .upload_file_deferred(&src, "staging/staged.bin", Conflict::Fail)
        .await
        .unwrap();
    let missing = graph.item_by_path("staging/staged.bin").await.unwrap_err();
    assert_eq!(missing.graph_code(), Some("itemNotFound"));
    let item = pending.commit().await.unwrap();
    assert_eq!(item.size, Some(data.len() as u64));
    assert_eq!(
        item.quick_xor_hash().unwrap(),
        ferry_graph::quick_xor_hash(&data)
    );
    // A cancelled one never appears.
    let pending = graph
        .upload_file_deferred(&src, "staging/other.bin", Conflict::Fail)
        .await
        .unwrap();
    pending.cancel().await.unwrap();
    let missing = graph.item_by_path("staging/other.bin").await.unwrap_err();
    assert_eq!(missing.graph_code(), Some("itemNotFound"));
}

#[tokio::test]
async fn a_range_answered_with_the_whole_file_still_gives_the_range() {
    let env = start(|_| {}).await;
    let graph = env.app_client();
    let data = pattern(6 * 1024 * 1024 + 7, 5);
    let src = env.local("ranged.bin");
    std::fs::write(&src, &data).unwrap();
    let item = graph
        .upload_file(&src, "ranged.bin", Conflict::Replace)
        .await
        .unwrap();
    env.emu.faults().update(|f| f.ignore_range_next = 1);
    let got: Vec<u8> = graph
        .download_range(&item.id, Some(1_000_000..1_000_100))
        .await
        .unwrap()
        .map(|chunk| chunk.unwrap().to_vec())
        .concat()
        .await;
    assert_eq!(got, &data[1_000_000..1_000_100]);
    assert_eq!(
        env.emu.faults().get().ignore_range_next,
        0,
        "the 200 was sent"
    );
    // A download cut halfway whose resume request gets the whole file back.
    env.emu.faults().update(|f| {
        f.drop_downloads_next = 1;
        f.ignore_range_next = 1;
    });
    let dest = env.local("ranged.back");
    graph.download_file(&item, &dest).await.unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    let faults = env.emu.faults().get();
    assert_eq!(
        (faults.drop_downloads_next, faults.ignore_range_next),
        (0, 0)
    );
}

#[tokio::test]
async fn an_upload_whose_fragment_answer_is_lost_resumes_from_the_session() {
    let env = start(|_| {}).await;
    let graph = env.app_client();
    // Three fragments; the answer to the second is lost after the emulator stored it.
    let data = pattern(25 * 1024 * 1024, 9);
    let src = env.local("big.bin");
    std::fs::write(&src, &data).unwrap();
    env.emu.faults().update(|f| f.lose_fragment_acks_next = 2);
    let moved = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = moved.clone();
    let graph = graph.with_progress(Arc::new(move |n| {
        counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }));
    let item = graph
        .upload_file(&src, "big.bin", Conflict::Replace)
        .await
        .unwrap();
    // Progress counts each byte once, resent fragments included.
    assert_eq!(
        moved.load(std::sync::atomic::Ordering::Relaxed),
        data.len() as u64
    );
    assert_eq!(item.size, Some(data.len() as u64));
    assert_eq!(
        item.quick_xor_hash().unwrap(),
        ferry_graph::quick_xor_hash(&data)
    );
    let dest = env.local("big.back");
    graph.download_file(&item, &dest).await.unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    assert_eq!(
        moved.load(std::sync::atomic::Ordering::Relaxed),
        2 * data.len() as u64
    );
}

#[tokio::test]
async fn bytes_that_do_not_match_the_hash_are_discarded() {
    let env = start(|_| {}).await;
    let graph = env.app_client();
    let src = env.local("a.bin");
    std::fs::write(&src, b"original bytes").unwrap();
    let item = graph
        .upload_file(&src, "a.bin", Conflict::Replace)
        .await
        .unwrap();
    // The file changes on the server after we read its hash.
    let folder = env.emu.drive_folder(&env.emu.drive_ids()[0]).unwrap();
    std::fs::write(folder.join("a.bin"), b"tampered bytes").unwrap();
    let dest = env.local("a.back");
    let err = graph.download_file(&item, &dest).await.unwrap_err();
    assert!(matches!(err, Error::HashMismatch { .. }), "{err:?}");
    assert!(!dest.exists());
    assert_eq!(
        std::fs::read_dir(env.dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains("ferry-part")
            })
            .count(),
        0,
        "no partial file left"
    );
}

#[tokio::test]
async fn names_onedrive_refuses_fail_before_any_request() {
    let env = start(|_| {}).await;
    let graph = env.app_client();
    let src = env.local("x");
    std::fs::write(&src, b"x").unwrap();
    let err = graph
        .upload_file(&src, "data/bad:name.csv", Conflict::Fail)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Name(_)), "{err:?}");
    assert!(err.to_string().contains("forbids"));
}

#[tokio::test]
async fn delta_replayed_from_a_cursor_tracks_the_drive() {
    let env = start(|_| {}).await;
    let graph = Arc::new(env.app_client());
    let src = env.local("f");
    std::fs::write(&src, b"v1").unwrap();
    graph
        .upload_file(&src, "d/a.csv", Conflict::Replace)
        .await
        .unwrap();
    graph
        .upload_file(&src, "d/b.csv", Conflict::Replace)
        .await
        .unwrap();
    let first = graph.delta(None).await.unwrap();
    let mut tree = DeltaTree::new();
    tree.apply(&first.items);
    let paths: Vec<String> = tree.paths().into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths, ["d", "d/a.csv", "d/b.csv"]);

    let d = graph.item_by_path("d").await.unwrap();
    graph.move_item(&d.id, None, Some("e")).await.unwrap();
    let b = graph.item_by_path("e/b.csv").await.unwrap();
    graph.delete(&b.id).await.unwrap();
    std::fs::write(&src, b"v2 longer").unwrap();
    graph
        .upload_file(&src, "e/a.csv", Conflict::Replace)
        .await
        .unwrap();
    let next = graph.delta(Some(&first.delta_link)).await.unwrap();
    let changes = tree.apply(&next.items);
    assert!(
        changes.contains(&Change::Moved {
            from: "d".into(),
            to: "e".into()
        }),
        "{changes:?}"
    );
    // Changes are reported in order, each with the path it had then: b.csv went before its
    // folder was renamed.
    assert!(
        changes.contains(&Change::Deleted {
            path: "d/b.csv".into()
        }),
        "{changes:?}"
    );
    let paths: Vec<String> = tree.paths().into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths, ["e", "e/a.csv"]);

    // An expired cursor: a full enumeration comes back, flagged.
    env.emu
        .faults()
        .update(|f| f.delta_resync = Some("resyncRequired".into()));
    let resynced = graph.delta(Some(&next.delta_link)).await.unwrap();
    assert!(resynced.resynced);
    let mut fresh = DeltaTree::new();
    fresh.apply(&resynced.items);
    let paths: Vec<String> = fresh.paths().into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths, ["e", "e/a.csv"]);
}

#[tokio::test]
async fn a_certificate_signs_the_client_assertion() {
    const CERT: &str = include_str!("../../ferry-graph-emulator/tests/fixtures/app-cert.pem");
    const KEY: &str = include_str!("../../ferry-graph-emulator/tests/fixtures/app-key.pem");
    const OTHER_KEY: &str = include_str!("../../ferry-graph-emulator/tests/fixtures/other-key.pem");
    let env = start(|c| {
        for app in &mut c.apps {
            if app.client_id == APP {
                app.certificate_pem = Some(CERT.into());
            }
        }
    })
    .await;
    let mut config = env.config();
    config.credential = Credential::Certificate {
        cert_pem: CERT.into(),
        key_pem: Secret::new(KEY),
    };
    GraphClient::new(&config).unwrap().drive().await.unwrap();
    // A key that does not belong to the certificate is refused.
    config.credential = Credential::Certificate {
        cert_pem: CERT.into(),
        key_pem: Secret::new(OTHER_KEY),
    };
    let err = GraphClient::new(&config)
        .unwrap()
        .drive()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Identity { .. }), "{err:?}");
}

#[tokio::test]
async fn copies_wait_on_the_monitor() {
    let env = start(|_| {}).await;
    let graph = env.app_client();
    let src = env.local("c.csv");
    std::fs::write(&src, b"copy me").unwrap();
    let item = graph
        .upload_file(&src, "a/c.csv", Conflict::Replace)
        .await
        .unwrap();
    let dest = graph.create_folders("b").await.unwrap();
    let copy = graph
        .copy_item(&item.id, &dest.id, Some("c2.csv"))
        .await
        .unwrap();
    assert_eq!(copy.name, "c2.csv");
    assert_ne!(copy.id, item.id);
    assert_eq!(copy.quick_xor_hash(), item.quick_xor_hash());
}

#[tokio::test]
async fn an_access_token_refused_early_is_refreshed_once_and_the_call_retried() {
    let env = start(|_| {}).await;
    let graph = env.app_client();
    graph.drive().await.unwrap();
    assert_eq!(graph.auth().token_requests(), 1);
    // The service starts refusing tokens older than a second (revoked, clock skew, ...).
    env.emu.faults().update(|f| f.token_expiry_secs = Some(1));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    graph.drive().await.unwrap();
    assert_eq!(graph.auth().token_requests(), 2);
}

#[tokio::test]
async fn browser_sign_in_with_pkce_on_a_loopback_redirect() {
    let env = start(|_| {}).await;
    let mut config = env.config();
    config.client_id = PUBLIC_APP.into();
    config.credential = Credential::None;
    config.drive = DriveSelector::Me;
    config.token_cache = Some(env.local("tokens.json"));
    let graph = GraphClient::new(&config).unwrap();
    // The "browser": follows the authorize redirect back to the loopback listener.
    let account = graph
        .auth()
        .browser_login(|url| {
            let url = url.to_owned();
            tokio::spawn(async move {
                let page = reqwest::get(&url).await.unwrap();
                assert!(page.status().is_success(), "{}", page.status());
            });
        })
        .await
        .unwrap();
    assert!(account.username.contains('@'));
    graph.drive().await.unwrap();
}
