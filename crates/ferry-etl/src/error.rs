use std::path::{Path, PathBuf};

use crate::load::Loaded;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Pg(#[from] ferry_pg::Error),
    /// The file cannot be loaded as it is (bad format, no columns, parser failure).
    #[error("{0}")]
    File(String),
    #[error(
        "{table} has columns {table_columns:?} but this file has {file_columns:?}; a version's files must share their columns"
    )]
    SchemaMismatch {
        table: String,
        table_columns: Vec<String>,
        file_columns: Vec<String>,
    },
    #[error("{rejected} of {total} rows rejected, more than the allowed {:.1}%", max * 100.0)]
    RejectRate {
        rejected: u64,
        total: u64,
        max: f64,
        /// What the load saw, for the record of the failure.
        loaded: Box<Loaded>,
    },
    #[error("the file changed while it was being loaded; the next run loads the new version")]
    ChangedDuringLoad,
    /// Listing the source failed (the run cannot go on).
    #[error("the source: {0}")]
    Source(String),
    /// Fetching one file failed (the file is retried next run).
    #[error("{0}; the file is loaded once the contract is mended")]
    Contract(String),
    #[error("fetching the file failed, it is retried next run: {0}")]
    Fetch(String),
    #[error("another sync of {name} is running; try again when it has finished")]
    Busy { name: String },
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        Error::Pg(ferry_pg::Error::Db(e))
    }
}

impl Error {
    pub fn io(op: &'static str, path: impl AsRef<Path>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.as_ref().to_path_buf();
        move |source| Error::Io { op, path, source }
    }
}
