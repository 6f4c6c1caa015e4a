//! The sync queue (`ferry.sync_requests`): requests come from `ferry.request_sync()` (pg_cron,
//! an app, a person); workers claim the oldest pending one with `FOR UPDATE SKIP LOCKED`,
//! so several workers share the work and each request runs once.
//!
//! While a worker holds a request it also holds a session advisory lock on it, taken before the
//! claim commits and dropped after the request is finished or released. A request marked
//! running whose lock nobody holds belongs to a worker that died, and goes back to pending.

use crate::error::Result;

/// First key of the two-key advisory locks on requests ("ferr"); the second is the request id.
const REQUEST_LOCK_SPACE: i32 = 0x6665_7272;

/// The second lock key for request `id`: ids past `i32::MAX` wrap (a shared key only delays a
/// requeue, it never runs a request twice). `requeue_abandoned` spells the same rule in SQL.
fn request_lock_key(id: i64) -> i32 {
    (id % (1 << 31)) as i32
}

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
    // Held before the claim is visible, so no other worker ever sees it running and unlocked.
    tx.execute(
        "SELECT pg_advisory_lock($1, $2)",
        &[&REQUEST_LOCK_SPACE, &request_lock_key(request.id)],
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
    unlock(client, id).await
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
    unlock(client, id).await
}

/// Drops the request's lock, after its new status is committed.
async fn unlock(client: &tokio_postgres::Client, id: i64) -> Result<()> {
    client
        .execute(
            "SELECT pg_advisory_unlock($1, $2)",
            &[&REQUEST_LOCK_SPACE, &request_lock_key(id)],
        )
        .await?;
    Ok(())
}

/// Requests a worker claimed but never finished (it died, and its session with it) go back to
/// pending. Called by a worker before it claims.
pub async fn requeue_abandoned(client: &tokio_postgres::Client, source: &str) -> Result<u64> {
    Ok(client
        .execute(
            "UPDATE ferry.sync_requests r
             SET status = 'pending', claimed_by = NULL, claimed_at = NULL
             WHERE status = 'running' AND (source IS NULL OR source = $1)
               AND NOT EXISTS (
                   SELECT 1 FROM pg_locks
                   WHERE locktype = 'advisory' AND granted AND objsubid = 2
                     AND database = (SELECT oid FROM pg_database
                                     WHERE datname = current_database())
                     AND classid::bigint = $2::int AND objid::bigint = r.id % 2147483648
               )",
            &[&source, &REQUEST_LOCK_SPACE],
        )
        .await?)
}
