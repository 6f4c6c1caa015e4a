//! Prometheus metrics of a long-running `ferry sync` (`--every`, `--worker`), served on
//! `--metrics-addr` at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use ferry_etl::Report;

#[derive(Debug, Default)]
struct Counters {
    /// runs by status
    runs: BTreeMap<String, u64>,
    /// files by status
    files: BTreeMap<String, u64>,
    rows_loaded: u64,
    rows_rejected: u64,
    bytes: u64,
    busy: u64,
    alerts: BTreeMap<String, u64>,
    last_run: f64,
    last_success: f64,
    last_duration: f64,
}

/// Shared between the sync loop and the HTTP server.
#[derive(Debug, Clone)]
pub struct Metrics {
    source: String,
    inner: Arc<Mutex<Counters>>,
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Metrics {
    pub fn new(source: &str) -> Self {
        Self {
            source: source.to_owned(),
            inner: Arc::default(),
        }
    }

    fn with(&self, f: impl FnOnce(&mut Counters)) {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()));
    }

    pub fn ran(&self, r: &Report) {
        self.with(|c| {
            *c.runs.entry(r.status.to_owned()).or_default() += 1;
            for f in &r.files {
                *c.files.entry(f.status.to_owned()).or_default() += 1;
            }
            c.rows_loaded += r.rows_loaded;
            c.rows_rejected += r.rows_rejected;
            c.bytes += r.bytes;
            c.last_run = now();
            c.last_duration = r.duration_ms as f64 / 1000.0;
            if r.status != "failed" {
                c.last_success = c.last_run;
            }
        });
    }

    pub fn failed(&self) {
        self.with(|c| {
            *c.runs.entry("error".to_owned()).or_default() += 1;
            c.last_run = now();
        });
    }

    pub fn busy(&self) {
        self.with(|c| c.busy += 1);
    }

    pub fn alert(&self, kind: &str) {
        self.with(|c| *c.alerts.entry(kind.to_owned()).or_default() += 1);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let src = self.source.replace('\\', "\\\\").replace('"', "\\\"");
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{{source=\"{src}\"{labels}}} {value}");
            }
        };
        let by = |m: &BTreeMap<String, u64>, label: &str| -> Vec<(String, f64)> {
            m.iter()
                .map(|(k, v)| (format!(",{label}=\"{k}\""), *v as f64))
                .collect()
        };
        family(
            "ferry_sync_runs_total",
            "counter",
            "Sync runs by outcome.",
            &by(&c.runs, "status"),
        );
        family(
            "ferry_sync_files_total",
            "counter",
            "Files by what the run did with them.",
            &by(&c.files, "status"),
        );
        family(
            "ferry_sync_rows_loaded_total",
            "counter",
            "Rows loaded.",
            &[(String::new(), c.rows_loaded as f64)],
        );
        family(
            "ferry_sync_rows_rejected_total",
            "counter",
            "Rows rejected.",
            &[(String::new(), c.rows_rejected as f64)],
        );
        family(
            "ferry_sync_bytes_total",
            "counter",
            "Bytes of files loaded.",
            &[(String::new(), c.bytes as f64)],
        );
        family(
            "ferry_sync_busy_total",
            "counter",
            "Runs skipped because another run held the source.",
            &[(String::new(), c.busy as f64)],
        );
        family(
            "ferry_sync_alerts_total",
            "counter",
            "Alerts raised, by kind.",
            &by(&c.alerts, "kind"),
        );
        family(
            "ferry_sync_last_run_timestamp_seconds",
            "gauge",
            "When the last run ended.",
            &[(String::new(), c.last_run)],
        );
        family(
            "ferry_sync_last_success_timestamp_seconds",
            "gauge",
            "When the last run that did not fail ended.",
            &[(String::new(), c.last_success)],
        );
        family(
            "ferry_sync_last_run_duration_seconds",
            "gauge",
            "How long the last run took.",
            &[(String::new(), c.last_duration)],
        );
        out
    }

    /// Serves `/metrics` until the process ends.
    pub async fn serve(self, addr: std::net::SocketAddr) -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        tracing::info!(addr = %listener.local_addr()?, "serving sync metrics at /metrics");
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let m = self.clone();
                async move { ([("content-type", "text/plain; version=0.0.4")], m.render()) }
            }),
        );
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "metrics server stopped");
            }
        });
        Ok(())
    }
}
