//! State shared by all request handlers.

use std::path::PathBuf;
use std::sync::Arc;

use axum::http::HeaderMap;
use ring::hmac;

use crate::config::EmulatorConfig;
use crate::error::Error;
use crate::faults::FaultsHandle;

pub type AppState = Arc<Shared>;

/// Name of the sidecar folder (under `root`) holding the emulator's own state.
pub const SIDECAR: &str = ".ferry-emulator";

#[derive(Debug)]
pub struct Shared {
    pub config: EmulatorConfig,
    pub faults: FaultsHandle,
    /// Signs access tokens, id tokens and pre-authenticated URLs.
    pub signing_key: hmac::Key,
    /// `http://127.0.0.1:PORT` of the listener.
    pub listen_url: String,
    pub identity: crate::identity::store::Store,
    pub drives: crate::store::Drives,
    pub sessions: crate::graph::session::Sessions,
    pub copies: crate::graph::copy::Monitors,
    pub cursors: crate::graph::delta::Cursors,
    pub counts: RequestCounts,
}

/// Requests served since start, for `GET /_emulator/stats`: what a client costs in Graph calls.
#[derive(Debug, Default)]
pub struct RequestCounts {
    /// Graph API requests (`/v1.0/...`), the ones Graph's throttling limits count.
    pub graph: std::sync::atomic::AtomicU64,
    /// Requests to pre-authenticated download and upload-session URLs.
    pub transfer: std::sync::atomic::AtomicU64,
}

impl Shared {
    pub fn new(config: EmulatorConfig, listen_url: String) -> Result<Self, Error> {
        config.validate()?;
        let sidecar = config.root.join(SIDECAR);
        std::fs::create_dir_all(sidecar.join("tmp")).map_err(|source| Error::State {
            path: sidecar.clone(),
            source,
        })?;
        let key = load_or_create_key(&sidecar.join("signing-key"))?;
        let drives = crate::store::Drives::open(&config)?;
        Ok(Shared {
            faults: FaultsHandle::new(config.faults.clone()),
            signing_key: hmac::Key::new(hmac::HMAC_SHA256, &key),
            listen_url,
            identity: Default::default(),
            drives,
            sessions: Default::default(),
            counts: Default::default(),
            copies: Default::default(),
            cursors: Default::default(),
            config,
        })
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.config.root.join(SIDECAR).join("tmp")
    }
}

/// The key persists so tokens and links stay valid across restarts.
fn load_or_create_key(path: &std::path::Path) -> Result<Vec<u8>, Error> {
    let err = |source| Error::State {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            if let Ok(key) = hex::decode(text.trim())
                && key.len() >= 32
            {
                return Ok(key);
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let key = crate::util::random_bytes::<32>().to_vec();
    std::fs::write(path, hex::encode(&key)).map_err(err)?;
    Ok(key)
}

/// The URL clients reached us by (from `Host`), so links work behind port mappings;
/// falls back to the listener address.
pub fn base_url(shared: &Shared, headers: &HeaderMap) -> String {
    headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && !h.contains(['/', ' ', '@']))
        .map(|h| format!("http://{h}"))
        .unwrap_or_else(|| shared.listen_url.clone())
}
