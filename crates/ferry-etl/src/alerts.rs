//! Alerts: a run that failed (wholly or in part), a source whose cursor went stale, and a
//! run its service throttled repeatedly. Each
//! is recorded in `ferry.alerts` and announced with `NOTIFY ferry_alerts` (its JSON), in
//! the same transaction; the caller may also post it to a webhook.

use std::time::Duration;

use serde::Serialize;

use crate::engine::Report;
use crate::error::Result;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Alert {
    pub id: i64,
    /// `run_failed`, `stale_cursor` or `throttled`.
    pub kind: &'static str,
    pub source: String,
    pub run_id: Option<i64>,
    pub message: String,
}

/// The alert a finished run deserves, if any.
pub fn for_run(report: &Report) -> Option<(&'static str, String)> {
    (report.files_failed > 0 || report.status == "failed").then(|| {
        let failed: Vec<&str> = report
            .files
            .iter()
            .filter(|f| f.status == "failed")
            .map(|f| f.path.as_str())
            .take(5)
            .collect();
        (
            "run_failed",
            format!(
                "sync run {} of {} {}: {} file(s) failed ({})",
                report.run_id,
                report.source,
                report.status,
                report.files_failed,
                failed.join(", ")
            ),
        )
    })
}

/// The alert a run deserves when its source throttled at least `threshold` requests.
pub fn for_throttling(report: &Report, threshold: u64) -> Option<(&'static str, String)> {
    (threshold > 0 && report.throttled >= threshold).then(|| {
        (
            "throttled",
            format!(
                "{} request(s) throttled during sync run {} of {}",
                report.throttled, report.run_id, report.source
            ),
        )
    })
}

/// Records and announces an alert.
pub async fn raise(
    client: &mut tokio_postgres::Client,
    kind: &'static str,
    source: &str,
    run_id: Option<i64>,
    message: &str,
) -> Result<Alert> {
    let tx = client.transaction().await?;
    let id: i64 = tx
        .query_one(
            "INSERT INTO ferry.alerts (kind, source, run_id, message) VALUES ($1, $2, $3, $4)
             RETURNING id",
            &[&kind, &source, &run_id, &message],
        )
        .await?
        .get(0);
    let alert = Alert {
        id,
        kind,
        source: source.to_owned(),
        run_id,
        message: message.to_owned(),
    };
    let payload = serde_json::to_string(&alert).unwrap_or_default();
    tx.execute("SELECT pg_notify('ferry_alerts', $1)", &[&payload])
        .await?;
    tx.commit().await?;
    tracing::warn!(kind, source, message, "alert");
    Ok(alert)
}

/// A `stale_cursor` alert is due when the source has had no successful run for longer
/// than `max_age`, and none was raised within `max_age` (one alert per period, not one per
/// check).
pub async fn stale(
    client: &tokio_postgres::Client,
    source: &str,
    max_age: Duration,
) -> Result<Option<String>> {
    let secs = max_age.as_secs_f64();
    let row = client
        .query_one(
            "SELECT
                 (SELECT max(finished_at) FROM ferry.etl_runs
                  WHERE source = $1 AND status IN ('succeeded', 'partial')) AS last_ok,
                 (SELECT min(started_at) FROM ferry.etl_runs WHERE source = $1) AS first_run,
                 EXISTS (SELECT 1 FROM ferry.alerts WHERE source = $1 AND kind = 'stale_cursor'
                         AND raised_at > now() - make_interval(secs => $2)) AS alerted,
                 now() - make_interval(secs => $2) AS cutoff",
            &[&source, &secs],
        )
        .await?;
    let last_ok: Option<std::time::SystemTime> = row.get(0);
    let first_run: Option<std::time::SystemTime> = row.get(1);
    let alerted: bool = row.get(2);
    let cutoff: std::time::SystemTime = row.get(3);
    let since = last_ok.or(first_run);
    Ok(match since {
        Some(t) if t < cutoff && !alerted => Some(format!(
            "no successful sync of {source} for more than {}",
            humanize(max_age)
        )),
        _ => None,
    })
}

fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}
