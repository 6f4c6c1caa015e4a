//! Resumable upload sessions: `createUploadSession`, then fragments `PUT` to the
//! pre-authenticated `uploadUrl` with `Content-Range`, status (`GET`), cancel (`DELETE`)
//! and explicit commit (`POST`, for `deferCommit`). Fragments stream straight to disk.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::io::AsyncSeekExt as _;

use super::error::GraphError;
use super::upload::{StreamError, precheck, stream_into, target_of};
use super::write::{ItemAddr, conflict, fs_info};
use super::{Ctx, ViewSpec, json_body};
use crate::state::AppState;
use crate::store::Drive;
use crate::store::hashing::Hasher;
use crate::store::ops::{self, Conflict, FsInfo, Target};
use crate::util::{iso, now_secs};

/// Fragments must be multiples of 320 KiB, except the last.
pub const FRAGMENT_UNIT: u64 = 327_680;
/// And at most 60 MiB each.
pub const MAX_FRAGMENT: u64 = 60 * 1024 * 1024;

#[derive(Debug)]
struct Progress {
    received: u64,
    total: Option<u64>,
    hasher: Hasher,
}

#[derive(Debug)]
pub struct Session {
    drive: Arc<Drive>,
    prefix: String,
    target: Target,
    behavior: Conflict,
    fs: FsInfo,
    defer_commit: bool,
    expires: i64,
    part: PathBuf,
    progress: tokio::sync::Mutex<Progress>,
}

#[derive(Debug, Default)]
pub struct Sessions {
    inner: Mutex<HashMap<String, Arc<Session>>>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A live session; expired ones are removed with their partial data.
    fn get(&self, id: &str) -> Result<Arc<Session>, GraphError> {
        let mut map = self.lock();
        let now = now_secs();
        let expired: Vec<String> = map
            .iter()
            .filter(|(_, s)| s.expires <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in expired {
            if let Some(s) = map.remove(&k) {
                let _ = std::fs::remove_file(&s.part);
            }
        }
        map.get(id).cloned().ok_or_else(|| {
            GraphError::new(
                StatusCode::NOT_FOUND,
                "itemNotFound",
                "The upload session was not found or has expired.",
            )
        })
    }

    fn remove(&self, id: &str) {
        if let Some(s) = self.lock().remove(id) {
            let _ = std::fs::remove_file(&s.part);
        }
    }
}

fn status_body(expires: i64, next: Option<u64>) -> Value {
    let ranges: Vec<String> = next.map(|n| format!("{n}-")).into_iter().collect();
    json!({"expirationDateTime": iso(expires), "nextExpectedRanges": ranges})
}

pub async fn create(ctx: &Ctx, it: ItemAddr, body: Body) -> Result<Response, GraphError> {
    let body = json_body(body).await?;
    let item = body.get("item").cloned().unwrap_or(json!({}));
    let behavior = conflict(ctx, Some(&item), Conflict::Replace)?;
    let fs = fs_info(&item)?;
    let defer_commit = body
        .get("deferCommit")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let (base, path) = (it.base.clone(), it.path.clone());
    let target = it
        .drive
        .run(move |_, t| {
            let target = target_of(t, &base, &path)?;
            precheck(t, &target, behavior)?;
            Ok::<_, GraphError>(target)
        })
        .await?;
    let lifetime = ctx
        .shared
        .faults
        .upload_session_expiry()
        .unwrap_or(ctx.shared.config.upload_session_lifetime.as_secs()) as i64;
    let id = crate::util::random_token() + &crate::util::random_token();
    let part = ctx.shared.tmp_dir().join(format!("session-{id}"));
    tokio::fs::File::create(&part)
        .await
        .map_err(|e| GraphError::internal(e.to_string()))?;
    let expires = now_secs() + lifetime;
    let session = Session {
        drive: it.drive.clone(),
        prefix: it.prefix.clone(),
        target,
        behavior,
        fs,
        defer_commit,
        expires,
        part,
        progress: tokio::sync::Mutex::new(Progress {
            received: 0,
            total: None,
            hasher: Hasher::default(),
        }),
    };
    ctx.shared
        .sessions
        .lock()
        .insert(id.clone(), Arc::new(session));
    let mut v = status_body(expires, Some(0));
    v["uploadUrl"] = json!(format!("{}/_emulator/upload/{id}", ctx.base));
    Ok(Json(v).into_response())
}

fn check_no_auth(shared: &AppState, headers: &HeaderMap) -> Result<(), GraphError> {
    if shared.config.reject_auth_on_upload_url && headers.contains_key("authorization") {
        return Err(GraphError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "The upload URL is pre-authenticated; do not send an Authorization header to it.",
        ));
    }
    Ok(())
}

/// Parses `bytes a-b/total`.
fn content_range(headers: &HeaderMap) -> Result<(u64, u64, u64), GraphError> {
    let bad = || {
        GraphError::invalid(
            "A valid Content-Range header 'bytes {start}-{end}/{total}' is required.",
        )
    };
    let v = headers
        .get("content-range")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(bad)?;
    let spec = v.trim().strip_prefix("bytes ").ok_or_else(bad)?;
    let (range, total) = spec.split_once('/').ok_or_else(bad)?;
    let (a, b) = range.split_once('-').ok_or_else(bad)?;
    let parse = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
    let (a, b, total) = (parse(a)?, parse(b)?, parse(total)?);
    if b < a || b >= total {
        return Err(bad());
    }
    Ok((a, b, total))
}

fn invalid_range(message: &str) -> GraphError {
    GraphError::new(StatusCode::RANGE_NOT_SATISFIABLE, "invalidRange", message)
}

pub async fn put(
    State(shared): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, GraphError> {
    check_no_auth(&shared, &headers)?;
    let session = shared.sessions.get(&id)?;
    let (a, b, total) = content_range(&headers)?;
    let len = b - a + 1;
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared != Some(len) {
        return Err(GraphError::invalid(
            "Content-Length must equal the size of the Content-Range.",
        ));
    }
    if len > MAX_FRAGMENT {
        return Err(super::upload::too_large(
            "Fragments must be at most 60 MiB.",
        ));
    }
    let last = b + 1 == total;
    if !last && len % FRAGMENT_UNIT != 0 {
        return Err(GraphError::invalid(
            "Fragment sizes must be a multiple of 320 KiB (327,680 bytes), except the last fragment.",
        ));
    }
    let mut progress = session.progress.lock().await;
    if progress.total.is_some_and(|t| t != total) {
        return Err(GraphError::invalid(
            "The total size in Content-Range differs from earlier fragments.",
        ));
    }
    if progress.total.is_some_and(|t| progress.received >= t) {
        return Err(invalid_range(
            "All bytes have already been received for this upload session.",
        ));
    }
    if a != progress.received {
        let msg = if a < progress.received {
            "The uploaded fragment overlaps with data that has previously been saved for this request."
        } else {
            "The uploaded fragment does not start at the next expected byte."
        };
        return Err(invalid_range(msg));
    }
    if progress.total.is_none() {
        let used = session.drive.run(|_, t| t.used_bytes()).await;
        if used + total > session.drive.quota_total {
            return Err(ops::OpError::Quota.into());
        }
    }
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .open(&session.part)
        .await
        .map_err(|e| GraphError::internal(e.to_string()))?;
    // Drop anything a failed earlier fragment left past the accepted bytes.
    file.set_len(a)
        .await
        .map_err(|e| GraphError::internal(e.to_string()))?;
    file.seek(std::io::SeekFrom::Start(a))
        .await
        .map_err(|e| GraphError::internal(e.to_string()))?;
    let mut hasher = progress.hasher.clone();
    let res = stream_into(body, &mut file, &mut hasher, len).await;
    let outcome = match res {
        Ok(n) if n == len => Ok(()),
        Ok(_) => Err(StreamError::Short),
        Err(e) => Err(e),
    };
    if let Err(e) = outcome {
        let _ = file.set_len(a).await;
        return Err(match e {
            StreamError::Io(e) => GraphError::internal(e.to_string()),
            _ => GraphError::invalid("The fragment body did not match Content-Length."),
        });
    }
    progress.hasher = hasher;
    progress.received = b + 1;
    progress.total = Some(total);
    if !last && shared.faults.take_lost_fragment_ack() {
        return Err(GraphError::internal(
            "the fragment was stored; this answer is lost",
        ));
    }
    if !last {
        return Ok((
            StatusCode::ACCEPTED,
            Json(status_body(session.expires, Some(progress.received))),
        )
            .into_response());
    }
    if session.defer_commit {
        return Ok((
            StatusCode::ACCEPTED,
            Json(status_body(session.expires, None)),
        )
            .into_response());
    }
    let hasher = progress.hasher.clone();
    drop(progress);
    commit(&shared, &headers, &id, &session, hasher, total).await
}

async fn commit(
    shared: &AppState,
    headers: &HeaderMap,
    id: &str,
    session: &Arc<Session>,
    hasher: Hasher,
    total: u64,
) -> Result<Response, GraphError> {
    let base = crate::state::base_url(shared, headers);
    let spec = ViewSpec::new(shared, &session.drive, base, session.prefix.clone(), false);
    let s = session.clone();
    let (v, created) = session
        .drive
        .run(move |d, t| {
            let hashes = hasher.finish(total, (0, 0));
            let (id, created) =
                ops::commit_file(d, t, &s.target, &s.part, hashes, s.behavior, s.fs)?;
            let v =
                super::json::item(&spec.view(d), t, &id).ok_or_else(GraphError::item_not_found)?;
            Ok::<_, GraphError>((v, created))
        })
        .await?;
    shared.sessions.remove(id);
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(v)).into_response())
}

pub async fn status(
    State(shared): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, GraphError> {
    check_no_auth(&shared, &headers)?;
    let session = shared.sessions.get(&id)?;
    let p = session.progress.lock().await;
    let next = match p.total {
        Some(t) if p.received >= t => None,
        _ => Some(p.received),
    };
    Ok(Json(status_body(session.expires, next)).into_response())
}

pub async fn cancel(
    State(shared): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, GraphError> {
    check_no_auth(&shared, &headers)?;
    shared.sessions.get(&id)?;
    shared.sessions.remove(&id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Explicit commit of a `deferCommit` session (POST with an empty body).
pub async fn finish(
    State(shared): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, GraphError> {
    check_no_auth(&shared, &headers)?;
    let session = shared.sessions.get(&id)?;
    let p = session.progress.lock().await;
    let total = match p.total {
        Some(t) if p.received >= t => t,
        _ => {
            return Err(GraphError::invalid(
                "The upload is not complete; upload all bytes before committing.",
            ));
        }
    };
    let hasher = p.hasher.clone();
    drop(p);
    commit(&shared, &headers, &id, &session, hasher, total).await
}
