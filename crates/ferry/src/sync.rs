//! `ferry sync`: runs of the sync engine from a source into the database — one, one every
//! interval (`--every`), or one per request in the `ferry.sync_requests` queue (`--worker`).

use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use ferry_etl::{Error, LocalSource, Options, Report, Source, Trigger};

use crate::config::state_dir;

/// Which folder holds the layout (`datasets/`, ...): shared by `ferry sync` and `ferry init`.
#[derive(Debug, Args)]
pub struct RootArgs {
    /// A local folder, or a OneDrive folder through Microsoft Graph (the drive and
    /// credentials from the FERRY_GRAPH_* settings).
    #[arg(long, value_enum, default_value = "local")]
    pub source: SourceKind,
    /// The folder holding `datasets/` (for `--source local`).
    #[arg(long, env = "FERRY_SYNC_ROOT")]
    pub root: Option<std::path::PathBuf>,
    /// The drive folder holding `datasets/` (for `--source onedrive`).
    #[arg(
        long,
        env = "FERRY_SYNC_DRIVE_ROOT",
        default_value = "/DynamicCapital/ai-training"
    )]
    pub drive_root: String,
}

impl RootArgs {
    /// The local root (`--source local`), which must be given.
    pub fn local_root(&self) -> anyhow::Result<std::path::PathBuf> {
        self.root
            .clone()
            .context("--root (or FERRY_SYNC_ROOT) names the folder holding datasets/")
    }
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub from: RootArgs,
    /// Keep OneDrive downloads in staging unencrypted (they are AES-256-GCM encrypted by
    /// default, with FERRY_STAGING_KEY(_FILE) or a key kept in STATE_DIR/staging.key).
    #[arg(long)]
    pub plain_staging: bool,
    /// Only this dataset.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Files downloaded at once ahead of the loader (`--source onedrive`); each waits in
    /// staging until its turn.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub downloads: u16,
    /// Print the run's report as JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
    /// Keep running: a sync every this long (`1h`, `15m`), the first one due one interval
    /// after the source's last run, so restarts do not cause extra runs.
    #[arg(long, value_parser = humantime::parse_duration, conflicts_with = "worker")]
    pub every: Option<Duration>,
    /// With --every: a random delay up to this much is added to each wait, so machines
    /// started together do not run together (default: a tenth of the interval, at most 5m).
    #[arg(long, value_parser = humantime::parse_duration, requires = "every")]
    pub jitter: Option<Duration>,
    /// Keep running: claim requests from `ferry.sync_requests` (filled by pg_cron or
    /// `SELECT ferry.request_sync()`) and run one sync per request.
    #[arg(long)]
    pub worker: bool,
    /// With --worker: how often to look for new requests.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s", requires = "worker")]
    pub poll: Duration,
    /// With --every or --worker: serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long, env = "FERRY_SYNC_METRICS_ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Alert when Graph throttles at least this many requests in one run (0: never).
    #[arg(long, env = "FERRY_SYNC_THROTTLE_ALERT", default_value_t = 10)]
    pub throttle_alert: u64,
    /// Alert when the source has had no successful run for this long.
    #[arg(long, env = "FERRY_SYNC_STALE_AFTER", value_parser = humantime::parse_duration, default_value = "3h")]
    pub stale_after: Duration,
}

/// Where alerts go besides `ferry.alerts` and NOTIFY: a webhook from
/// `FERRY_ALERT_WEBHOOK` (or `_FILE`; the URL often carries a token, so it is a secret).
#[derive(Clone)]
struct Alerts {
    webhook: Option<String>,
    http: reqwest::Client,
    stale_after: Duration,
    throttle_alert: u64,
    metrics: Option<crate::sync_metrics::Metrics>,
}

impl std::fmt::Debug for Alerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerts")
            .field("webhook", &self.webhook.as_ref().map(|_| "<set>"))
            .finish_non_exhaustive()
    }
}

impl Alerts {
    fn from_env(
        stale_after: Duration,
        throttle_alert: u64,
        metrics: Option<crate::sync_metrics::Metrics>,
    ) -> anyhow::Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Ok(Self {
            webhook: crate::config::secret_from_env("FERRY_ALERT_WEBHOOK")?,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            stale_after,
            throttle_alert,
            metrics,
        })
    }

    /// Raises what a run (or its absence) calls for: a failed run, a stale cursor.
    async fn after_run(
        &self,
        client: &mut tokio_postgres::Client,
        source: &str,
        report: Option<&Report>,
    ) -> anyhow::Result<()> {
        if let Some(report) = report {
            let due = [
                ferry_etl::alerts::for_run(report),
                ferry_etl::alerts::for_throttling(report, self.throttle_alert),
            ];
            for (kind, message) in due.into_iter().flatten() {
                let alert =
                    ferry_etl::alerts::raise(client, kind, source, Some(report.run_id), &message)
                        .await?;
                self.post(&alert).await;
            }
        }
        if let Some(message) = ferry_etl::alerts::stale(client, source, self.stale_after).await? {
            let alert =
                ferry_etl::alerts::raise(client, "stale_cursor", source, None, &message).await?;
            self.post(&alert).await;
        }
        Ok(())
    }

    async fn post(&self, alert: &ferry_etl::alerts::Alert) {
        if let Some(m) = &self.metrics {
            m.alert(alert.kind);
        }
        let Some(url) = &self.webhook else { return };
        match self.http.post(url).json(alert).send().await {
            Ok(r) if r.status().is_success() => {}
            // Never log the URL: it is a secret.
            Ok(r) => tracing::warn!(status = %r.status(), "the alert webhook refused the alert"),
            Err(e) => tracing::warn!(error = %e.without_url(), "the alert webhook is unreachable"),
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SourceKind {
    Local,
    Onedrive,
}

pub async fn run(args: SyncArgs, file: &crate::config::File) -> anyhow::Result<()> {
    let source = match args.from.source {
        SourceKind::Local => {
            let root = args.from.local_root()?;
            anyhow::ensure!(root.is_dir(), "{} is not a folder", root.display());
            Source::Local(LocalSource::new(&root))
        }
        SourceKind::Onedrive => {
            let config = crate::onedrive::graph_config(file)?;
            let graph = ferry_graph::GraphClient::new(&config)?;
            let key = if args.plain_staging {
                None
            } else {
                Some(staging_key()?)
            };
            Source::OneDrive(ferry_etl::OneDriveSource::new(
                graph,
                &config.drive.path(),
                &args.from.drive_root,
                state_dir()?.join("staging").join("downloads"),
                key,
            ))
        }
    };
    let mut client = crate::db::connect_migrated().await?;
    let bar = progress_bar(args.json || args.every.is_some() || args.worker);
    let options = Options {
        dataset: args.dataset.clone(),
        downloads: usize::from(args.downloads),
        manifest_dir: Some(state_dir()?.join("staging").join("manifests")),
        progress: bar.clone().map(|bar| {
            let progress: ferry_etl::engine::ProgressFn =
                std::sync::Arc::new(move |done, total, path| {
                    bar.set_length(total as u64);
                    bar.set_position(done as u64);
                    bar.set_message(path.to_owned());
                });
            progress
        }),
        ..Options::default()
    };
    let metrics = match args.metrics_addr {
        Some(addr) => {
            anyhow::ensure!(
                args.every.is_some() || args.worker,
                "--metrics-addr is for the long-running modes (--every, --worker)"
            );
            let metrics = crate::sync_metrics::Metrics::new(&source.name());
            metrics.clone().serve(addr).await?;
            Some(metrics)
        }
        None => None,
    };
    let alerts = Alerts::from_env(args.stale_after, args.throttle_alert, metrics)?;
    if let Some(every) = args.every {
        let jitter = args
            .jitter
            .unwrap_or_else(|| (every / 10).min(Duration::from_secs(300)));
        return every_interval(
            &mut client,
            &source,
            options,
            every,
            jitter,
            &alerts,
            args.json,
        )
        .await;
    }
    if args.worker {
        return worker(&mut client, &source, options, args.poll, &alerts, args.json).await;
    }
    let report = ferry_etl::sync(&mut client, &source, &options).await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = report?;
    show(&report, args.json)?;
    alerts
        .after_run(&mut client, &source.name(), Some(&report))
        .await?;
    if report.status == "failed" {
        anyhow::bail!("the sync failed: {} file(s) failed", report.files_failed);
    }
    Ok(())
}

/// The staging key: `FERRY_STAGING_KEY` (or `_FILE`, 64 hex characters), else the one in
/// `STATE_DIR/staging.key`, created (0600) the first time.
fn staging_key() -> anyhow::Result<ferry_etl::staging::StagingKey> {
    use ferry_etl::staging::StagingKey;
    if let Some(text) = crate::config::secret_from_env("FERRY_STAGING_KEY")? {
        return StagingKey::from_hex(&text).context(
            "FERRY_STAGING_KEY (or the file FERRY_STAGING_KEY_FILE names) must hold 64 \
             hexadecimal characters (32 bytes)",
        );
    }
    let path = state_dir()?.join("staging.key");
    let read = |path: &std::path::Path| -> anyhow::Result<StagingKey> {
        let text = ferry_private::read(path)?;
        StagingKey::from_hex(&text)
            .with_context(|| format!("{} does not hold a 32-byte hex key", path.display()))
    };
    if path.exists() {
        return read(&path);
    }
    let key = StagingKey::generate();
    match ferry_private::create_new(&path, key.to_hex().as_bytes()) {
        Ok(()) => Ok(key),
        // Another process created it first: its key is the one.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(&path),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

/// A bar of files on a terminal (nothing for machines or long-running modes).
fn progress_bar(quiet: bool) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal as _;
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} files  {elapsed}  {wide_msg}")
    {
        bar.set_style(style);
    }
    Some(bar)
}

fn show(report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        print_summary(report);
    }
    Ok(())
}

/// How one run of a long-running mode went.
enum Outcome {
    Ran(Box<Report>),
    /// Another run of the source (maybe on another machine) holds its lock.
    Busy,
    Failed,
}

/// One run in a long-running mode: failures are logged and the loop goes on; only a lost
/// database connection ends it.
async fn run_once(
    client: &mut tokio_postgres::Client,
    source: &Source,
    options: &Options,
    alerts: &Alerts,
    json: bool,
) -> anyhow::Result<Outcome> {
    let outcome = match ferry_etl::sync(client, source, options).await {
        Ok(report) => {
            show(&report, json)?;
            Outcome::Ran(Box::new(report))
        }
        Err(e @ Error::Busy { .. }) => {
            tracing::info!(reason = %e, "not running now");
            Outcome::Busy
        }
        Err(Error::Pg(e)) if client.is_closed() => {
            return Err(e).context("lost the database connection");
        }
        Err(e) => {
            tracing::error!(error = %e, "sync run failed");
            Outcome::Failed
        }
    };
    let report = match &outcome {
        Outcome::Ran(report) => Some(report.as_ref()),
        _ => None,
    };
    if let Some(m) = &alerts.metrics {
        match &outcome {
            Outcome::Ran(report) => m.ran(report),
            Outcome::Busy => m.busy(),
            Outcome::Failed => m.failed(),
        }
    }
    alerts.after_run(client, &source.name(), report).await?;
    Ok(outcome)
}

async fn every_interval(
    client: &mut tokio_postgres::Client,
    source: &Source,
    options: Options,
    every: Duration,
    jitter: Duration,
    alerts: &Alerts,
    json: bool,
) -> anyhow::Result<()> {
    let options = Options {
        trigger: Trigger::Schedule,
        ..options
    };
    let stop = crate::serve::shutdown_signal()?;
    tokio::pin!(stop);
    loop {
        // Due one interval after the source's last run, wherever it ran.
        let since_last: Option<f64> = client
            .query_one(
                "SELECT extract(epoch FROM now() - max(started_at))::float8
                 FROM ferry.etl_runs WHERE source = $1",
                &[&source.name()],
            )
            .await?
            .get(0);
        let due = since_last.map_or(Duration::ZERO, |s| {
            every.saturating_sub(Duration::from_secs_f64(s.max(0.0)))
        });
        let wait = due + random_below(jitter);
        tracing::info!(next_in = %humantime::format_duration(Duration::from_secs(wait.as_secs())), "waiting for the next sync");
        tokio::select! {
            _ = &mut stop => return Ok(()),
            _ = tokio::time::sleep(wait) => {}
        }
        run_once(client, source, &options, alerts, json).await?;
    }
}

async fn worker(
    client: &mut tokio_postgres::Client,
    source: &Source,
    options: Options,
    poll: Duration,
    alerts: &Alerts,
    json: bool,
) -> anyhow::Result<()> {
    let name = source.name();
    let me = format!(
        "{}:{}",
        std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "localhost".into()),
        std::process::id()
    );
    let stop = crate::serve::shutdown_signal()?;
    tokio::pin!(stop);
    tracing::info!(source = %name, worker = %me, "waiting for sync requests");
    loop {
        ferry_etl::queue::requeue_abandoned(client, &name).await?;
        while let Some(request) = ferry_etl::queue::claim(client, &name, &me).await? {
            let options = Options {
                trigger: Trigger::Queue,
                dataset: request.dataset.clone().or_else(|| options.dataset.clone()),
                ..options.clone()
            };
            match run_once(client, source, &options, alerts, json).await? {
                Outcome::Ran(report) => {
                    let ok = report.status != "failed";
                    ferry_etl::queue::finish(client, request.id, Some(report.run_id), ok).await?;
                }
                Outcome::Failed => {
                    ferry_etl::queue::finish(client, request.id, None, false).await?
                }
                Outcome::Busy => {
                    // Someone else is syncing this source: hand the request back for later.
                    ferry_etl::queue::release(client, request.id).await?;
                    break;
                }
            }
        }
        tokio::select! {
            _ = &mut stop => return Ok(()),
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

fn random_below(max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    let r = uuid::Uuid::new_v4().as_u128() as u64;
    Duration::from_millis(r % max.as_millis().max(1) as u64)
}

/// One screen: the counts, then each file that did something.
fn print_summary(r: &Report) {
    println!(
        "run {} {}: {} file(s) seen, {} loaded, {} skipped, {} failed; {} row(s) loaded, {} rejected, {:.1} MB in {:.1} s",
        r.run_id,
        r.status,
        r.files_seen,
        r.files_loaded,
        r.files_skipped,
        r.files_failed,
        r.rows_loaded,
        r.rows_rejected,
        r.bytes as f64 / 1e6,
        r.duration_ms as f64 / 1000.0
    );
    for f in &r.files {
        if let Some(d) = &f.drift {
            let names = |cols: &[ferry_etl::load::ColumnInfo]| {
                cols.iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            println!(
                "  drift    {} vs {}: added [{}], removed [{}], retyped {:?}",
                f.path,
                d.previous_table,
                names(&d.added),
                names(&d.removed),
                d.retyped
            );
        }
        let target = f.target_table.as_deref().unwrap_or("-");
        match &f.error {
            Some(e) => println!("  {:<8} {}  ({e})", f.status, f.path),
            None => println!(
                "  {:<8} {} -> {target}: {} row(s), {} rejected",
                f.status, f.path, f.rows_loaded, f.rows_rejected
            ),
        }
    }
}
