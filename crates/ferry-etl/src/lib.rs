//! ferry's sync engine: what changed in a source -> staging -> manifest -> loaders ->
//! Postgres, exactly once per file version.
//!
//! - [`source`]: where files come from (a local folder, a OneDrive folder);
//! - [`dataset`]: the drive layout (`datasets/<name>/<version>/`) and table names;
//! - [`csv`]: CSV/TSV dialect and type detection, rows to Arrow batches with rejects;
//! - [`decode`]: every format (CSV, JSON/JSONL, Parquet; gzip and zstd) to Arrow batches;
//! - [`load`]: one file into its table through binary COPY;
//! - [`engine`]: a run, its record in `ferry.etl_runs` and its manifest;
//! - [`queue`]: the `ferry.sync_requests` queue workers share;
//! - [`alerts`]: failed runs and stale cursors, recorded and announced.

pub mod alerts;
pub mod contract;
pub mod csv;
pub mod dataset;
pub mod decode;
pub mod engine;
mod error;
pub mod layout;
pub mod load;
pub mod queue;
pub mod source;
pub mod staging;

pub use engine::{Options, Report, Trigger, sync};
pub use error::{Error, Result};
pub use source::Source;
pub use source::local::LocalSource;
pub use source::onedrive::OneDriveSource;
