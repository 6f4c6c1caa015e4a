//! `ferry init` on a local folder and on a OneDrive folder (the emulator): the layout with
//! its READMEs, created once and kept as people edit it.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use ferry_testkit::graph::{APP, APP_SECRET, TENANT, USER, app_client, start_emulator};

const BIN: &str = env!("CARGO_BIN_EXE_ferry");

fn init(state: &Path, args: &[&str], env: &[(&str, String)]) -> std::process::Output {
    let out = std::process::Command::new(BIN)
        .arg("init")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("FERRY_STATE_DIR", state)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ferry init {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn lines_with(out: &std::process::Output, word: &str) -> usize {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with(word))
        .count()
}

#[test]
fn a_local_folder_gets_the_layout_once_and_keeps_edits() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ai-training");
    let state = dir.path().join("state");
    let root_arg = root.to_str().unwrap();
    let first = init(&state, &["--root", root_arg], &[]);
    let total = ferry_etl::layout::FOLDERS.len() + ferry_etl::layout::FILES.len();
    assert_eq!(lines_with(&first, "created"), total);
    for folder in ferry_etl::layout::FOLDERS {
        assert!(root.join(folder).is_dir(), "{folder}");
    }
    for (path, body) in ferry_etl::layout::FILES {
        assert_eq!(std::fs::read_to_string(root.join(path)).unwrap(), body);
    }

    // People edit a README; a second init keeps it and creates nothing.
    std::fs::write(root.join("datasets/README.md"), "# ours\n").unwrap();
    std::fs::remove_file(root.join("reports/README.md")).unwrap();
    let second = init(&state, &["--root", root_arg], &[]);
    assert_eq!(lines_with(&second, "created"), 1, "only the removed README");
    assert_eq!(lines_with(&second, "kept"), total - 1);
    assert_eq!(
        std::fs::read_to_string(root.join("datasets/README.md")).unwrap(),
        "# ours\n"
    );

    // Without a folder it says which flag names one.
    let out = std::process::Command::new(BIN)
        .arg("init")
        .env_clear()
        .env("FERRY_STATE_DIR", &state)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--root"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_onedrive_folder_gets_the_layout_through_graph() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start_emulator(&dir.path().join("emulator"), |_| {}).await;
    let env = vec![
        ("FERRY_GRAPH_AUTHORITY", emu.authority()),
        ("FERRY_GRAPH_URL", emu.graph_url()),
        ("FERRY_GRAPH_TENANT", TENANT.to_owned()),
        ("FERRY_GRAPH_CLIENT_ID", APP.to_owned()),
        ("FERRY_GRAPH_CLIENT_SECRET", APP_SECRET.to_owned()),
        ("FERRY_GRAPH_DRIVE", format!("user:{USER}")),
    ];
    let state = dir.path().join("state");
    let run = |args: Vec<&'static str>| {
        let (state, env) = (state.clone(), env.clone());
        tokio::task::spawn_blocking(move || init(&state, &args, &env))
    };
    let first = run(vec!["--source", "onedrive"]).await.unwrap();
    let total = ferry_etl::layout::FOLDERS.len() + ferry_etl::layout::FILES.len();
    assert_eq!(lines_with(&first, "created"), total);

    let graph = app_client(&emu);
    for folder in ferry_etl::layout::FOLDERS {
        let item = graph
            .item_by_path(&format!("DynamicCapital/ai-training/{folder}"))
            .await
            .unwrap();
        assert!(item.is_folder(), "{folder}");
    }
    for (path, body) in ferry_etl::layout::FILES {
        let item = graph
            .item_by_path(&format!("DynamicCapital/ai-training/{path}"))
            .await
            .unwrap();
        let local = dir.path().join("down");
        graph.download_file(&item, &local).await.unwrap();
        assert_eq!(std::fs::read_to_string(&local).unwrap(), body, "{path}");
    }
    let again = run(vec!["--source", "onedrive"]).await.unwrap();
    assert_eq!(lines_with(&again, "kept"), total);
    // Nothing is left in ferry's staging.
    let staging = state.join("staging");
    assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 0);
}
