//! Middleware for Graph and the pre-authenticated URLs: `request-id` /
//! `client-request-id` headers and error bodies that repeat them, and (Graph only) the
//! injected throttling and server errors.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::GraphError;
use crate::faults::{RateHeaders, Verdict};
use crate::state::AppState;

pub async fn context_layer(State(_shared): State<AppState>, req: Request, next: Next) -> Response {
    let request_id = crate::util::new_guid();
    // Graph echoes the caller's id, or uses its own request id when none was sent.
    let client_request_id = req
        .headers()
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| request_id.clone());
    let resp = next.run(req).await;
    finish(resp, &request_id, &client_request_id)
}

pub async fn graph_layer(State(shared): State<AppState>, req: Request, next: Next) -> Response {
    let request_id = crate::util::new_guid();
    let client_request_id = req
        .headers()
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| request_id.clone());
    let resp = match shared.faults.verdict() {
        Verdict::Pass { rate } => {
            let mut resp = next.run(req).await;
            if let Some(r) = rate {
                rate_headers(&mut resp, r);
            }
            resp
        }
        Verdict::Throttle {
            status,
            retry_after,
            rate,
        } => {
            tracing::debug!(status, retry_after, "injected throttling");
            let err = if status == 503 {
                GraphError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "serviceNotAvailable",
                    "The service is temporarily unavailable. Please retry after the interval given in Retry-After.",
                )
            } else {
                GraphError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "activityLimitReached",
                    "The request has been throttled",
                )
            };
            let mut resp = err
                .with_header("retry-after", retry_after.to_string())
                .into_response();
            if let Some(r) = rate {
                rate_headers(&mut resp, r);
            }
            resp
        }
        Verdict::ServerError(status) => {
            let (code, message) = match status {
                502 => ("badGateway", "Bad Gateway"),
                503 => (
                    "serviceNotAvailable",
                    "The service is temporarily unavailable.",
                ),
                504 => ("gatewayTimeout", "The operation timed out."),
                _ => ("generalException", "An unspecified error has occurred."),
            };
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            GraphError::new(status, code, message).into_response()
        }
    };
    finish(resp, &request_id, &client_request_id)
}

fn rate_headers(resp: &mut Response, r: RateHeaders) {
    let h = resp.headers_mut();
    h.insert("ratelimit-limit", HeaderValue::from(r.limit));
    h.insert("ratelimit-remaining", HeaderValue::from(r.remaining));
    h.insert("ratelimit-reset", HeaderValue::from(r.reset));
}

fn finish(mut resp: Response, request_id: &str, client_request_id: &str) -> Response {
    if let Some(err) = resp.extensions_mut().remove::<GraphError>() {
        let headers = resp.headers().clone();
        let mut fresh = (
            err.status,
            axum::Json(err.body(request_id, client_request_id)),
        )
            .into_response();
        for (k, v) in headers.iter() {
            if k != "content-length" && k != "content-type" {
                fresh.headers_mut().insert(k.clone(), v.clone());
            }
        }
        resp = fresh;
    }
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(client_request_id) {
        h.insert("client-request-id", v);
    }
    resp
}
