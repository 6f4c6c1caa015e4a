//! Creating folders, renaming/moving/updating items, deleting.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::error::GraphError;
use super::route::Base;
use super::{Ctx, json_body, resolve};
use crate::store::Drive;
use crate::store::ops::{self, Conflict, FsInfo};

/// An addressed item: drive, how it was reached, and the base + path.
#[derive(Debug, Clone)]
pub struct ItemAddr {
    pub drive: Arc<Drive>,
    pub prefix: String,
    pub base: Base,
    pub path: Vec<String>,
}

pub const CONFLICT_KEY: &str = "@microsoft.graph.conflictBehavior";

/// The conflict behaviour from the body or, failing that, the query string.
pub fn conflict(
    ctx: &Ctx,
    body: Option<&Value>,
    default: Conflict,
) -> Result<Conflict, GraphError> {
    let v = body
        .and_then(|b| b.get(CONFLICT_KEY))
        .and_then(Value::as_str)
        .or_else(|| ctx.query.get(CONFLICT_KEY).map(String::as_str));
    Ok(Conflict::parse(v, default)?)
}

pub fn fs_info(body: &Value) -> Result<FsInfo, GraphError> {
    let Some(fsi) = body.get("fileSystemInfo") else {
        return Ok(FsInfo::default());
    };
    let parse = |k: &str| -> Result<Option<i64>, GraphError> {
        match fsi.get(k).and_then(Value::as_str) {
            None => Ok(None),
            Some(s) => crate::util::parse_iso(s)
                .map(Some)
                .ok_or_else(|| GraphError::invalid(format!("Invalid fileSystemInfo.{k} '{s}'."))),
        }
    };
    Ok(FsInfo {
        created: parse("createdDateTime")?,
        modified: parse("lastModifiedDateTime")?,
    })
}

fn tags(t: &crate::store::Tree, id: &str) -> (String, String) {
    t.get(id)
        .map(|n| {
            (
                format!("\"{{{}}},{}\"", n.guid, n.version),
                format!("\"c:{{{}}},{}\"", n.guid, n.ctag),
            )
        })
        .unwrap_or_default()
}

pub async fn create(ctx: &Ctx, it: ItemAddr, body: Body) -> Result<Response, GraphError> {
    let body = json_body(body).await?;
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| GraphError::invalid("The 'name' property is required."))?
        .to_string();
    if body.get("folder").is_none() {
        return Err(GraphError::invalid(
            "Only folders can be created here: include a 'folder' facet, or upload files with PUT .../content.",
        ));
    }
    let behavior = conflict(ctx, Some(&body), Conflict::Fail)?;
    let fs = fs_info(&body)?;
    let spec = ctx.view_spec(&it.drive, it.prefix.clone(), false);
    let ItemAddr {
        drive, base, path, ..
    } = it;
    let v = drive
        .run(move |d, t| {
            let parent = resolve::item(t, &base, &path)?;
            let (id, _) = ops::create_folder(d, t, &parent, &name, behavior, fs)?;
            super::json::item(&spec.view(d), t, &id).ok_or_else(GraphError::item_not_found)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

pub async fn update(ctx: &Ctx, it: ItemAddr, body: Body) -> Result<Response, GraphError> {
    let body = json_body(body).await?;
    let name = body.get("name").and_then(Value::as_str).map(str::to_string);
    let parent_ref = body.get("parentReference");
    if let Some(other) = parent_ref
        .and_then(|p| p.get("driveId"))
        .and_then(Value::as_str)
        && !other.eq_ignore_ascii_case(&it.drive.id)
    {
        return Err(GraphError::invalid(
            "Moving items between drives is not supported; copy the item instead.",
        ));
    }
    let new_parent = parent_ref
        .and_then(|p| p.get("id"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let behavior = conflict(ctx, Some(&body), Conflict::Fail)?;
    let fs = fs_info(&body)?;
    let spec = ctx.view_spec(&it.drive, it.prefix.clone(), false);
    let if_match = ctx.headers.get("if-match").cloned();
    let ItemAddr {
        drive, base, path, ..
    } = it;
    let ctx_headers = ctx.headers.clone();
    let v = drive
        .run(move |d, t| {
            let id = resolve::item(t, &base, &path)?;
            let (etag, ctag) = tags(t, &id);
            if if_match.is_some() {
                check_if_match_headers(&ctx_headers, &etag, &ctag)?;
            }
            let parent = match &new_parent {
                Some(p) => Some(resolve::item(t, &Base::Id(p.clone()), &[])?),
                None => None,
            };
            ops::update(d, t, &id, name.as_deref(), parent.as_deref(), behavior, fs)?;
            super::json::item(&spec.view(d), t, &id).ok_or_else(GraphError::item_not_found)
        })
        .await?;
    Ok(Json(v).into_response())
}

fn check_if_match_headers(
    headers: &axum::http::HeaderMap,
    etag: &str,
    ctag: &str,
) -> Result<(), GraphError> {
    let want = headers
        .get("if-match")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*")
        .trim();
    if want == "*" || want == etag || want == ctag {
        return Ok(());
    }
    Err(GraphError::new(
        StatusCode::PRECONDITION_FAILED,
        "resourceModified",
        "ETag does not match current item's value",
    ))
}

pub async fn delete(ctx: &Ctx, it: ItemAddr) -> Result<Response, GraphError> {
    let headers = ctx.headers.clone();
    let ItemAddr {
        drive, base, path, ..
    } = it;
    drive
        .run(move |d, t| {
            let id = resolve::item(t, &base, &path)?;
            let (etag, ctag) = tags(t, &id);
            check_if_match_headers(&headers, &etag, &ctag)?;
            ops::delete(d, t, &id).map_err(GraphError::from)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
