//! `ferry serve s3`.

use std::sync::Arc;

use anyhow::Context;
use ferry_s3::{Gateway, KeyStore, ServerOptions, Uploads};
use ferry_store::{Backend, LocalBackend};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

use crate::config::S3Settings;

/// Starts the gateway; `on_ready` runs once it listens (with the bound address).
pub async fn run(
    settings: S3Settings,
    on_ready: impl FnOnce(std::net::SocketAddr),
) -> anyhow::Result<()> {
    let backend = LocalBackend::open(&settings.root)
        .with_context(|| format!("cannot serve {}", settings.root.display()))?
        .with_durability(settings.fsync);
    let backend: Arc<dyn Backend> = Arc::new(backend);
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
        root = %settings.root.display(),
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
