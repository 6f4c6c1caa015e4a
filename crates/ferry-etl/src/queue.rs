//! The sync queue (`ferry.sync_requests`): requests come from `ferry.request_sync()` (pg_cron,
//! an app, a person); workers claim the oldest pending one with `FOR UPDATE SKIP LOCKED`,
//! so several workers share the work and each request runs once.

use crate::error::Result;

/// A claimed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: i64,
    /// The source it is for; None means "whichever source the worker syncs".
    pub source: Option<String>,
    pub dataset: Option<String>,
}

/// Claims the oldest pending request for `source` (or for any source), marking it running.
pub async fn claim(
    client: &mut tokio_postgres::Client,
    source: &str,
    worker: &str,
) -> Result<Option<Request>> {
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(
            "SELECT id, source, dataset FROM ferry.sync_requests
             WHERE status = 'pending' AND (source IS NULL OR source = $1)
             ORDER BY requested_at, id
             LIMIT 1
             FOR UPDATE SKIP LOCKED",
            &[&source],
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let request = Request {
        id: row.get(0),
        source: row.get(1),
        dataset: row.get(2),
    };
    tx.execute(
        "UPDATE ferry.sync_requests SET status = 'running', claimed_by = $2, claimed_at = now()
         WHERE id = $1",
        &[&request.id, &worker],
    )
    .await?;
    tx.commit().await?;
    Ok(Some(request))
}

/// Records how a claimed request ended.
pub async fn finish(
    client: &tokio_postgres::Client,
    id: i64,
    run_id: Option<i64>,
    ok: bool,
) -> Result<()> {
    client
        .execute(
            "UPDATE ferry.sync_requests SET status = $2, finished_at = now(), run_id = $3
             WHERE id = $1",
            &[&id, &if ok { "done" } else { "failed" }, &run_id],
        )
        .await?;
    Ok(())
}

/// Hands a claimed request back (its source was busy).
pub async fn release(client: &tokio_postgres::Client, id: i64) -> Result<()> {
    client
        .execute(
            "UPDATE ferry.sync_requests SET status = 'pending', claimed_by = NULL, claimed_at = NULL
             WHERE id = $1",
            &[&id],
        )
        .await?;
    Ok(())
}

/// Requests a worker claimed but never finished (it died) go back to pending once their
/// source is not locked by a live run. Called by a worker before it claims.
pub async fn requeue_abandoned(client: &tokio_postgres::Client, source: &str) -> Result<u64> {
    let key = crate::engine::lock_key(source);
    Ok(client
        .execute(
            "UPDATE ferry.sync_requests SET status = 'pending', claimed_by = NULL, claimed_at = NULL
             WHERE status = 'running' AND (source IS NULL OR source = $1)
               AND NOT EXISTS (
                   SELECT 1 FROM pg_locks
                   WHERE locktype = 'advisory' AND granted
                     AND ((classid::bigint << 32) | objid::bigint) = $2
               )",
            &[&source, &key],
        )
        .await?)
}
