//! `ferry sync` as a process: the `--every` daemon (its cadence, restarts and jitter) against
//! a real Postgres, and the OneDrive source's staging encryption against the Graph emulator.
//!
//! Timing is read from `ferry.etl_runs` (the database's clock, the one the daemon plans
//! with), with generous upper bounds: the lower bounds are exact, since a run is never due
//! before one interval after the last one started.

#![allow(clippy::unwrap_used)]

use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferry_etl::staging::{EncryptedReader, StagingKey};
use ferry_graph::{Conflict, GraphClient};
use ferry_graph_emulator::Emulator;
use ferry_testkit::Service;
use ferry_testkit::graph::{APP, APP_SECRET, TENANT, USER, app_client, start_emulator};
use ferry_testkit::pg::TestDb;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ferry");

/// How much later than due a run may start on a busy machine. Runs are due to the
/// millisecond; this only absorbs scheduling delays.
const SLACK: f64 = 1.5;
/// Rounding of `started_at` to microseconds, and float arithmetic.
const EPSILON: f64 = 0.01;

// ---------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------

/// Polls `probe` until it returns `Some`, or panics with `what` after `timeout`.
async fn until<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A fresh cluster with ferry's schema (so the test can query it before ferry runs).
async fn database() -> (TestDb, tokio_postgres::Client) {
    let db = ferry_testkit::pg::start().await;
    let mut client = db.client().await;
    ferry_pg::migrate(&mut client).await.unwrap();
    (db, client)
}

/// The database's clock, in seconds since the epoch.
async fn db_now(client: &tokio_postgres::Client) -> f64 {
    client
        .query_one("SELECT extract(epoch FROM clock_timestamp())::float8", &[])
        .await
        .unwrap()
        .get(0)
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

/// One row of `ferry.etl_runs`.
#[derive(Debug, Clone)]
struct Run {
    id: i64,
    /// Seconds since the epoch.
    started: f64,
    status: String,
    trigger: String,
}

async fn runs(client: &tokio_postgres::Client, source: &str) -> Vec<Run> {
    client
        .query(
            "SELECT id, extract(epoch FROM started_at)::float8, status, trigger
             FROM ferry.etl_runs WHERE source = $1 ORDER BY id",
            &[&source],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| Run {
            id: r.get(0),
            started: r.get(1),
            status: r.get(2),
            trigger: r.get(3),
        })
        .collect()
}

/// Waits until the source has at least `n` runs; returns them all.
async fn wait_for_runs(
    client: &tokio_postgres::Client,
    source: &str,
    n: usize,
    timeout: Duration,
) -> Vec<Run> {
    until(
        &format!("{n} run(s) of {source}"),
        timeout,
        move || async move {
            let all = runs(client, source).await;
            (all.len() >= n).then_some(all)
        },
    )
    .await
}

/// Time between the starts of consecutive runs, in seconds.
fn gaps(runs: &[Run]) -> Vec<f64> {
    runs.windows(2)
        .map(|w| w[1].started - w[0].started)
        .collect()
}

// ---------------------------------------------------------------------------------------
// `--every` with a local folder
// ---------------------------------------------------------------------------------------

/// Writes a CSV of `rows` rows into place atomically (a run never sees half of it).
fn put_csv(root: &Path, path: &str, rows: std::ops::Range<u32>) {
    let mut body = String::from("id,name\n");
    for i in rows {
        body.push_str(&format!("{i},name-{i}\n"));
    }
    let dest = root.join(path);
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    let tmp = root.join(".incoming.tmp");
    std::fs::write(&tmp, body).unwrap();
    std::fs::rename(&tmp, &dest).unwrap();
}

/// A folder with one dataset file, and the source name runs are recorded under.
fn local_folder(dir: &Path) -> (PathBuf, String) {
    let root = dir.join("root");
    put_csv(&root, "datasets/d/v1/a.csv", 0..3);
    let name = format!("local:{}", root.canonicalize().unwrap().display());
    (root, name)
}

/// Starts `ferry sync --source local --every ...` (stopped when the service is dropped; its
/// log is printed if the test fails).
fn daemon(db: &TestDb, root: &Path, log: &Path, args: &[&str]) -> Service {
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(["sync", "--source", "local", "--json", "--root"])
        .arg(root)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", db.url_with_password())
        .env("FERRY_STATE_DIR", log.with_extension("state"))
        .env("FERRY_LOG", "info,tokio_postgres=warn")
        .env("FERRY_LOG_FORMAT", "json");
    Service::spawn("ferry sync --every", cmd, log)
}

/// The waits the daemon planned so far ("waiting for the next sync", whole seconds).
fn planned_waits(daemon: &Service) -> Vec<Duration> {
    daemon
        .log()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == "waiting for the next sync")
        .map(|v| humantime::parse_duration(v["next_in"].as_str().unwrap()).unwrap())
        .collect()
}

/// SIGTERM while the daemon waits: it stops cleanly.
fn stop(mut daemon: Service) {
    daemon.signal(libc::SIGTERM);
    assert_eq!(
        daemon.wait(Duration::from_secs(30)),
        Some(0),
        "SIGTERM stops the daemon cleanly:\n{}",
        daemon.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_runs_at_once_then_once_per_interval_and_picks_up_new_files() {
    let (db, client) = database().await;
    let dir = tempfile::tempdir().unwrap();
    let (root, source) = local_folder(dir.path());

    let daemon = daemon(
        &db,
        &root,
        &dir.path().join("daemon.log"),
        &["--every", "2s", "--jitter", "0s"],
    );
    let first = wait_for_runs(&client, &source, 1, Duration::from_secs(30)).await[0].clone();
    assert_eq!(
        planned_waits(&daemon).first(),
        Some(&Duration::ZERO),
        "a source that never ran is due at once"
    );

    // The runs that started within 7 s of the first: at 0, 2, 4 and 6 s (the last may
    // slip past 7 s on a busy machine).
    let window_end = first.started + 7.0;
    let (c, s) = (&client, source.as_str());
    until(
        "7 s after the first run",
        Duration::from_secs(30),
        move || async move { (db_now(c).await >= window_end).then_some(()) },
    )
    .await;
    let window: Vec<Run> = runs(&client, &source)
        .await
        .into_iter()
        .filter(|r| r.started < window_end)
        .collect();
    assert!(
        (3..=4).contains(&window.len()),
        "{} run(s) in 7 s: {window:#?}",
        window.len()
    );
    for gap in gaps(&window) {
        assert!(
            (2.0 - EPSILON..=2.0 + SLACK).contains(&gap),
            "runs {gap:.3} s apart with --every 2s: {window:#?}"
        );
    }
    assert!(
        window.iter().all(|r| r.trigger == "schedule"),
        "{window:#?}"
    );

    // A file added while the daemon runs is loaded by a later run.
    let before = runs(&client, &source).await.last().unwrap().id;
    put_csv(&root, "datasets/d/v1/b.csv", 3..5);
    let loaded_by: i64 = until(
        "b.csv to be loaded",
        Duration::from_secs(30),
        move || async move {
            c.query_opt(
                "SELECT run_id FROM ferry.onedrive_ingest
                 WHERE source = $1 AND path = 'datasets/d/v1/b.csv' AND status = 'loaded'",
                &[&s],
            )
            .await
            .unwrap()
            .map(|r| r.get(0))
        },
    )
    .await;
    assert!(
        loaded_by > before,
        "loaded by run {loaded_by}, after run {before}"
    );
    assert_eq!(
        count(&client, "SELECT count(*) FROM ai_raw_csv.d__v1").await,
        5
    );
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM ferry.onedrive_ingest
             WHERE path = 'datasets/d/v1/a.csv' AND status = 'loaded'"
        )
        .await,
        1,
        "the unchanged file is loaded once, not by every run"
    );
    let all = runs(&client, &source).await;
    assert!(
        all.iter()
            .all(|r| r.trigger == "schedule" && r.status != "failed" && r.status != "partial"),
        "{all:#?}"
    );

    stop(daemon);
    let after = runs(&client, &source).await;
    assert!(
        after.iter().all(|r| r.status == "succeeded"),
        "no run is left running or failed after SIGTERM: {after:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_daemon_waits_for_one_interval_after_the_last_run() {
    let (db, client) = database().await;
    let dir = tempfile::tempdir().unwrap();
    let (root, source) = local_folder(dir.path());
    let every = ["--every", "30s", "--jitter", "0s"];

    // A fresh source runs at once, long before its 30 s interval.
    let mut first = daemon(&db, &root, &dir.path().join("first.log"), &every);
    let (c, s) = (&client, source.as_str());
    let last = until(
        "the first run to finish",
        Duration::from_secs(25),
        move || async move { runs(c, s).await.into_iter().find(|r| r.status != "running") },
    )
    .await;
    assert_eq!(last.status, "succeeded");
    assert_eq!(planned_waits(&first).first(), Some(&Duration::ZERO));

    // Killed (as by a crash or a redeploy) right after that run, restarted at once: the
    // next run is due 30 s after the last one started, so nothing runs now.
    first.signal(libc::SIGKILL);
    first.wait(Duration::from_secs(10));
    let second = daemon(&db, &root, &dir.path().join("second.log"), &every);
    let d = &second;
    let planned = until(
        "the restarted daemon to plan its next run",
        Duration::from_secs(25),
        move || async move { planned_waits(d).first().copied() },
    )
    .await;
    let elapsed = db_now(&client).await - last.started;
    assert!(
        planned <= Duration::from_secs(30) && planned.as_secs_f64() >= 30.0 - elapsed - 1.0,
        "planned a wait of {planned:?}, {elapsed:.1} s after the last run started"
    );
    let quiet_until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < quiet_until {
        let now = runs(&client, &source).await;
        assert_eq!(now.len(), 1, "a restart must not run at once: {now:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop(second);

    // Restarted with an interval a few seconds longer than the time since the last run:
    // the run comes one interval after the last run, not one interval after the restart.
    let restarted_at = db_now(&client).await;
    let interval = (restarted_at - last.started).ceil() + 4.0;
    let every = format!("{interval}s");
    let third = daemon(
        &db,
        &root,
        &dir.path().join("third.log"),
        &["--every", &every, "--jitter", "0s"],
    );
    let all = wait_for_runs(
        &client,
        &source,
        2,
        Duration::from_secs_f64(interval + 20.0),
    )
    .await;
    let next = &all[1];
    let gap = next.started - last.started;
    assert!(
        (interval - EPSILON..=interval + SLACK).contains(&gap),
        "with --every {every}, the next run started {gap:.3} s after the last one"
    );
    assert!(
        next.started - restarted_at < interval - 1.0,
        "the run was not put off by a full interval after the restart ({:.3} s)",
        next.started - restarted_at
    );
    assert_eq!(next.trigger, "schedule");
    let planned = planned_waits(&third);
    assert!(
        planned[0].as_secs_f64() < interval - 1.0,
        "{planned:?} with --every {every}"
    );
    until(
        "the run to finish",
        Duration::from_secs(30),
        move || async move {
            let all = runs(c, s).await;
            (all[1].status != "running").then_some(())
        },
    )
    .await;
    stop(third);
    let all = runs(&client, &source).await;
    assert_eq!(all.len(), 2, "{all:#?}");
    assert!(all.iter().all(|r| r.status == "succeeded"), "{all:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jitter_adds_at_most_its_length_to_each_wait() {
    // --jitter only means something with --every.
    let out = std::process::Command::new(BIN)
        .args(["sync", "--root", "/nonexistent", "--jitter", "1s"])
        .env_clear()
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--every"), "{stderr}");

    let (db, client) = database().await;
    let dir = tempfile::tempdir().unwrap();
    let (root, source) = local_folder(dir.path());
    let daemon = daemon(
        &db,
        &root,
        &dir.path().join("daemon.log"),
        &["--every", "2s", "--jitter", "1s"],
    );
    let all = wait_for_runs(&client, &source, 4, Duration::from_secs(40)).await;
    let window = &all[..4];
    for gap in gaps(window) {
        assert!(
            (2.0 - EPSILON..=3.0 + SLACK).contains(&gap),
            "runs {gap:.3} s apart with --every 2s --jitter 1s: {window:#?}"
        );
    }
    // The first wait of a source that never ran is the jitter alone.
    let planned = planned_waits(&daemon);
    assert!(planned[0] < Duration::from_secs(1), "{planned:?}");
    stop(daemon);
}

// ---------------------------------------------------------------------------------------
// Staging encryption with the OneDrive source
// ---------------------------------------------------------------------------------------

const DRIVE_ROOT: &str = "DynamicCapital/ai-training";
/// In every row of the test files: it must not appear in an encrypted staging file.
const MARKER: &str = "plaintext-marker";

fn marked_csv(rows: std::ops::Range<u32>) -> String {
    let mut body = String::from("id,label\n");
    for i in rows {
        body.push_str(&format!("{i},{MARKER}-{i}\n"));
    }
    body
}

/// Postgres, the Graph emulator and a drive holding `datasets/m/v1/a.csv`.
struct Drive {
    db: TestDb,
    client: tokio_postgres::Client,
    emu: Emulator,
    graph: GraphClient,
    dir: tempfile::TempDir,
    csv: String,
}

/// What a sync held just before creating its table left in staging.
#[derive(Debug)]
struct Staged {
    /// The staging file's bytes.
    bytes: Vec<u8>,
    /// A copy of it, to decrypt.
    copy: PathBuf,
    mode: u32,
    /// The mode of the folder holding it.
    dir_mode: u32,
    report: Value,
}

impl Drive {
    async fn start() -> Self {
        let (db, client) = database().await;
        let dir = tempfile::tempdir().unwrap();
        let emu = start_emulator(&dir.path().join("emulator"), |_| {}).await;
        let graph = app_client(&emu);
        let csv = marked_csv(0..50);
        let drive = Self {
            db,
            client,
            emu,
            graph,
            dir,
            csv,
        };
        drive.put("datasets/m/v1/a.csv", &drive.csv).await;
        drive
    }

    async fn put(&self, path: &str, body: &str) {
        let local = self.dir.path().join("upload.tmp");
        std::fs::write(&local, body).unwrap();
        self.graph
            .upload_file(&local, &format!("{DRIVE_ROOT}/{path}"), Conflict::Replace)
            .await
            .unwrap();
    }

    fn state(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `ferry sync --source onedrive` with `state` as its state dir and nothing else from
    /// the test's environment (killed if dropped).
    fn sync(&self, state: &Path, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.args(["sync", "--source", "onedrive", "--json", "--drive-root"])
            .arg(format!("/{DRIVE_ROOT}"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", self.db.url_with_password())
            .env("FERRY_STATE_DIR", state)
            .env("FERRY_LOG", "warn")
            .env("FERRY_GRAPH_AUTHORITY", self.emu.authority())
            .env("FERRY_GRAPH_URL", self.emu.graph_url())
            .env("FERRY_GRAPH_TENANT", TENANT)
            .env("FERRY_GRAPH_CLIENT_ID", APP)
            .env("FERRY_GRAPH_CLIENT_SECRET", APP_SECRET)
            .env("FERRY_GRAPH_DRIVE", format!("user:{USER}"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Runs a sync to its end; returns its report.
    async fn sync_ok(&self, mut cmd: tokio::process::Command) -> Value {
        let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
            .await
            .expect("the sync did not finish in 60 s")
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Runs a sync that must fail before it starts; returns its stderr.
    async fn sync_refused(&self, mut cmd: tokio::process::Command) -> String {
        let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
            .await
            .expect("the sync did not finish in 60 s")
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            out.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(stderr.starts_with("ferry: "), "{stderr}");
        stderr
    }

    /// Runs a sync of the drive's first file while a transaction of the test creates the
    /// file's table: the sync downloads the file into staging, then waits on that
    /// transaction when it creates the same table. Staging then holds the whole file, which
    /// is read before the transaction is rolled back and the sync goes on to its end.
    async fn sync_holding_staged_file(
        &self,
        state: &Path,
        mut cmd: tokio::process::Command,
    ) -> Staged {
        self.client
            .batch_execute("CREATE SCHEMA IF NOT EXISTS ai_raw_csv")
            .await
            .unwrap();
        let holder = self.db.client().await;
        holder
            .batch_execute("BEGIN; CREATE TABLE ai_raw_csv.m__v1 (held int)")
            .await
            .unwrap();
        let mut child = cmd.spawn().unwrap();
        let downloads = state.join("staging").join("downloads");
        let deadline = Instant::now() + Duration::from_secs(60);
        let staged = loop {
            if let Some(status) = child.try_wait().unwrap() {
                let out = child.wait_with_output().await.unwrap();
                panic!(
                    "the sync ended ({status}) while it should wait:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            let waiting = count(
                &self.client,
                "SELECT count(*) FROM pg_stat_activity
                 WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
            )
            .await;
            let files: Vec<PathBuf> = files_under(&downloads)
                .into_iter()
                .filter(|p| p.extension().is_some_and(|x| x == "download"))
                .collect();
            if waiting >= 1 && files.len() == 1 {
                break files[0].clone();
            }
            if Instant::now() > deadline {
                child.start_kill().unwrap();
                let out = child.wait_with_output().await.unwrap();
                panic!(
                    "timed out waiting for the sync to wait with its file in staging \
                     ({waiting} waiting on a lock, staging holds {files:?}):\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let bytes = std::fs::read(&staged).unwrap();
        let copy = self.dir.path().join(format!(
            "staged-copy-{}",
            state.file_name().unwrap().to_string_lossy()
        ));
        std::fs::copy(&staged, &copy).unwrap();
        let mode = std::fs::metadata(&staged).unwrap().permissions().mode() & 0o777;
        let folder = staged.parent().unwrap();
        let dir_mode = std::fs::metadata(folder).unwrap().permissions().mode() & 0o777;
        holder.batch_execute("ROLLBACK").await.unwrap();

        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("the sync did not finish in 60 s after the table was released")
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["status"], "succeeded", "{report}");
        assert_eq!(report["files_loaded"], 1, "{report}");
        let left = files_under(&downloads);
        assert!(
            left.is_empty(),
            "staging is emptied after the load: {left:?}"
        );
        assert_eq!(
            count(&self.client, "SELECT count(*) FROM ai_raw_csv.m__v1").await,
            50
        );
        Staged {
            bytes,
            copy,
            mode,
            dir_mode,
            report,
        }
    }

    async fn runs(&self) -> i64 {
        count(&self.client, "SELECT count(*) FROM ferry.etl_runs").await
    }
}

/// Every file below `dir` (none if it does not exist).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// The plaintext of an encrypted staging file, if `key` opens it.
fn decrypt(path: &Path, key: &StagingKey) -> std::io::Result<String> {
    let mut out = String::new();
    EncryptedReader::open(path, key)?.read_to_string(&mut out)?;
    Ok(out)
}

/// An encrypted staging file: ferry's header, and not a trace of the plaintext.
fn assert_sealed(staged: &Staged) {
    assert!(
        staged.bytes.starts_with(b"FERRYST1"),
        "not an encrypted staging file: {:?}",
        String::from_utf8_lossy(&staged.bytes[..staged.bytes.len().min(64)])
    );
    assert!(
        !staged
            .bytes
            .windows(MARKER.len())
            .any(|w| w == MARKER.as_bytes()),
        "the staging file holds plaintext"
    );
    assert_eq!(staged.mode, 0o600, "{staged:?}");
    assert_eq!(staged.dir_mode, 0o700, "{staged:?}");
}

fn write_private(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staging_is_encrypted_with_a_key_generated_in_the_state_dir() {
    let drive = Drive::start().await;
    let state = drive.state("state");
    let staged = drive
        .sync_holding_staged_file(&state, drive.sync(&state, &[]))
        .await;

    let key_file = state.join("staging.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the generated key is private");
    let text = std::fs::read_to_string(&key_file).unwrap();
    assert!(
        text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()),
        "the key file holds 64 hex characters ({} characters)",
        text.len()
    );
    assert_sealed(&staged);
    let key = StagingKey::from_hex(&text).unwrap();
    assert_eq!(decrypt(&staged.copy, &key).unwrap(), drive.csv);
    assert!(decrypt(&staged.copy, &StagingKey::generate()).is_err());

    // The next run keeps using that key.
    drive.put("datasets/m/v1/b.csv", &marked_csv(50..60)).await;
    let report = drive.sync_ok(drive.sync(&state, &[])).await;
    assert_eq!(report["files_loaded"], 1, "{report}");
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), text);
    assert_eq!(
        count(&drive.client, "SELECT count(*) FROM ai_raw_csv.m__v1").await,
        60
    );
    assert_eq!(staged.report["rows_loaded"], 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staging_uses_the_configured_key_and_refuses_a_malformed_one() {
    let drive = Drive::start().await;
    let secret = "not-a-key-but-a-secret-7f3a";

    // A key file that is not a key: a clear error before anything runs, without the
    // file's content.
    let state = drive.state("state-bad-file");
    let bad = drive.dir.path().join("bad.key");
    write_private(&bad, secret, 0o600);
    let mut cmd = drive.sync(&state, &[]);
    cmd.env("FERRY_STAGING_KEY_FILE", &bad);
    let stderr = drive.sync_refused(cmd).await;
    assert!(
        stderr.contains("must hold 64 hexadecimal characters"),
        "{stderr}"
    );
    assert!(!stderr.contains(secret), "{stderr}");
    assert!(!state.join("staging.key").exists(), "no key is generated");

    // The same in the variable itself, and a hex key one byte short.
    let short = "ab".repeat(31);
    let state = drive.state("state-bad-var");
    let mut cmd = drive.sync(&state, &[]);
    cmd.env("FERRY_STAGING_KEY", &short);
    let stderr = drive.sync_refused(cmd).await;
    assert!(
        stderr.contains("must hold 64 hexadecimal characters"),
        "{stderr}"
    );
    assert!(!stderr.contains(&short), "{stderr}");
    assert!(!state.join("staging.key").exists());

    // A key file others can read is refused, whatever it holds.
    let key = StagingKey::generate();
    let state = drive.state("state-open-file");
    let open = drive.dir.path().join("open.key");
    write_private(&open, &key.to_hex(), 0o644);
    let mut cmd = drive.sync(&state, &[]);
    cmd.env("FERRY_STAGING_KEY_FILE", &open);
    let stderr = drive.sync_refused(cmd).await;
    assert!(
        stderr.contains("FERRY_STAGING_KEY_FILE") && stderr.contains("chmod 600"),
        "{stderr}"
    );
    assert!(!stderr.contains(&key.to_hex()), "{stderr}");

    // A damaged key in the state dir is not replaced by a new one (files staged with the
    // old one could not be read).
    let state = drive.state("state-damaged");
    std::fs::create_dir_all(&state).unwrap();
    write_private(&state.join("staging.key"), secret, 0o600);
    let stderr = drive.sync_refused(drive.sync(&state, &[])).await;
    assert!(
        stderr.contains("staging.key does not hold a 32-byte hex key"),
        "{stderr}"
    );
    assert!(!stderr.contains(secret), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(state.join("staging.key")).unwrap(),
        secret
    );
    assert_eq!(drive.runs().await, 0, "no run started");

    // A good key file (with a newline, as editors write it) is the key staging uses.
    let state = drive.state("state-key-file");
    let good = drive.dir.path().join("good.key");
    write_private(&good, &format!("{}\n", key.to_hex()), 0o600);
    let mut cmd = drive.sync(&state, &[]);
    cmd.env("FERRY_STAGING_KEY_FILE", &good);
    let staged = drive.sync_holding_staged_file(&state, cmd).await;
    assert_sealed(&staged);
    assert_eq!(decrypt(&staged.copy, &key).unwrap(), drive.csv);
    assert!(decrypt(&staged.copy, &StagingKey::generate()).is_err());
    assert!(
        !state.join("staging.key").exists(),
        "a configured key means no generated one"
    );
    assert_eq!(drive.runs().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_staging_loads_without_a_key() {
    let drive = Drive::start().await;
    let state = drive.state("state");
    let staged = drive
        .sync_holding_staged_file(&state, drive.sync(&state, &["--plain-staging"]))
        .await;
    assert_eq!(
        String::from_utf8(staged.bytes.clone()).unwrap(),
        drive.csv,
        "the staging file is the plain download"
    );
    assert_eq!(staged.dir_mode, 0o700, "{staged:?}");
    assert!(!state.join("staging.key").exists(), "no key is generated");
    assert_eq!(staged.report["rows_loaded"], 50);
}
