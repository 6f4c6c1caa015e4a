//! CSV/TSV -> Arrow record batches, for loading into Postgres with binary COPY.
//!
//! - [`sniff`] guesses the [`Dialect`] from the first bytes of a file;
//! - [`infer`] guesses column names and [`ColumnType`]s from a sample;
//! - [`Reader`] streams the file as [`Batch`]es: an Arrow `RecordBatch` of good rows plus a
//!   [`Reject`] for every record it could not take. Bad rows never stop the file, and memory
//!   is bounded by the batch size and the record-size limit.
//!
//! Parsing uses the `csv` crate (CR, LF or CRLF line ends, quotes escaped by doubling, a
//! leading UTF-8 byte-order mark ignored, blank lines skipped).

mod dialect;
mod infer;
mod reader;
mod scan;
mod types;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use dialect::{Dialect, sniff};
pub use infer::infer;
pub(crate) use reader::ColumnBuilder;
pub use reader::{Batch, Reader, Reject};
pub use types::{Column, ColumnType};
pub(crate) use types::{Value, parse_value};

/// Name of the first column of every batch: the 1-based record number in the file.
pub const ROW_NUMBER_COLUMN: &str = "_ferry_row";

/// Why reading stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading the file: {0}")]
    Io(#[from] std::io::Error),
    /// Not expected with our settings; kept so no csv error is lost.
    #[error("parsing the file: {0}")]
    Csv(String),
    #[error("building a record batch: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

impl From<csv::Error> for Error {
    fn from(err: csv::Error) -> Self {
        match err.into_kind() {
            csv::ErrorKind::Io(err) => Error::Io(err),
            other => Error::Csv(format!("{other:?}")),
        }
    }
}
