//! The sync engine from a OneDrive folder (ferry's Graph emulator) into a real Postgres.

#![allow(clippy::unwrap_used)]

mod common;

use common::quoted;
use ferry_etl::{OneDriveSource, Options, Report, Source, sync};
use ferry_graph::{Conflict, GraphClient};
use ferry_testkit::graph::{app_client, app_config, start_emulator};

const ROOT: &str = "DynamicCapital/ai-training";

struct Env {
    _db: ferry_testkit::pg::TestDb,
    client: tokio_postgres::Client,
    emu: ferry_graph_emulator::Emulator,
    graph: GraphClient,
    source: Source,
    dir: tempfile::TempDir,
}

async fn start() -> Env {
    let db = ferry_testkit::pg::start().await;
    let mut client = db.client().await;
    ferry_pg::migrate(&mut client).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let emu = start_emulator(&dir.path().join("emulator"), |_| {}).await;
    let config = app_config(&emu);
    let graph = app_client(&emu);
    let source = Source::OneDrive(OneDriveSource::new(
        graph.clone(),
        &config.drive.path(),
        &format!("/{ROOT}"),
        dir.path().join("staging"),
        Some(ferry_etl::staging::StagingKey::generate()),
    ));
    Env {
        _db: db,
        client,
        emu,
        graph,
        source,
        dir,
    }
}

impl Env {
    async fn put(&self, path: &str, body: &str) {
        let local = self.dir.path().join("upload.tmp");
        std::fs::write(&local, body).unwrap();
        self.graph
            .upload_file(&local, &format!("{ROOT}/{path}"), Conflict::Replace)
            .await
            .unwrap();
    }

    async fn sync(&mut self) -> Report {
        self.sync_with(Options::default()).await
    }

    async fn sync_with(&mut self, options: Options) -> Report {
        sync(&mut self.client, &self.source, &options)
            .await
            .unwrap()
    }

    /// The source's own staging folder (one per source, under the configured one).
    fn staging(&self) -> std::path::PathBuf {
        match &self.source {
            Source::OneDrive(s) => s.staging().to_owned(),
            Source::Local(_) => unreachable!("a OneDrive source"),
        }
    }

    async fn values(&self, table: &str) -> Vec<String> {
        self.client
            .query(
                &format!("SELECT x::text FROM {} ORDER BY 1", quoted(table)),
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }
}

fn status<'a>(report: &'a Report, path: &str) -> &'a str {
    report
        .files
        .iter()
        .find(|f| f.path == path)
        .map(|f| f.status)
        .unwrap_or("absent")
}

#[tokio::test]
async fn onedrive_files_load_once_and_follow_edits_renames_deletes_and_resyncs() {
    let mut env = start().await;
    env.put("datasets/m/v1/a.csv", "x\n1\n2\n").await;
    env.put("datasets/m/v1/b.csv", "x\n3\n").await;
    env.put("reports/q1.csv", "x\n9\n").await;
    let first = env.sync().await;
    assert_eq!((first.files_seen, first.files_loaded), (2, 2), "{first:#?}");
    let table = first.files[0].target_table.clone().unwrap();
    assert_eq!(table, "ai_raw_csv.m__v1");
    assert_eq!(env.values(&table).await, ["1", "2", "3"]);
    let ingest: (String, String) = env
        .client
        .query_one(
            "SELECT quick_xor_hash, sha256 FROM ferry.onedrive_ingest WHERE path = 'datasets/m/v1/a.csv'",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(
        ingest.0,
        ferry_graph::quick_xor_hash(b"x\n1\n2\n"),
        "OneDrive's hash is recorded"
    );
    assert_eq!(ingest.1.len(), 64);
    assert!(!env.staging().exists(), "staging cleared after the run");

    // Nothing changed: an incremental delta, nothing loaded.
    let again = env.sync().await;
    assert_eq!((again.files_seen, again.files_loaded), (2, 0), "{again:#?}");

    // Edit a, rename b, add c, and (below) delete a.
    env.put("datasets/m/v1/a.csv", "x\n10\n").await;
    let b = env
        .graph
        .item_by_path(&format!("{ROOT}/datasets/m/v1/b.csv"))
        .await
        .unwrap();
    env.graph
        .move_item(&b.id, None, Some("b-renamed.csv"))
        .await
        .unwrap();
    env.put("datasets/m/v1/c.csv", "x\n4\n").await;
    let third = env.sync().await;
    assert_eq!(third.files_loaded, 2, "{third:#?}");
    assert_eq!(status(&third, "datasets/m/v1/b-renamed.csv"), "renamed");
    assert_eq!(env.values(&table).await, ["10", "3", "4"]);

    let a = env
        .graph
        .item_by_path(&format!("{ROOT}/datasets/m/v1/a.csv"))
        .await
        .unwrap();
    env.graph.delete(&a.id).await.unwrap();
    // The next delta request answers 410: the source enumerates again and reconciles.
    env.emu
        .faults()
        .update(|f| f.delta_resync = Some("resyncChangesApplyDifferences".into()));
    // And Graph throttles a few requests on the way.
    env.emu.faults().update(|f| {
        f.throttle_next = 2;
        f.retry_after_secs = 1;
    });
    let fourth = env.sync().await;
    let faults = env.emu.faults().get();
    assert_eq!(
        (faults.delta_resync, faults.throttle_next),
        (None, 0),
        "both faults happened"
    );
    assert_eq!(fourth.throttled, 2, "the run counts what Graph throttled");
    let (kind, message) = ferry_etl::alerts::for_throttling(&fourth, 2).unwrap();
    assert_eq!(kind, "throttled");
    assert!(message.starts_with("2 request(s) throttled"), "{message}");
    assert!(ferry_etl::alerts::for_throttling(&fourth, 3).is_none());
    assert_eq!(fourth.files_loaded, 0, "{fourth:#?}");
    assert_eq!(status(&fourth, "datasets/m/v1/a.csv"), "deleted");
    assert_eq!(
        env.values(&table).await,
        ["10", "3", "4"],
        "rows kept; nothing loaded twice"
    );
    let runs: i64 = env
        .client
        .query_one(
            "SELECT count(*) FROM ferry.etl_runs WHERE status = 'succeeded'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(runs, 4);
    let manifest = env
        .graph
        .item_by_path(&format!("{ROOT}/etl-staging/manifests/run-4.json"))
        .await
        .unwrap();
    assert!(manifest.size.unwrap() > 100, "the manifest is in the drive");
}

#[tokio::test]
async fn staging_files_are_encrypted_and_parquet_reads_through_them() {
    use std::sync::Arc;
    let mut env = start().await;
    let csv = "secret_column\nvery private value\n";
    env.put("datasets/s/v1/a.csv", csv).await;
    // A Parquet file: its reader seeks around the (encrypted) staging copy.
    let batch = arrow_array::RecordBatch::try_from_iter([(
        "n",
        Arc::new(arrow_array::Int64Array::from_iter_values(0..50_000)) as arrow_array::ArrayRef,
    )])
    .unwrap();
    let mut bytes = Vec::new();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(&mut bytes, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let local = env.dir.path().join("n.parquet");
    std::fs::write(&local, &bytes).unwrap();
    env.graph
        .upload_file(
            &local,
            &format!("{ROOT}/datasets/p/v1/n.parquet"),
            Conflict::Replace,
        )
        .await
        .unwrap();

    // What lands in staging is ciphertext.
    let (listing, _) = env.source.changes("datasets", None, None).await.unwrap();
    let file = listing
        .files
        .iter()
        .find(|f| f.path.ends_with("a.csv"))
        .unwrap();
    let fetched = env.source.fetch(file).await.unwrap();
    let raw = std::fs::read(&fetched.path).unwrap();
    assert!(
        !String::from_utf8_lossy(&raw).contains("private"),
        "plaintext in staging"
    );
    std::fs::remove_file(&fetched.path).unwrap();

    let report = env.sync().await;
    assert_eq!(
        (report.files_loaded, report.files_failed),
        (2, 0),
        "{report:#?}"
    );
    let sum: i64 = env
        .client
        .query_one("SELECT sum(n)::bigint FROM ai_raw_parquet.p__v1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(sum, (0..50_000i64).sum::<i64>());
    let sha: String = env
        .client
        .query_one(
            "SELECT sha256 FROM ferry.onedrive_ingest WHERE path LIKE '%n.parquet'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    use sha2::Digest as _;
    assert_eq!(
        sha,
        hex::encode(sha2::Sha256::digest(&bytes)),
        "sha256 of the plaintext"
    );
}

#[tokio::test]
async fn downloads_run_ahead_in_parallel_and_contracts_come_from_the_drive() {
    let mut env = start().await;
    env.put(
        "datasets/a/README.md",
        "# a\n\n```toml contract\n[columns]\nid = \"text\"\n```\n",
    )
    .await;
    for dataset in ["a", "b"] {
        for i in 0..8 {
            env.put(
                &format!("datasets/{dataset}/v1/f{i}.csv"),
                &format!("id\n{i}\n"),
            )
            .await;
        }
    }
    env.emu.faults().update(|f| f.latency_ms = 150);
    let timed = |dataset: &str, downloads: usize| Options {
        dataset: Some(dataset.to_owned()),
        downloads,
        ..Options::default()
    };
    let started = std::time::Instant::now();
    let one_at_a_time = env.sync_with(timed("a", 1)).await;
    let sequential = started.elapsed();
    let started = std::time::Instant::now();
    let eight_at_a_time = env.sync_with(timed("b", 8)).await;
    let parallel = started.elapsed();
    env.emu.faults().update(|f| f.latency_ms = 0);
    for report in [&one_at_a_time, &eight_at_a_time] {
        assert_eq!(
            (report.files_loaded, report.files_failed),
            (8, 0),
            "{report:#?}"
        );
    }
    // Each file's rows were loaded as that file, whatever order downloads finished in.
    for table in ["ai_raw_csv.a__v1", "ai_raw_csv.b__v1"] {
        let rows = env
            .client
            .query(
                &format!(
                    "SELECT i.path, t.id::text FROM {} t
                     JOIN ferry.onedrive_ingest i ON i.id = t._ferry_ingest",
                    quoted(table)
                ),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 8);
        for row in rows {
            let (path, id): (String, String) = (row.get(0), row.get(1));
            assert!(path.ends_with(&format!("/f{id}.csv")), "{path} holds {id}");
        }
    }
    // Each download costs at least two requests of 150 ms; eight at once overlap them.
    assert!(
        parallel.as_secs_f64() < sequential.as_secs_f64() * 0.8,
        "parallel {parallel:?} vs one at a time {sequential:?}"
    );
    // The contract in the drive typed dataset a's column; b's was inferred.
    assert_eq!(one_at_a_time.files[0].schema[0].pg_type, "text");
    assert_eq!(eight_at_a_time.files[0].schema[0].pg_type, "bigint");

    // What a crashed run left in staging is cleared by the next run.
    std::fs::create_dir_all(env.staging()).unwrap();
    let leftover = env.staging().join("0123.download");
    std::fs::write(&leftover, b"half a file").unwrap();
    let report = env.sync().await;
    assert_eq!(report.files_loaded, 0);
    assert!(!leftover.exists());
}
