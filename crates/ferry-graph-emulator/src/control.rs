//! Emulator-only endpoints under `/_emulator/...`: faults, device-code approval, health,
//! request counts, and the pre-authenticated download / upload / copy-monitor URLs.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::faults::Faults;
use crate::graph::{copy, download, session};
use crate::identity::device::{self, DecisionError};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/_emulator/health",
            get(|| async { Json(json!({"status": "ok"})) }),
        )
        .route("/_emulator/stats", get(stats))
        .route(
            "/_emulator/faults",
            get(get_faults).put(put_faults).delete(clear_faults),
        )
        .route("/_emulator/device", get(device_page))
        .route("/_emulator/device/approve", post(approve))
        .route("/_emulator/device/deny", post(deny))
}

pub fn pre_authenticated_routes() -> Router<AppState> {
    Router::new()
        .route("/_emulator/download/{token}", get(download::serve))
        .route(
            "/_emulator/upload/{id}",
            get(session::status)
                .put(session::put)
                .delete(session::cancel)
                .post(session::finish),
        )
        .route("/_emulator/monitor/{id}", get(copy::monitor))
}

/// Requests counted since start: `{"graph_requests": N, "transfer_requests": M}`.
async fn stats(State(shared): State<AppState>) -> Json<serde_json::Value> {
    use std::sync::atomic::Ordering::Relaxed;
    Json(json!({
        "graph_requests": shared.counts.graph.load(Relaxed),
        "transfer_requests": shared.counts.transfer.load(Relaxed),
    }))
}

async fn get_faults(State(shared): State<AppState>) -> Json<Faults> {
    Json(shared.faults.get())
}

async fn put_faults(
    State(shared): State<AppState>,
    body: Result<Json<Faults>, axum::extract::rejection::JsonRejection>,
) -> Response {
    match body {
        Ok(Json(f)) => {
            tracing::info!(faults = ?f, "faults set");
            shared.faults.set(f.clone());
            Json(f).into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": e.body_text()})),
        )
            .into_response(),
    }
}

async fn clear_faults(State(shared): State<AppState>) -> StatusCode {
    shared.faults.clear();
    StatusCode::NO_CONTENT
}

async fn device_page() -> Html<&'static str> {
    Html(
        "<!doctype html><title>ferry emulator device login</title><h1>Device sign-in (emulator)</h1>\
         <p>POST <code>/_emulator/device/approve</code> with JSON <code>{\"user_code\": \"...\"}</code> \
         to approve a device code (optionally <code>\"user\"</code>: a user id or UPN).</p>",
    )
}

#[derive(Debug, Deserialize)]
struct Decision {
    user_code: String,
    #[serde(default)]
    user: Option<String>,
}

async fn approve(State(shared): State<AppState>, Json(d): Json<Decision>) -> Response {
    decide(&shared, d, true)
}

async fn deny(State(shared): State<AppState>, Json(d): Json<Decision>) -> Response {
    decide(&shared, d, false)
}

fn decide(shared: &AppState, d: Decision, approve: bool) -> Response {
    match device::decide(shared, &d.user_code, d.user.as_deref(), approve) {
        Ok(()) => Json(json!({"user_code": d.user_code, "approved": approve})).into_response(),
        Err(DecisionError::UnknownCode) => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "unknown user_code"})),
        )
            .into_response(),
        Err(DecisionError::UnknownUser) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unknown user"})),
        )
            .into_response(),
        Err(DecisionError::NotPending) => (
            StatusCode::CONFLICT,
            Json(json!({"error": "device code already decided"})),
        )
            .into_response(),
    }
}
