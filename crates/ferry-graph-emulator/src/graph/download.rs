//! Downloads: `GET .../content` answers 302 to a pre-authenticated URL, which serves the
//! bytes without a bearer token (an `Authorization` header is ignored), honouring `Range`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use super::error::GraphError;
use super::links::{self, LinkError};
use super::write::ItemAddr;
use super::{Ctx, resolve};
use crate::state::AppState;

pub async fn redirect(ctx: &Ctx, it: ItemAddr) -> Result<Response, GraphError> {
    let key_shared = ctx.shared.clone();
    let ttl = ctx.shared.config.download_url_lifetime.as_secs() as i64;
    let ItemAddr {
        drive, base, path, ..
    } = it;
    let token = drive
        .run(move |d, t| {
            let id = resolve::item(t, &base, &path)?;
            if t.get(&id).is_some_and(|n| n.folder) {
                return Err(GraphError::invalid(
                    "The item is a folder; only files have content.",
                ));
            }
            Ok(links::sign(&key_shared.signing_key, &d.id, &id, ttl))
        })
        .await?;
    let location = format!("{}/_emulator/download/{token}", ctx.base);
    let mut resp = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// A byte range to serve, or None for the whole file.
#[derive(Debug, PartialEq)]
enum Range {
    Whole,
    Part(u64, u64),
    Unsatisfiable,
}

fn parse_range(value: Option<&str>, size: u64) -> Range {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return Range::Whole;
    };
    if spec.contains(',') {
        // Multiple ranges are allowed to be answered with the whole body.
        return Range::Whole;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Range::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        return match b.parse::<u64>() {
            Ok(0) => Range::Unsatisfiable,
            Ok(n) if size > 0 => Range::Part(size.saturating_sub(n), size - 1),
            Ok(_) => Range::Unsatisfiable,
            Err(_) => Range::Whole,
        };
    }
    let Ok(start) = a.parse::<u64>() else {
        return Range::Whole;
    };
    if start >= size {
        return Range::Unsatisfiable;
    }
    let end = match b {
        "" => size - 1,
        b => match b.parse::<u64>() {
            Ok(e) if e >= start => e.min(size - 1),
            _ => return Range::Whole,
        },
    };
    Range::Part(start, end)
}

pub async fn serve(
    State(shared): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, GraphError> {
    let (drive_id, item_id) = links::verify(&shared.signing_key, &token).map_err(|e| match e {
        LinkError::Expired => GraphError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "The pre-authenticated download URL has expired.",
        ),
        LinkError::Invalid => GraphError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "The download URL is not valid.",
        ),
    })?;
    let drive = shared
        .drives
        .get(&drive_id)
        .ok_or_else(GraphError::item_not_found)?;
    let (path, size, name, etag) = drive
        .run(move |d, t| {
            let n = t
                .get(&item_id)
                .filter(|n| !n.folder)
                .ok_or_else(GraphError::item_not_found)?;
            Ok::<_, GraphError>((
                t.disk_path(&d.dir, &item_id),
                n.size,
                n.name.clone(),
                format!("\"{{{}}},{}\"", n.guid, n.version),
            ))
        })
        .await?;
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(|_| GraphError::item_not_found())?;
    let size = file.metadata().await.map(|m| m.len()).unwrap_or(size);
    let mut range = parse_range(
        headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        size,
    );
    if matches!(range, Range::Part(..)) && shared.faults.take_ignore_range() {
        tracing::debug!(%name, "injected fault: ignoring the Range header");
        range = Range::Whole;
    }
    let (status, start, len) = match range {
        Range::Whole => (StatusCode::OK, 0, size),
        Range::Part(a, b) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        Range::Unsatisfiable => {
            let mut resp = GraphError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "invalidRange",
                "The requested range is not satisfiable.",
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(resp);
        }
    };
    if start > 0 {
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(|e| GraphError::internal(e.to_string()))?;
    }
    let drop_midway = shared.faults.take_drop_download();
    let sent_len = if drop_midway { len / 2 } else { len };
    // Large reads: a 4 KiB default costs a blocking-pool round trip per 4 KiB.
    let stream = tokio_util::io::ReaderStream::with_capacity(file.take(sent_len), 256 * 1024);
    let body = if drop_midway {
        tracing::debug!(%name, "injected fault: dropping download midway");
        // Ending the body early with an error makes hyper abort the connection, so the
        // client sees fewer bytes than Content-Length promised.
        let tail =
            futures::stream::once(async { Err(std::io::Error::other("injected connection drop")) });
        Body::from_stream(stream.chain(tail))
    } else {
        Body::from_stream(stream)
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(super::json::mime_type(&name)),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{size}", start + len - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), Range::Whole);
        assert_eq!(parse_range(Some("bytes=0-3"), 10), Range::Part(0, 3));
        assert_eq!(parse_range(Some("bytes=5-"), 10), Range::Part(5, 9));
        assert_eq!(parse_range(Some("bytes=-3"), 10), Range::Part(7, 9));
        assert_eq!(parse_range(Some("bytes=8-100"), 10), Range::Part(8, 9));
        assert_eq!(parse_range(Some("bytes=10-"), 10), Range::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), Range::Whole);
        assert_eq!(parse_range(Some("bytes=0-"), 0), Range::Unsatisfiable);
    }
}
