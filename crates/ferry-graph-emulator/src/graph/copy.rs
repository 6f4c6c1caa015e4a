//! `POST .../copy`: 202 with a `Location` monitor URL (no auth needed) that reports
//! `inProgress`, then `completed` with the new item's `resourceId`.

use std::collections::HashMap;
use std::path::Path as FsPath;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::error::GraphError;
use super::route::Base;
use super::write::{ItemAddr, conflict};
use super::{Ctx, json_body, resolve};
use crate::state::AppState;
use crate::store::ops::{self, Conflict};
use crate::store::{Drive, scan};

#[derive(Debug, Clone)]
enum Status {
    InProgress,
    Completed(String),
    Failed(String, String),
}

#[derive(Debug)]
struct Monitor {
    status: Status,
    polled: bool,
}

#[derive(Debug, Default)]
pub struct Monitors {
    inner: Mutex<HashMap<String, Monitor>>,
}

impl Monitors {
    fn set(&self, id: &str, status: Status) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mon) = m.get_mut(id) {
            mon.status = status;
        }
    }
}

pub async fn start(ctx: &Ctx, it: ItemAddr, body: Body) -> Result<Response, GraphError> {
    let body = json_body(body).await?;
    let behavior = conflict(ctx, Some(&body), Conflict::Fail)?;
    let parent_ref = body.get("parentReference");
    let dest_drive = match parent_ref
        .and_then(|p| p.get("driveId"))
        .and_then(Value::as_str)
    {
        Some(d) => ctx
            .shared
            .drives
            .get(d)
            .ok_or_else(GraphError::item_not_found)?,
        None => it.drive.clone(),
    };
    resolve::check_access(&ctx.caller, &dest_drive)?;
    let dest_parent_hint = parent_ref
        .and_then(|p| p.get("id"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let new_name = body.get("name").and_then(Value::as_str).map(str::to_string);
    let (base, path) = (it.base.clone(), it.path.clone());
    let (src_path, src_name, src_parent) = it
        .drive
        .run(move |d, t| {
            let id = resolve::item(t, &base, &path)?;
            let n = t.get(&id).ok_or_else(GraphError::item_not_found)?;
            let parent = n
                .parent
                .clone()
                .ok_or_else(|| GraphError::invalid("The root folder cannot be copied."))?;
            Ok::<_, GraphError>((t.disk_path(&d.dir, &id), n.name.clone(), parent))
        })
        .await?;
    let name = new_name.unwrap_or(src_name);
    crate::store::names::check_name(&name).map_err(GraphError::invalid)?;
    let same_drive = Arc::ptr_eq(&dest_drive, &it.drive);
    let dest_parent = match dest_parent_hint {
        Some(p) => p,
        None if same_drive => src_parent,
        None => {
            return Err(GraphError::invalid(
                "parentReference.id is required when copying to another drive.",
            ));
        }
    };
    let check_name = name.clone();
    let dest_parent2 = dest_parent.clone();
    dest_drive
        .run(move |_, t| {
            let parent = resolve::item(t, &Base::Id(dest_parent2), &[])?;
            if !t.get(&parent).is_some_and(|n| n.folder) {
                return Err(GraphError::invalid("The destination is not a folder."));
            }
            if behavior == Conflict::Fail && t.child_by_name(&parent, &check_name).is_some() {
                return Err(ops::OpError::Conflict(format!("The specified item name already exists. An item named '{check_name}' already exists in the destination.")).into());
            }
            Ok(())
        })
        .await?;
    let monitor_id = crate::util::random_token();
    ctx.shared
        .copies
        .inner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(
            monitor_id.clone(),
            Monitor {
                status: Status::InProgress,
                polled: false,
            },
        );
    let shared = ctx.shared.clone();
    let mid = monitor_id.clone();
    tokio::spawn(async move {
        let status = run_copy(&shared, &src_path, dest_drive, dest_parent, name, behavior).await;
        shared.copies.set(&mid, status);
    });
    let mut resp = StatusCode::ACCEPTED.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("{}/_emulator/monitor/{monitor_id}", ctx.base)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

async fn run_copy(
    shared: &AppState,
    src: &FsPath,
    dest: Arc<Drive>,
    parent: String,
    name: String,
    behavior: Conflict,
) -> Status {
    let staging = shared
        .tmp_dir()
        .join(format!("copy-{}", crate::util::random_token()));
    let (src, stage) = (src.to_path_buf(), staging.clone());
    let copied = tokio::task::spawn_blocking(move || copy_tree(&src, &stage)).await;
    if !matches!(copied, Ok(Ok(()))) {
        let _ = std::fs::remove_dir_all(&staging);
        let _ = std::fs::remove_file(&staging);
        return Status::Failed(
            "generalException".into(),
            "The source could not be copied.".into(),
        );
    }
    let result = dest
        .run(move |d, t| -> Result<String, ops::OpError> {
            let existing = t.child_by_name(&parent, &name).map(|n| n.id.clone());
            let final_name = match (existing, behavior) {
                (None, _) => name,
                (Some(_), Conflict::Fail) => {
                    return Err(ops::OpError::Conflict(format!(
                        "An item named '{name}' already exists."
                    )));
                }
                (Some(e), Conflict::Replace) => {
                    ops::delete(d, t, &e)?;
                    name
                }
                (Some(_), Conflict::Rename) => ops::unique_name(t, &parent, &name),
            };
            let to = t.disk_path(&d.dir, &parent).join(&final_name);
            std::fs::rename(&staging, &to)?;
            scan::folder(d, t, &parent);
            t.child_by_name(&parent, &final_name)
                .map(|n| n.id.clone())
                .ok_or_else(|| ops::OpError::NotFound("copy vanished".into()))
        })
        .await;
    match result {
        Ok(id) => Status::Completed(id),
        Err(e) => {
            let g = GraphError::from(e);
            Status::Failed(g.code, g.message)
        }
    }
}

/// Copies a file or folder tree, keeping modification times.
fn copy_tree(src: &FsPath, dst: &FsPath) -> std::io::Result<()> {
    let meta = src.symlink_metadata()?;
    if meta.is_dir() {
        std::fs::create_dir(dst)?;
        for entry in std::fs::read_dir(src)? {
            let entry = entry?;
            copy_tree(&entry.path(), &dst.join(entry.file_name()))?;
        }
    } else if meta.is_file() {
        std::fs::copy(src, dst)?;
        if let Ok(m) = meta.modified() {
            std::fs::File::options()
                .write(true)
                .open(dst)?
                .set_modified(m)?;
        }
    }
    Ok(())
}

pub async fn monitor(
    State(shared): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, GraphError> {
    let mut map = shared
        .copies
        .inner
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let mon = map.get_mut(&id).ok_or_else(GraphError::item_not_found)?;
    // The first poll always reports progress, so clients exercise their polling loop.
    let first = !mon.polled;
    mon.polled = true;
    let (status, body) = match (&mon.status, first) {
        (Status::InProgress, _) | (_, true) => (
            StatusCode::ACCEPTED,
            json!({"operation": "itemCopy", "percentageComplete": 0.0, "status": "inProgress"}),
        ),
        (Status::Completed(rid), _) => (
            StatusCode::OK,
            json!({"operation": "itemCopy", "percentageComplete": 100.0, "resourceId": rid, "status": "completed"}),
        ),
        (Status::Failed(code, message), _) => (
            StatusCode::OK,
            json!({"operation": "itemCopy", "percentageComplete": 0.0, "status": "failed", "error": {"code": code, "message": message}}),
        ),
    };
    Ok((status, Json(body)).into_response())
}
