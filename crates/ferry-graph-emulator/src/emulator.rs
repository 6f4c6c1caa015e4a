//! `Emulator`: runs the server on an ephemeral 127.0.0.1 port for tests; stops on drop.

use std::sync::Arc;

use tokio::sync::oneshot;

use crate::config::EmulatorConfig;
use crate::error::Error;
use crate::faults::FaultsHandle;
use crate::state::{AppState, Shared};

#[derive(Debug)]
pub struct Emulator {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    shared: AppState,
    stop: Option<oneshot::Sender<()>>,
}

impl Emulator {
    /// Starts on 127.0.0.1 with an ephemeral port. Panics if it cannot start; use
    /// [`Emulator::try_start`] to handle the error.
    pub async fn start(config: EmulatorConfig) -> Self {
        match Self::try_start(config).await {
            Ok(e) => e,
            Err(e) => panic!("starting the graph emulator: {e}"),
        }
    }

    pub async fn try_start(config: EmulatorConfig) -> Result<Self, Error> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared::new(config, url.clone())?);
        let (tx, rx) = oneshot::channel::<()>();
        let server_state = shared.clone();
        tokio::spawn(async move {
            let shutdown = async {
                let _ = rx.await;
            };
            if let Err(e) = crate::server::serve_shared(listener, server_state, shutdown).await {
                tracing::error!(error = %e, "graph emulator stopped");
            }
        });
        Ok(Emulator {
            url,
            shared,
            stop: Some(tx),
        })
    }

    /// The identity authority (like `https://login.microsoftonline.com`).
    pub fn authority(&self) -> String {
        self.url.clone()
    }

    /// The Graph base URL (like `https://graph.microsoft.com/v1.0`).
    pub fn graph_url(&self) -> String {
        format!("{}/v1.0", self.url)
    }

    /// Changes faults at runtime.
    pub fn faults(&self) -> FaultsHandle {
        self.shared.faults.clone()
    }

    /// Graph API requests served so far (what `GET /_emulator/stats` calls `graph_requests`).
    pub fn graph_requests(&self) -> u64 {
        self.shared
            .counts
            .graph
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Approves a pending device code as the first configured user, as a person entering
    /// the code in a browser would. Returns false for unknown or already used codes.
    pub fn approve_device_code(&self, user_code: &str) -> bool {
        crate::identity::device::decide(&self.shared, user_code, None, true).is_ok()
    }

    /// The folder holding the drives' files.
    pub fn root(&self) -> &std::path::Path {
        &self.shared.config.root
    }

    /// The on-disk folder of a drive, by drive id.
    pub fn drive_folder(&self, drive_id: &str) -> Option<std::path::PathBuf> {
        self.shared.drives.get(drive_id).map(|d| d.dir.clone())
    }

    /// Drive ids in configuration order.
    pub fn drive_ids(&self) -> Vec<String> {
        self.shared
            .drives
            .all()
            .iter()
            .map(|d| d.id.clone())
            .collect()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.shared.drives.flush();
    }
}
