//! `ferry sync` as a process: killed at random points, it never loses or duplicates rows.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use ferry_testkit::pg::TestDb;

const BIN: &str = env!("CARGO_BIN_EXE_ferry");

/// A small deterministic generator, so a failing run can be replayed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

fn write_datasets(root: &Path) {
    for (i, rows) in [(1, 20_000), (2, 15_000), (3, 25_000)] {
        let dir = root.join(format!("datasets/prices/v{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut csv = String::from("id,symbol,price,at\n");
        for r in 0..rows {
            csv.push_str(&format!(
                "{r},S{},{}.{:02},2024-06-01 09:{:02}:{:02}\n",
                r % 37,
                r % 1000,
                r % 100,
                (r / 60) % 60,
                r % 60
            ));
        }
        std::fs::write(dir.join("part-1.csv"), &csv).unwrap();
        std::fs::write(dir.join("part-2.csv"), &csv).unwrap();
    }
    let dir = root.join("datasets/events/v1");
    std::fs::create_dir_all(&dir).unwrap();
    let mut jsonl = String::new();
    for r in 0..10_000 {
        jsonl.push_str(&format!("{{\"id\": {r}, \"kind\": \"k{}\"}}\n", r % 5));
    }
    std::fs::write(dir.join("events.jsonl"), jsonl).unwrap();
}

fn sync_command(db: &TestDb, database: &str, root: &Path) -> tokio::process::Command {
    let url = db
        .url_with_password()
        .replace("/ferry?", &format!("/{database}?"));
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(["sync", "--json", "--root"])
        .arg(root)
        .env("DATABASE_URL", url)
        .env("FERRY_STATE_DIR", root.join(".state"))
        .env("FERRY_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs the sync to its end, retrying while a killed run's session still holds the lock.
async fn sync_to_end(db: &TestDb, database: &str, root: &Path) -> serde_json::Value {
    for _ in 0..50 {
        let out = sync_command(db, database, root).output().await.unwrap();
        if out.status.success() {
            return serde_json::from_slice(&out.stdout).unwrap();
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("another sync"), "{stderr}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the lock was never released");
}

/// Every loaded table's rows (and the ingest record), as one digest per table.
async fn fingerprint(client: &tokio_postgres::Client) -> Vec<(String, i64, String)> {
    let tables: Vec<String> = client
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname LIKE 'ai_raw_%' AND c.relkind = 'r' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = Vec::new();
    for t in tables {
        let row = client
            .query_one(
                // Ingest ids differ between runs: each row is named by its file version.
                &format!(
                    "SELECT count(*), md5(coalesce(string_agg(r, E'\\n' ORDER BY r), ''))
                     FROM (SELECT coalesce(i.item_id || ' ' || i.etag, 'no ingest record')
                                  || ' ' || (to_jsonb(x) - '_ferry_ingest')::text AS r
                           FROM {t} x
                           LEFT JOIN ferry.onedrive_ingest i ON i.id = x._ferry_ingest) s"
                ),
                &[],
            )
            .await
            .unwrap();
        out.push((t, row.get(0), row.get(1)));
    }
    let ingest = client
        .query_one(
            "SELECT count(*), md5(string_agg(format('%s %s %s %s', item_id, etag, rows_loaded, target_table), E'\\n' ORDER BY item_id))
             FROM ferry.onedrive_ingest WHERE status = 'loaded'",
            &[],
        )
        .await
        .unwrap();
    out.push(("ingest".into(), ingest.get(0), ingest.get(1)));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_killed_at_random_points_ends_like_one_clean_run() {
    let db = ferry_testkit::pg::start().await;
    let admin = db.client().await;
    let root = tempfile::tempdir().unwrap();
    write_datasets(root.path());

    admin.batch_execute("CREATE DATABASE clean").await.unwrap();
    let started = Instant::now();
    let clean = sync_to_end(&db, "clean", root.path()).await;
    let full_run = started.elapsed();
    assert_eq!(clean["files_loaded"], 7, "{clean}");
    let expected = {
        let mut config = db.cluster.config(db.port).unwrap();
        config.dbname("clean");
        fingerprint(&ferry_pg::connect_config(&config).await.unwrap()).await
    };
    assert_eq!(
        expected.len(),
        5,
        "4 tables and the ingest record: {expected:?}"
    );

    let mut rng = Lcg(20261126);
    let mut kills = 0;
    for run in 0..50 {
        let database = format!("crash_{run}");
        admin
            .batch_execute(&format!("CREATE DATABASE {database}"))
            .await
            .unwrap();
        // One to three runs killed at a random moment of a full run, then one to the end.
        for _ in 0..1 + rng.below(3) {
            let mut child = sync_command(&db, &database, root.path()).spawn().unwrap();
            let delay = Duration::from_micros(rng.below(full_run.as_micros() as u64));
            tokio::time::sleep(delay).await;
            if child.try_wait().unwrap().is_none() {
                child.start_kill().unwrap();
                kills += 1;
            }
            child.wait().await.unwrap();
        }
        let last = sync_to_end(&db, &database, root.path()).await;
        assert_ne!(last["status"], "failed", "{last}");
        let mut config = db.cluster.config(db.port).unwrap();
        config.dbname(&database);
        let client = ferry_pg::connect_config(&config).await.unwrap();
        assert_eq!(fingerprint(&client).await, expected, "run {run}");
        // Runs cut short are closed as failed ("interrupted"), never left running.
        let running: i64 = client
            .query_one(
                "SELECT count(*) FROM ferry.etl_runs WHERE status = 'running'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(running, 0, "run {run}");
    }
    assert!(kills >= 40, "most runs were killed mid-way ({kills})");
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nhost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    out
}

/// Waits until `sql` (one boolean) is true.
async fn wait_for(client: &tokio_postgres::Client, sql: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let done: bool = client.query_one(sql, &[]).await.unwrap().get(0);
        if done {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {sql}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_share_the_queue_that_pg_cron_fills() {
    assert!(
        Path::new("/usr/lib/postgresql/15/lib/pg_cron.so").exists(),
        "pg_cron is missing: apt-get install postgresql-15-cron (scripts/install-tools does)"
    );
    let setting = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    let db = ferry_testkit::pg::start_with(vec![
        setting("shared_preload_libraries", "pg_cron"),
        setting("cron.database_name", "ferry"),
        // Jobs run in background workers, not over a password-protected connection.
        setting("cron.use_background_workers", "on"),
        setting("max_worker_processes", "20"),
    ])
    .await;
    let mut client = db.client().await;
    ferry_pg::migrate(&mut client).await.unwrap();
    let root = tempfile::tempdir().unwrap();
    write_datasets(root.path());

    // Two workers on the same source share the requests; each request runs once. The
    // first serves metrics.
    let metrics_addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let workers: Vec<tokio::process::Child> = (0..2)
        .map(|i| {
            let mut cmd = sync_command(&db, "ferry", root.path());
            cmd.args(["--worker", "--poll", "200ms"]);
            if i == 0 {
                cmd.arg("--metrics-addr").arg(metrics_addr.to_string());
            }
            cmd.spawn().unwrap()
        })
        .collect();
    client
        .batch_execute("SELECT ferry.request_sync() FROM generate_series(1, 6)")
        .await
        .unwrap();
    wait_for(
        &client,
        "SELECT count(*) = 6 FROM ferry.sync_requests WHERE status = 'done'",
        Duration::from_secs(120),
    )
    .await;
    let runs: i64 = client
        .query_one(
            "SELECT count(DISTINCT run_id) FROM ferry.sync_requests WHERE run_id IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(runs, 6, "one run per request");
    let queued: i64 = client
        .query_one(
            "SELECT count(*) FROM ferry.etl_runs WHERE trigger = 'queue' AND status = 'succeeded'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(queued, 6);
    let loaded: i64 = client
        .query_one(
            "SELECT count(*) FROM ferry.onedrive_ingest WHERE status = 'loaded'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(loaded, 7, "every file loaded once");
    // From here on only the first worker (the one serving metrics) runs.
    let mut workers = workers;
    workers.truncate(1);
    // pg_cron asks for a sync every minute; a worker runs it.
    client
        .batch_execute(
            "CREATE EXTENSION pg_cron;
             SELECT cron.schedule('ferry-sync', '* * * * *', 'SELECT ferry.request_sync()');",
        )
        .await
        .unwrap();
    wait_for(
        &client,
        "SELECT EXISTS (SELECT 1 FROM ferry.sync_requests WHERE id > 6 AND status = 'done')",
        Duration::from_secs(150),
    )
    .await;
    let metrics = http_get(metrics_addr, "/metrics").await;
    assert!(
        metrics.contains("# TYPE ferry_sync_runs_total counter")
            && metrics.contains("status=\"succeeded\"")
            && metrics.contains("ferry_sync_last_success_timestamp_seconds{"),
        "{metrics}"
    );
    drop(workers);
}

/// A one-request HTTP server: returns its URL and the body it will receive.
async fn webhook() -> (String, tokio::sync::oneshot::Receiver<String>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/hooks/secret-token",
        listener.local_addr().unwrap()
    );
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = socket.read(&mut buf).await.unwrap();
            data.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&data).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    socket
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await
                        .unwrap();
                    let _ = tx.send(body.to_owned());
                    return;
                }
            }
            if n == 0 {
                return;
            }
        }
    });
    (url, rx)
}

#[tokio::test]
async fn a_failed_file_is_posted_to_the_alert_webhook() {
    use std::os::unix::fs::PermissionsExt as _;
    let db = ferry_testkit::pg::start().await;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("datasets/d/v1");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bad.csv"), "a,b\n1,2\nx\ny\n").unwrap();
    let (url, body) = webhook().await;
    let secret = root.path().join("webhook-url");
    std::fs::write(&secret, &url).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = sync_command(&db, "ferry", root.path())
        .env("FERRY_ALERT_WEBHOOK_FILE", &secret)
        .env("FERRY_LOG", "info")
        .output()
        .await
        .unwrap();
    // Every file failed: the run failed, and says so in its exit status.
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body = tokio::time::timeout(Duration::from_secs(10), body)
        .await
        .unwrap()
        .unwrap();
    let alert: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(alert["kind"], "run_failed");
    assert!(alert["message"].as_str().unwrap().contains("bad.csv"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("secret-token"),
        "the webhook URL is a secret: {stderr}"
    );
}
