//! Simple upload (`PUT .../content`, up to 250 MB), and streaming request bodies to disk
//! without holding whole files in memory.

use std::path::Path;

use axum::Json;
use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use tokio::io::AsyncWriteExt as _;

use super::error::GraphError;
use super::route::Base;
use super::write::{ItemAddr, conflict};
use super::{Ctx, resolve};
use crate::store::hashing::Hasher;
use crate::store::ops::{self, Conflict, FsInfo, Target};

/// Graph's limit for simple upload.
pub const MAX_SIMPLE_UPLOAD: u64 = 250 * 1024 * 1024;

#[derive(Debug)]
pub enum StreamError {
    TooLarge,
    Short,
    Body,
    Io(std::io::Error),
}

/// Appends the body to `file`, feeding `hasher`; fails past `limit` bytes.
pub async fn stream_into(
    body: Body,
    file: &mut tokio::fs::File,
    hasher: &mut Hasher,
    limit: u64,
) -> Result<u64, StreamError> {
    let mut stream = body.into_data_stream();
    let mut total = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| StreamError::Body)?;
        total += chunk.len() as u64;
        if total > limit {
            return Err(StreamError::TooLarge);
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(StreamError::Io)?;
    }
    file.flush().await.map_err(StreamError::Io)?;
    Ok(total)
}

pub fn too_large(message: &str) -> GraphError {
    GraphError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "requestEntityTooLarge",
        message,
    )
}

/// Where content for this address goes: the item itself when addressed by id alone,
/// otherwise a name in a parent folder (created or replaced per conflict behaviour).
pub fn target_of(
    t: &crate::store::Tree,
    base: &Base,
    path: &[String],
) -> Result<Target, GraphError> {
    if path.is_empty() {
        let id = resolve::item(t, base, path)?;
        if t.get(&id).is_some_and(|n| n.folder) {
            return Err(GraphError::invalid(
                "Cannot upload content to a folder; address a file name under it.",
            ));
        }
        return Ok(Target::Item(id));
    }
    let (parent, name) = resolve::parent_and_name(t, base, path)?;
    if !t.get(&parent).is_some_and(|n| n.folder) {
        return Err(GraphError::invalid("The parent item is not a folder."));
    }
    crate::store::names::check_name(&name).map_err(GraphError::invalid)?;
    Ok(Target::Child { parent, name })
}

/// Fails early when the name is taken and the behaviour is `fail`.
pub fn precheck(
    t: &crate::store::Tree,
    target: &Target,
    behavior: Conflict,
) -> Result<(), GraphError> {
    if let (Target::Child { parent, name }, Conflict::Fail) = (target, behavior)
        && t.child_by_name(parent, name).is_some()
    {
        return Err(ops::OpError::Conflict(format!("The specified item name already exists. An item named '{name}' already exists in this folder.")).into());
    }
    Ok(())
}

pub async fn simple(ctx: &Ctx, it: ItemAddr, body: Body) -> Result<Response, GraphError> {
    let declared = ctx
        .headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_SIMPLE_UPLOAD) {
        return Err(too_large(
            "The file is larger than 250 MB; use an upload session (createUploadSession).",
        ));
    }
    let behavior = conflict(ctx, None, Conflict::Replace)?;
    let (base, path) = (it.base.clone(), it.path.clone());
    let target = it
        .drive
        .run(move |_, t| {
            let target = target_of(t, &base, &path)?;
            precheck(t, &target, behavior)?;
            Ok::<_, GraphError>(target)
        })
        .await?;
    let tmp = ctx
        .shared
        .tmp_dir()
        .join(format!("put-{}", crate::util::random_token()));
    let hashes = receive(&tmp, body).await;
    let hashes = match hashes {
        Ok(h) => h,
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
    };
    let spec = ctx.view_spec(&it.drive, it.prefix.clone(), false);
    let tmp2 = tmp.clone();
    let result = it
        .drive
        .run(move |d, t| {
            let (id, created) =
                ops::commit_file(d, t, &target, &tmp2, hashes, behavior, FsInfo::default())?;
            let v =
                super::json::item(&spec.view(d), t, &id).ok_or_else(GraphError::item_not_found)?;
            Ok::<_, GraphError>((v, created))
        })
        .await;
    let _ = tokio::fs::remove_file(&tmp).await;
    let (v, created) = result?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(v)).into_response())
}

async fn receive(tmp: &Path, body: Body) -> Result<crate::store::tree::Hashes, GraphError> {
    let mut file = tokio::fs::File::create(tmp)
        .await
        .map_err(|e| GraphError::internal(e.to_string()))?;
    let mut hasher = Hasher::default();
    let n = stream_into(body, &mut file, &mut hasher, MAX_SIMPLE_UPLOAD)
        .await
        .map_err(|e| match e {
            StreamError::TooLarge => too_large(
                "The file is larger than 250 MB; use an upload session (createUploadSession).",
            ),
            StreamError::Short | StreamError::Body => {
                GraphError::invalid("The request body could not be read completely.")
            }
            StreamError::Io(e) => GraphError::internal(e.to_string()),
        })?;
    Ok(hasher.finish(n, (0, 0)))
}
