//! `ferry serve s3`.

use std::sync::Arc;

use anyhow::Context;
use ferry_s3::{Gateway, KeyStore, ServerOptions, Uploads};
use ferry_store::onedrive::backend::MetaStore;
use ferry_store::{Backend, LocalBackend, OneDriveBackend};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

use crate::config::{Metadata, S3Settings, Store};

/// Starts the gateway; `on_ready` runs once it listens (with the bound address).
pub async fn run(
    settings: S3Settings,
    file: &crate::config::File,
    on_ready: impl FnOnce(std::net::SocketAddr),
) -> anyhow::Result<()> {
    let (backend, serving): (Arc<dyn Backend>, String) = match &settings.store {
        Store::Folder(root) => {
            let backend = LocalBackend::open(root)
                .with_context(|| format!("cannot serve {}", root.display()))?
                .with_durability(settings.fsync);
            (Arc::new(backend), root.display().to_string())
        }
        Store::OneDrive {
            root,
            freshness,
            metadata,
            state,
        } => {
            let config = crate::onedrive::graph_config(file)?;
            let graph = ferry_graph::GraphClient::new(&config)?;
            let meta = match metadata {
                Metadata::Embedded => MetaStore::embedded(&state.join("meta.redb"))?,
                Metadata::Postgres => {
                    let settings = crate::db::settings().await?;
                    MetaStore::postgres(settings, &config.drive.path())
                        .await
                        .context("cannot use Postgres for the gateway's metadata")?
                }
            };
            let backend = OneDriveBackend::open_with(graph, root, state, *freshness, meta)
                .with_context(|| format!("cannot serve the OneDrive folder {root}"))?;
            (
                Arc::new(backend),
                format!("onedrive {}:{root}", config.drive.path()),
            )
        }
    };
    let uploads = Uploads::open(
        &settings.uploads_dir,
        settings.upload_max_age,
        settings.fsync,
    )
    .await
    .with_context(|| {
        format!(
            "cannot use {} for multipart uploads",
            settings.uploads_dir.display()
        )
    })?;
    let keys = Arc::new(KeyStore::new(settings.keys, settings.credentials_file)?);
    let gateway = Gateway::new(backend.clone(), uploads.clone(), settings.region.clone());
    let listener = TcpListener::bind(settings.addr)
        .await
        .with_context(|| format!("cannot listen on {}", settings.addr))?;
    let local = listener.local_addr()?;
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(
        endpoint = %format!("{scheme}://{local}"),
        serving = %serving,
        access_keys = ?keys.access_key_ids(),
        fsync = settings.fsync,
        "ferry S3 gateway listening"
    );
    on_ready(local);
    let opts = ServerOptions {
        region: settings.region,
        domain: settings.domain,
        tls: settings.tls,
        shutdown_grace: settings.shutdown_grace,
    };
    ferry_s3::serve(
        listener,
        gateway,
        backend,
        uploads,
        keys,
        opts,
        shutdown_signal()?,
    )
    .await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
