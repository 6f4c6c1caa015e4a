//! Builds the router and runs the server.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;

use crate::error::Error;
use crate::state::{AppState, Shared};

pub fn router(shared: AppState) -> Router {
    let graph = crate::graph::routes()
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            crate::graph::context::graph_layer,
        ))
        .layer(middleware::from_fn_with_state(shared.clone(), count_graph));
    let pre_authenticated = crate::control::pre_authenticated_routes()
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            crate::graph::context::context_layer,
        ))
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            count_transfer,
        ));
    Router::new()
        .merge(crate::identity::routes())
        .merge(graph)
        .merge(pre_authenticated)
        .merge(crate::control::routes())
        .layer(middleware::from_fn_with_state(shared.clone(), latency))
        .with_state(shared)
}

async fn count_graph(State(shared): State<AppState>, req: Request, next: Next) -> Response {
    shared.counts.graph.fetch_add(1, Ordering::Relaxed);
    next.run(req).await
}

async fn count_transfer(State(shared): State<AppState>, req: Request, next: Next) -> Response {
    shared.counts.transfer.fetch_add(1, Ordering::Relaxed);
    next.run(req).await
}

/// Injected latency applies to every endpoint.
async fn latency(State(shared): State<AppState>, req: Request, next: Next) -> Response {
    let delay = shared.faults.latency();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    tracing::debug!(method = %req.method(), uri = %req.uri(), "request");
    next.run(req).await
}

/// Serves the emulator on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: crate::config::EmulatorConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared::new(config, format!("http://{addr}"))?);
    serve_shared(listener, shared, shutdown).await
}

pub(crate) async fn serve_shared(
    listener: tokio::net::TcpListener,
    shared: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    tracing::info!(url = %shared.listen_url, root = %shared.config.root.display(), "graph emulator listening");
    // Changes are saved in the background, at most once per `SAVE_DELAY`.
    let saver = {
        let shared = shared.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(crate::store::SAVE_DELAY).await;
                let shared = shared.clone();
                let _ = tokio::task::spawn_blocking(move || shared.drives.save_if_due()).await;
            }
        })
    };
    let served = axum::serve(listener, router(shared.clone()))
        .with_graceful_shutdown(shutdown)
        .await;
    saver.abort();
    shared.drives.flush();
    Ok(served?)
}
