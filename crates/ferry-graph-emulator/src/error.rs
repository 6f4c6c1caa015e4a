//! The crate's error type for starting and configuring the emulator. Request-level
//! failures are not errors here: they become Graph or identity error responses.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading config {path}: {source}")]
    ConfigRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing config {path}: {source}")]
    ConfigParse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("invalid config: {0}")]
    Config(String),
    #[error("certificate for app {client_id}: {reason}")]
    Certificate { client_id: String, reason: String },
    #[error("drive state {path}: {source}")]
    State {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}
