use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("managed Postgres: {0}")]
    Cluster(String),
    #[error("database settings: {0}")]
    Config(String),
    #[error("migration {version} ({name}): {message}")]
    Migration {
        version: u32,
        name: &'static str,
        message: String,
    },
    #[error(transparent)]
    Private(#[from] ferry_private::ReadError),
    #[error("Postgres: {}", describe(.0))]
    Db(#[from] tokio_postgres::Error),
}

impl Error {
    /// A closure turning an io::Error into [`Error::Io`] about `path`.
    pub fn io(op: &'static str, path: impl AsRef<Path>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.as_ref().to_path_buf();
        move |source| Error::Io { op, path, source }
    }

    /// The SQLSTATE of a database error, if this is one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Db(e) => e.code().map(|c| c.code()),
            _ => None,
        }
    }
}

/// The server's message with its detail and hint, or the client-side cause.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut text = format!("{} ({})", db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                text.push_str(&format!("; {detail}"));
            }
            if let Some(hint) = db.hint() {
                text.push_str(&format!("; hint: {hint}"));
            }
            text
        }
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        }
    }
}
