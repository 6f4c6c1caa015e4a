//! One sync run: lock the source, list what changed, load each new file version in its own
//! transaction, record renames and deletions, then advance the cursor and close the run.
//!
//! Exactly once: a file version's rows and its `onedrive_ingest` row commit together, and
//! (source, item, version, table) is unique there, so a crash at any point leaves each
//! version either fully loaded and recorded, or not at all; the next run loads what is
//! missing and nothing twice. The cursor is advanced last, with the run's record.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use crate::contract::{self, Contract};
use crate::csv::Reject;
use crate::dataset::{self, Format, Kind, Placement};
use crate::error::{Error, Result};
use crate::load::{ColumnInfo, Limits, Loaded, Table, Target};
use crate::source::{Fetched, Source, SourceFile};

/// Where each run's manifest is published under the source's root.
pub const MANIFESTS: &str = "etl-staging/manifests";

/// What started the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Manual,
    Schedule,
    Queue,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
            Trigger::Schedule => "schedule",
            Trigger::Queue => "queue",
        }
    }
}

/// Called as a run goes: `(files handled, files to look at, the file now)`.
pub type ProgressFn = std::sync::Arc<dyn Fn(usize, usize, &str) + Send + Sync>;

#[derive(Clone)]
pub struct Options {
    /// Only this dataset (all when None).
    pub dataset: Option<String>,
    pub trigger: Trigger,
    pub limits: Limits,
    /// Where the run's manifest is written (besides Postgres), if anywhere.
    pub manifest_dir: Option<PathBuf>,
    pub progress: Option<ProgressFn>,
    /// Files downloaded at once, ahead of the loader (OneDrive).
    pub downloads: usize,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("dataset", &self.dataset)
            .field("trigger", &self.trigger)
            .field("limits", &self.limits)
            .field("manifest_dir", &self.manifest_dir)
            .field("downloads", &self.downloads)
            .finish_non_exhaustive()
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            dataset: None,
            trigger: Trigger::Manual,
            limits: Limits::default(),
            manifest_dir: None,
            progress: None,
            downloads: 4,
        }
    }
}

/// What happened to one file in a run. Serialized as one entry of the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub item_id: String,
    pub path: String,
    pub dataset: Option<String>,
    pub version: Option<String>,
    pub etag: String,
    pub size: u64,
    pub quick_xor_hash: Option<String>,
    pub sha256: Option<String>,
    pub format: Option<Format>,
    pub schema: Vec<ColumnInfo>,
    pub rows_loaded: u64,
    pub rows_rejected: u64,
    pub target_table: Option<String>,
    /// `loaded`, `failed`, `skipped`, `renamed` or `deleted`.
    pub status: &'static str,
    pub error: Option<String>,
    /// How this version's columns differ from the dataset's previous version, if they do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<Drift>,
}

/// Schema drift between two versions of a dataset.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Drift {
    /// The table of the version compared with.
    pub previous_table: String,
    pub added: Vec<ColumnInfo>,
    pub removed: Vec<ColumnInfo>,
    /// (column, type before, type now)
    pub retyped: Vec<(String, String, String)>,
}

/// The run as recorded in `ferry.etl_runs`, and the manifest's body.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub manifest_version: u32,
    pub run_id: i64,
    pub source: String,
    pub trigger: Trigger,
    pub status: &'static str,
    pub cursor_before: Option<String>,
    pub cursor_after: String,
    /// What the source saves with the cursor (OneDrive: its tree of the drive).
    #[serde(skip)]
    pub state_after: Option<serde_json::Value>,
    pub files_seen: u32,
    pub files_loaded: u32,
    pub files_skipped: u32,
    pub files_failed: u32,
    pub rows_loaded: u64,
    pub rows_rejected: u64,
    pub bytes: u64,
    pub duration_ms: u64,
    /// Files whose columns differ from their dataset's previous version.
    pub schema_drift: u32,
    /// Requests the source's service (Graph) throttled during the run.
    pub throttled: u64,
    pub files: Vec<FileReport>,
}

/// What the database holds of an item: its latest record, and every (version, table) it
/// was loaded into or failed in.
#[derive(Debug)]
struct Known {
    path: String,
    etag: String,
    status: String,
    target_table: Option<String>,
    versions: HashSet<(String, String)>,
}

/// Runs one sync of a source.
pub async fn sync(
    client: &mut tokio_postgres::Client,
    source: &Source,
    options: &Options,
) -> Result<Report> {
    let name = source.name();
    let lock = lock_key(&name);
    let locked: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&lock])
        .await?
        .get(0);
    if !locked {
        return Err(Error::Busy { name });
    }
    let result = run(client, source, &name, options).await;
    // Whatever a run cut short left there (its loads remove their own files).
    let _ = source.clear_staging();
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&lock])
        .await;
    result
}

async fn run(
    client: &mut tokio_postgres::Client,
    source: &Source,
    name: &str,
    options: &Options,
) -> Result<Report> {
    let started = Instant::now();
    source.clear_staging()?;
    // Runs still marked running were cut short (we hold the source's lock now).
    client
        .execute(
            "UPDATE ferry.etl_runs SET status = 'failed', finished_at = now(),
                 error = 'interrupted: the process stopped before the run finished'
             WHERE source = $1 AND status = 'running'",
            &[&name],
        )
        .await?;
    let run_id: i64 = client
        .query_one(
            "INSERT INTO ferry.etl_runs (source, trigger) VALUES ($1, $2) RETURNING id",
            &[&name, &options.trigger.as_str()],
        )
        .await?
        .get(0);
    let throttled_before = source.throttled();
    let outcome = run_files(client, source, name, options, run_id).await;
    let mut report = match outcome {
        Ok(report) => report,
        Err(e) => {
            let _ = client
                .execute(
                    "UPDATE ferry.etl_runs SET status = 'failed', finished_at = now(),
                         duration_ms = $2, error = $3 WHERE id = $1",
                    &[
                        &run_id,
                        &(started.elapsed().as_millis() as i64),
                        &e.to_string(),
                    ],
                )
                .await;
            return Err(e);
        }
    };
    report.duration_ms = started.elapsed().as_millis() as u64;
    report.throttled = source.throttled() - throttled_before;
    finish(client, &report).await?;
    if let Some(dir) = &options.manifest_dir {
        write_manifest(dir, &report);
    }
    // And beside the data, for the people who work in the drive.
    let body = serde_json::to_vec_pretty(&report).unwrap_or_default();
    let path = format!("{MANIFESTS}/run-{}.json", report.run_id);
    if let Err(e) = source.publish(&path, &body).await {
        tracing::warn!(path, error = %e, "cannot publish the run manifest to the source");
    }
    Ok(report)
}

async fn run_files(
    client: &mut tokio_postgres::Client,
    source: &Source,
    name: &str,
    options: &Options,
    run_id: i64,
) -> Result<Report> {
    let saved = client
        .query_opt(
            "SELECT cursor, state FROM ferry.sync_cursors WHERE source = $1",
            &[&name],
        )
        .await?;
    let cursor_before: Option<String> = saved.as_ref().map(|r| r.get(0));
    let state: Option<serde_json::Value> = saved.as_ref().and_then(|r| r.get(1));
    let (listing, state_after) = source
        .changes(dataset::DATASETS, cursor_before.as_deref(), state)
        .await?;
    forget_emptied_tables(client, name).await?;
    let mut known = known_items(client, name).await?;
    let mut report = Report {
        manifest_version: 1,
        run_id,
        source: name.to_owned(),
        trigger: options.trigger,
        status: "running",
        cursor_before,
        cursor_after: listing.cursor.clone(),
        state_after,
        files_seen: 0,
        files_loaded: 0,
        files_skipped: 0,
        files_failed: 0,
        rows_loaded: 0,
        rows_rejected: 0,
        bytes: 0,
        duration_ms: 0,
        schema_drift: 0,
        throttled: 0,
        files: Vec::new(),
    };
    let wanted = |dataset: &str| options.dataset.as_deref().is_none_or(|d| d == dataset);
    let steps: Vec<Step> = listing
        .files
        .iter()
        .map(|file| step(file, &known, wanted))
        .collect();
    let mut downloads = Prefetch::start(
        source,
        listing
            .files
            .iter()
            .zip(&steps)
            .filter(|(_, step)| matches!(step, Step::Load { .. }))
            .map(|(file, _)| file.clone())
            .collect(),
        options.downloads,
    );
    let mut contracts = HashMap::new();
    let total = listing.files.len();
    for (done, (file, step)) in listing.files.iter().zip(steps).enumerate() {
        if let Some(progress) = &options.progress {
            progress(done, total, &file.path);
        }
        let (placement, table, have) = match step {
            Step::Ignore => continue,
            Step::Unsupported { dataset, version } => {
                report.files_seen += 1;
                report.files_skipped += 1;
                report.files.push(skipped(
                    file,
                    Some(dataset),
                    Some(version),
                    None,
                    "ferry does not read this format",
                ));
                known.remove(&file.item_id);
                continue;
            }
            Step::Have { placement, table } => (placement, table, true),
            Step::Load { placement, table } => (placement, table, false),
        };
        report.files_seen += 1;
        let previous = known.remove(&file.item_id);
        let ingest = Ingest {
            run_id,
            source: name,
            file,
            placement: &placement,
            table: &table,
        };
        if have {
            // This version is in this table already; it may have moved, or come back.
            if previous.is_some_and(|p| p.path != file.path || p.status == "deleted") {
                ingest.record(&*client, None, "renamed", None, None).await?;
                report.files.push(FileReport {
                    status: "renamed",
                    ..entry(file, &placement, &table)
                });
            }
            continue;
        }
        // Taken in listing order, whatever happens to the file below.
        let fetched = downloads.next().await;
        let contract = match contract_of(source, &placement.dataset, &mut contracts).await? {
            Ok(contract) => contract.clone(),
            Err(message) => {
                discard(fetched);
                // Not recorded as a failed version: mending the README retries the file.
                tracing::warn!(path = %file.path, error = %message, "file not loaded");
                report.files_failed += 1;
                report.files.push(FileReport {
                    status: "failed",
                    error: Some(Error::Contract(message.clone()).to_string()),
                    ..entry(file, &placement, &table)
                });
                continue;
            }
        };
        let limits = Limits {
            max_reject_rate: contract
                .max_reject_rate
                .unwrap_or(options.limits.max_reject_rate),
            ..options.limits
        };
        let result = match fetched {
            Ok(fetched) => {
                let loaded = load_one(client, source, &ingest, &fetched, &contract, limits).await;
                if fetched.temporary {
                    let _ = std::fs::remove_file(&fetched.path);
                }
                loaded
            }
            Err(e) => Err(e),
        };
        let mut e = entry(file, &placement, &table);
        match result {
            Ok(loaded) => {
                e.drift = drift(client, name, &placement, &table, &loaded.columns).await?;
                if let Some(d) = &e.drift {
                    tracing::warn!(path = %file.path, previous = %d.previous_table, added = d.added.len(), removed = d.removed.len(), retyped = d.retyped.len(), "schema drift from the previous version");
                    report.schema_drift += 1;
                }
                report.files_loaded += 1;
                report.rows_loaded += loaded.rows;
                report.rows_rejected += loaded.rejected;
                report.bytes += loaded.bytes;
                e.rows_loaded = loaded.rows;
                e.rows_rejected = loaded.rejected;
                e.sha256 = Some(loaded.sha256);
                e.schema = loaded.columns;
                e.status = "loaded";
            }
            // Not recorded as a failed version: mending the README retries the file.
            Err(err @ Error::Contract(_)) => {
                tracing::warn!(path = %file.path, error = %err, "file not loaded");
                report.files_failed += 1;
                e.status = "failed";
                e.error = Some(err.to_string());
            }
            Err(err @ (Error::ChangedDuringLoad | Error::Fetch(_))) => {
                tracing::warn!(path = %file.path, error = %err, "file skipped for now");
                report.files_skipped += 1;
                e.status = "skipped";
                e.error = Some(err.to_string());
            }
            Err(
                err @ (Error::File(_)
                | Error::SchemaMismatch { .. }
                | Error::RejectRate { .. }
                | Error::Io { .. }),
            ) => {
                tracing::warn!(path = %file.path, error = %err, "file failed");
                let loaded = match &err {
                    Error::RejectRate { loaded, .. } => Some(loaded.as_ref().clone()),
                    _ => None,
                };
                record_failure(client, &ingest, &err, loaded.as_ref()).await?;
                report.files_failed += 1;
                e.status = "failed";
                e.error = Some(err.to_string());
                if let Some(loaded) = loaded {
                    e.rows_rejected = loaded.rejected;
                    e.schema = loaded.columns;
                }
            }
            Err(other) => return Err(other),
        }
        report.files.push(e);
    }
    // What the database knows and the listing no longer has is gone from the source.
    if listing.complete {
        for (item_id, prev) in known {
            if prev.status == "deleted" {
                continue;
            }
            let in_scope = match dataset::classify(&prev.path) {
                Kind::Data(p) => wanted(&p.dataset),
                _ => false,
            };
            if !in_scope {
                continue;
            }
            client
                .execute(
                    "INSERT INTO ferry.onedrive_ingest
                         (run_id, source, item_id, path, etag, target_table, status)
                     VALUES ($1, $2, $3, $4, $5, $6, 'deleted')",
                    &[
                        &run_id,
                        &name,
                        &item_id,
                        &prev.path,
                        &prev.etag,
                        &prev.target_table,
                    ],
                )
                .await?;
            report.files.push(FileReport {
                item_id,
                path: prev.path,
                dataset: None,
                version: None,
                etag: prev.etag,
                size: 0,
                quick_xor_hash: None,
                sha256: None,
                format: None,
                schema: Vec::new(),
                rows_loaded: 0,
                rows_rejected: 0,
                target_table: prev.target_table,
                status: "deleted",
                error: None,
                drift: None,
            });
        }
    }
    report.status = if report.files_failed == 0 {
        "succeeded"
    } else if report.files_loaded > 0 {
        "partial"
    } else {
        "failed"
    };
    Ok(report)
}

/// What a run does with a listed file, decided before any is loaded (so that downloads can
/// run ahead).
enum Step {
    /// Not a data file, or not of a dataset this run syncs.
    Ignore,
    /// In a version folder, but of a format ferry does not read.
    Unsupported {
        dataset: String,
        version: String,
    },
    /// This version is in its table already.
    Have {
        placement: Placement,
        table: Table,
    },
    Load {
        placement: Placement,
        table: Table,
    },
}

fn step(file: &SourceFile, known: &HashMap<String, Known>, wanted: impl Fn(&str) -> bool) -> Step {
    let placement = match dataset::classify(&file.path) {
        Kind::Data(p) if wanted(&p.dataset) => p,
        Kind::Unsupported { dataset, version } if wanted(&dataset) => {
            return Step::Unsupported { dataset, version };
        }
        _ => return Step::Ignore,
    };
    let table = Table {
        schema: placement.format.schema().to_owned(),
        name: dataset::table_name(&placement.dataset, &placement.version),
    };
    let have = known.get(&file.item_id).is_some_and(|prev| {
        prev.versions
            .contains(&(file.etag.clone(), table.to_string()))
    });
    if have {
        Step::Have { placement, table }
    } else {
        Step::Load { placement, table }
    }
}

/// Downloads the files to load ahead of the loader, `parallel` at a time, handing them
/// over in order. At most `parallel + 1` staged files wait besides the one being loaded.
struct Prefetch {
    files: tokio::sync::mpsc::Receiver<Result<Fetched>>,
    task: tokio::task::JoinHandle<()>,
}

impl Prefetch {
    fn start(source: &Source, files: Vec<SourceFile>, parallel: usize) -> Self {
        use futures::StreamExt as _;
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let source = source.clone();
        let task = tokio::spawn(async move {
            // Each download is a task of its own, so it goes on while the hand-over waits
            // for the loader.
            let mut fetched = futures::stream::iter(files)
                .map(|file| {
                    let source = source.clone();
                    AbortOnDrop(tokio::spawn(async move { source.fetch(&file).await }))
                })
                .buffered(parallel.max(1));
            while let Some(result) = fetched.next().await {
                if let Err(tokio::sync::mpsc::error::SendError(unsent)) = tx.send(result).await {
                    discard(unsent);
                    break;
                }
            }
        });
        Prefetch { files: rx, task }
    }

    /// The next file, in the order given.
    async fn next(&mut self) -> Result<Fetched> {
        self.files
            .recv()
            .await
            .unwrap_or_else(|| Err(Error::Fetch("the download task stopped".into())))
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        // Downloads cut short leave partial staging files: the next run clears them.
        self.task.abort();
        while let Ok(unused) = self.files.try_recv() {
            discard(unused);
        }
    }
}

/// A spawned task that stops when its handle is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> std::future::Future for AbortOnDrop<Result<T>> {
    type Output = Result<T>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0)
            .poll(cx)
            .map(|joined| joined.unwrap_or_else(|e| Err(Error::Fetch(e.to_string()))))
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Removes a staging copy nobody will load.
fn discard(fetched: Result<Fetched>) {
    if let Ok(f) = fetched
        && f.temporary
    {
        let _ = std::fs::remove_file(&f.path);
    }
}

/// Compares a loaded version's columns with those of the dataset's previous version (the
/// other table of the same dataset loaded most recently).
async fn drift(
    client: &tokio_postgres::Client,
    source_name: &str,
    placement: &Placement,
    table: &Table,
    columns: &[ColumnInfo],
) -> Result<Option<Drift>> {
    let previous: Option<String> = client
        .query_opt(
            "SELECT target_table FROM ferry.onedrive_ingest
             WHERE source = $1 AND dataset = $2 AND status = 'loaded' AND target_table <> $3
             ORDER BY id DESC LIMIT 1",
            &[&source_name, &placement.dataset, &table.to_string()],
        )
        .await?
        .map(|r| r.get(0));
    let Some(previous) = previous else {
        return Ok(None);
    };
    let Some((schema, name)) = previous.split_once('.') else {
        return Ok(None);
    };
    let before = crate::load::table_columns(
        client,
        &Table {
            schema: schema.to_owned(),
            name: name.to_owned(),
        },
    )
    .await?;
    if before.is_empty() || before == columns {
        return Ok(None);
    }
    let find = |cols: &[ColumnInfo], n: &str| cols.iter().find(|c| c.name == n).cloned();
    let added = columns
        .iter()
        .filter(|c| find(&before, &c.name).is_none())
        .cloned()
        .collect();
    let removed = before
        .iter()
        .filter(|c| find(columns, &c.name).is_none())
        .cloned()
        .collect();
    let retyped = columns
        .iter()
        .filter_map(|c| {
            let old = find(&before, &c.name)?;
            (old.pg_type != c.pg_type).then(|| (c.name.clone(), old.pg_type, c.pg_type.clone()))
        })
        .collect();
    Ok(Some(Drift {
        previous_table: previous,
        added,
        removed,
        retyped,
    }))
}

/// A dataset's contract (none is an empty one), read once per run; `Err` says what is
/// wrong with it.
async fn contract_of<'c>(
    source: &Source,
    dataset: &str,
    cache: &'c mut HashMap<String, std::result::Result<Contract, String>>,
) -> Result<&'c std::result::Result<Contract, String>> {
    if !cache.contains_key(dataset) {
        let path = format!("{}/{dataset}/{}", dataset::DATASETS, contract::README);
        // A README that cannot be read holds back its dataset's files, not the run.
        let contract = match source.read_text(&path).await {
            Ok(None) => Ok(Contract::default()),
            Ok(Some(text)) => Contract::from_readme(&text)
                .map(Option::unwrap_or_default)
                .map_err(|e| format!("the dataset contract in {path}: {e}")),
            Err(e) => Err(format!("reading the dataset contract {path}: {e}")),
        };
        cache.insert(dataset.to_owned(), contract);
    }
    Ok(&cache[dataset])
}

/// Loads a file version and records it, in one transaction.
async fn load_one(
    client: &mut tokio_postgres::Client,
    source: &Source,
    ingest: &Ingest<'_>,
    fetched: &crate::source::Fetched,
    contract: &Contract,
    limits: Limits,
) -> Result<Loaded> {
    let tx = client.transaction().await?;
    let ids = tx
        .query_one(
            "SELECT nextval(pg_get_serial_sequence('ferry.onedrive_ingest', 'id')),
                    coalesce((SELECT array_agg(id) FROM ferry.onedrive_ingest
                              WHERE source = $1 AND item_id = $2 AND target_table = $3
                                AND status = 'loaded'), '{}')",
            &[
                &ingest.source,
                &ingest.file.item_id,
                &ingest.table.to_string(),
            ],
        )
        .await?;
    let target = Target {
        table: ingest.table.clone(),
        ingest_id: ids.get(0),
        replaces: ids.get(1),
    };
    let loaded =
        crate::load::load(&tx, &target, fetched, ingest.placement, contract, limits).await?;
    if !source.unchanged(ingest.file) {
        return Err(Error::ChangedDuringLoad);
    }
    tx.execute(
        "UPDATE ferry.onedrive_ingest SET status = 'replaced' WHERE id = ANY($1)",
        &[&target.replaces],
    )
    .await?;
    ingest
        .record(&tx, Some(target.ingest_id), "loaded", Some(&loaded), None)
        .await?;
    store_rejects(&tx, ingest, &loaded.rejects).await?;
    tx.commit().await?;
    Ok(loaded)
}

/// Records a file version that failed, with its first rejects.
async fn record_failure(
    client: &mut tokio_postgres::Client,
    ingest: &Ingest<'_>,
    error: &Error,
    loaded: Option<&Loaded>,
) -> Result<()> {
    let tx = client.transaction().await?;
    ingest
        .record(&tx, None, "failed", loaded, Some(&error.to_string()))
        .await?;
    if let Some(loaded) = loaded {
        let first = &loaded.rejects[..loaded.rejects.len().min(100)];
        store_rejects(&tx, ingest, first).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// One `ferry.onedrive_ingest` record of a file version.
struct Ingest<'a> {
    run_id: i64,
    source: &'a str,
    file: &'a SourceFile,
    placement: &'a Placement,
    table: &'a Table,
}

impl Ingest<'_> {
    /// Records what happened, under `id` when the rows carry it already. A second `failed`
    /// record of a version is dropped (the first stands); any other conflict is an error,
    /// never silently ignored.
    async fn record(
        &self,
        client: &impl tokio_postgres::GenericClient,
        id: Option<i64>,
        status: &str,
        loaded: Option<&Loaded>,
        error: Option<&str>,
    ) -> Result<()> {
        let schema = loaded.map(|l| serde_json::to_value(&l.columns).unwrap_or_default());
        // Rows count as loaded only when they were (a failed file's rows are rolled back).
        let rows = if status == "loaded" {
            loaded.map_or(0, |l| l.rows)
        } else {
            0
        };
        let on_conflict = if status == "failed" {
            "ON CONFLICT DO NOTHING"
        } else {
            ""
        };
        client
            .execute(
                &format!(
                    "INSERT INTO ferry.onedrive_ingest
                         (id, run_id, source, item_id, path, dataset, version, etag, size,
                          quick_xor_hash, sha256, format, detected_schema, rows_loaded,
                          rows_rejected, target_table, status, error)
                     OVERRIDING SYSTEM VALUE
                     VALUES (coalesce($18, nextval(pg_get_serial_sequence(
                                 'ferry.onedrive_ingest', 'id'))),
                             $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                             $15, $16, $17)
                     {on_conflict}"
                ),
                &[
                    &self.run_id,
                    &self.source,
                    &self.file.item_id,
                    &self.file.path,
                    &self.placement.dataset,
                    &self.placement.version,
                    &self.file.etag,
                    &(self.file.size as i64),
                    &self.file.quick_xor_hash,
                    &loaded.map(|l| l.sha256.as_str()).filter(|s| !s.is_empty()),
                    &format_name(self.placement.format),
                    &schema,
                    &(rows as i64),
                    &(loaded.map_or(0, |l| l.rejected) as i64),
                    &self.table.to_string(),
                    &status,
                    &error,
                    &id,
                ],
            )
            .await?;
        Ok(())
    }
}

async fn store_rejects(
    tx: &tokio_postgres::Transaction<'_>,
    ingest: &Ingest<'_>,
    rejects: &[Reject],
) -> Result<()> {
    if rejects.is_empty() {
        return Ok(());
    }
    let lines: Vec<i64> = rejects.iter().map(|r| r.line as i64).collect();
    // Postgres text cannot hold NUL.
    let raw: Vec<String> = rejects
        .iter()
        .map(|r| r.raw.replace('\0', "\u{FFFD}"))
        .collect();
    let reasons: Vec<String> = rejects
        .iter()
        .map(|r| r.reason.replace('\0', "\u{FFFD}"))
        .collect();
    tx.execute(
        "INSERT INTO ferry.etl_rejects (run_id, source, item_id, path, line, raw, reason)
         SELECT $1, $2, $3, $4, line, raw, reason
         FROM unnest($5::bigint[], $6::text[], $7::text[]) AS r(line, raw, reason)",
        &[
            &ingest.run_id,
            &ingest.source,
            &ingest.file.item_id,
            &ingest.file.path,
            &lines,
            &raw,
            &reasons,
        ],
    )
    .await?;
    Ok(())
}

/// Loaded tables are UNLOGGED: after a crash of its own, Postgres empties them. A table
/// that is empty (or gone) while the record says rows were loaded into it has lost them;
/// its loaded records are removed, so this run loads those files again.
async fn forget_emptied_tables(client: &tokio_postgres::Client, source_name: &str) -> Result<()> {
    let tables: Vec<String> = client
        .query(
            "SELECT target_table FROM ferry.onedrive_ingest
             WHERE source = $1 AND status = 'loaded' AND target_table IS NOT NULL
             GROUP BY target_table HAVING sum(rows_loaded) > 0",
            &[&source_name],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for table in tables {
        let Some((schema, name)) = table.split_once('.') else {
            continue;
        };
        let quoted = format!(
            "{}.{}",
            dataset::quote_ident(schema),
            dataset::quote_ident(name)
        );
        let exists: bool = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&quoted])
            .await?
            .get(0);
        let has_rows = exists
            && client
                .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {quoted})"), &[])
                .await?
                .get::<_, bool>(0);
        if !has_rows {
            tracing::warn!(
                table,
                "the table lost its rows (a Postgres crash empties unlogged tables); loading its files again"
            );
            client
                .execute(
                    "DELETE FROM ferry.onedrive_ingest
                     WHERE source = $1 AND status = 'loaded' AND target_table = $2",
                    &[&source_name, &table],
                )
                .await?;
        }
    }
    Ok(())
}

async fn known_items(
    client: &tokio_postgres::Client,
    source_name: &str,
) -> Result<HashMap<String, Known>> {
    let rows = client
        .query(
            "SELECT DISTINCT ON (item_id) item_id, path, etag, status, target_table
             FROM ferry.onedrive_ingest WHERE source = $1
             ORDER BY item_id, id DESC",
            &[&source_name],
        )
        .await?;
    let mut known: HashMap<String, Known> = rows
        .iter()
        .map(|r| {
            (
                r.get(0),
                Known {
                    path: r.get(1),
                    etag: r.get(2),
                    status: r.get(3),
                    target_table: r.get(4),
                    versions: HashSet::new(),
                },
            )
        })
        .collect();
    let versions = client
        .query(
            "SELECT item_id, etag, target_table FROM ferry.onedrive_ingest
             WHERE source = $1 AND status IN ('loaded', 'failed', 'skipped')
               AND target_table IS NOT NULL",
            &[&source_name],
        )
        .await?;
    for r in &versions {
        if let Some(k) = known.get_mut(r.get::<_, &str>(0)) {
            k.versions.insert((r.get(1), r.get(2)));
        }
    }
    Ok(known)
}

async fn finish(client: &mut tokio_postgres::Client, report: &Report) -> Result<()> {
    let manifest = serde_json::to_value(report).unwrap_or_default();
    let tx = client.transaction().await?;
    tx.execute(
        "INSERT INTO ferry.sync_cursors (source, cursor, state) VALUES ($1, $2, $3)
         ON CONFLICT (source) DO UPDATE
             SET cursor = EXCLUDED.cursor, state = EXCLUDED.state, updated_at = now()",
        &[&report.source, &report.cursor_after, &report.state_after],
    )
    .await?;
    tx.execute(
        "UPDATE ferry.etl_runs SET finished_at = now(), status = $2, files_seen = $3,
             files_loaded = $4, files_skipped = $5, files_failed = $6, rows_loaded = $7,
             rows_rejected = $8, bytes = $9, duration_ms = $10, cursor_before = $11,
             cursor_after = $12, manifest = $13,
             error = CASE WHEN $6 > 0 THEN $6 || ' file(s) failed' END
         WHERE id = $1",
        &[
            &report.run_id,
            &report.status,
            &(report.files_seen as i32),
            &(report.files_loaded as i32),
            &(report.files_skipped as i32),
            &(report.files_failed as i32),
            &(report.rows_loaded as i64),
            &(report.rows_rejected as i64),
            &(report.bytes as i64),
            &(report.duration_ms as i64),
            &report.cursor_before,
            &report.cursor_after,
            &manifest,
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

fn write_manifest(dir: &std::path::Path, report: &Report) {
    let path = dir.join(format!("run-{}.json", report.run_id));
    let written = std::fs::create_dir_all(dir).and_then(|()| {
        let body = serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?;
        std::fs::write(&path, body)
    });
    if let Err(e) = written {
        tracing::warn!(path = %path.display(), error = %e, "cannot write the run manifest");
    }
}

fn entry(file: &SourceFile, placement: &Placement, table: &Table) -> FileReport {
    FileReport {
        item_id: file.item_id.clone(),
        path: file.path.clone(),
        dataset: Some(placement.dataset.clone()),
        version: Some(placement.version.clone()),
        etag: file.etag.clone(),
        size: file.size,
        quick_xor_hash: file.quick_xor_hash.clone(),
        sha256: None,
        format: Some(placement.format),
        schema: Vec::new(),
        rows_loaded: 0,
        rows_rejected: 0,
        target_table: Some(table.to_string()),
        status: "loaded",
        error: None,
        drift: None,
    }
}

fn skipped(
    file: &SourceFile,
    dataset: Option<String>,
    version: Option<String>,
    format: Option<Format>,
    why: &str,
) -> FileReport {
    FileReport {
        item_id: file.item_id.clone(),
        path: file.path.clone(),
        dataset,
        version,
        etag: file.etag.clone(),
        size: file.size,
        quick_xor_hash: file.quick_xor_hash.clone(),
        sha256: None,
        format,
        schema: Vec::new(),
        rows_loaded: 0,
        rows_rejected: 0,
        target_table: None,
        status: "skipped",
        error: Some(why.to_owned()),
        drift: None,
    }
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Csv => "csv",
        Format::Tsv => "tsv",
        Format::Json => "json",
        Format::Jsonl => "jsonl",
        Format::Parquet => "parquet",
    }
}

/// The session advisory lock a run of `source` holds (`pg_locks.objid` shows it): the first
/// 8 bytes of a SHA-256 of the source's name.
pub fn lock_key(source: &str) -> i64 {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(source.as_bytes());
    let mut key = [0u8; 8];
    key.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(key)
}
