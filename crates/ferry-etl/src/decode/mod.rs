//! Files to Arrow batches: each format's decoder yields `_ferry_row` plus the data columns,
//! and rejects for records it could not take. Compressed files (`.gz`, `.zst`) are
//! decompressed while streaming.

pub mod json;
pub mod parquet;

use std::io::{BufRead, BufReader, Read};

use arrow_schema::SchemaRef;

use crate::csv::{self, Batch, Column, Dialect};
use crate::dataset::{Compression, Format};
use crate::error::{Error, Result};
use crate::source::{Fetched, ReadSeek};

/// Batches of one file, and how to write them.
pub struct Decoder {
    pub schema: SchemaRef,
    /// Utf8 columns written as `jsonb`.
    pub jsonb: Vec<String>,
    pub batches: Box<dyn Iterator<Item = Result<Batch>> + Send>,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("schema", &self.schema)
            .field("jsonb", &self.jsonb)
            .finish_non_exhaustive()
    }
}

/// What reading a file needs besides its bytes: CSV's dialect and columns.
#[derive(Debug, Clone)]
pub enum Shape {
    Csv {
        dialect: Dialect,
        columns: Vec<Column>,
    },
    Json {
        /// Typed columns a dataset contract names.
        typed: Vec<Column>,
    },
    Parquet,
}

/// The file's bytes, decompressed, through `wrap` (which counts and hashes them).
pub fn open_stream(
    file: &Fetched,
    compression: Compression,
    wrap: impl FnOnce(Box<dyn ReadSeek>) -> Box<dyn Read + Send>,
) -> Result<Box<dyn BufRead + Send>> {
    let raw = BufReader::with_capacity(256 * 1024, wrap(file.open()?));
    Ok(match compression {
        Compression::None => Box::new(raw),
        Compression::Gzip => Box::new(BufReader::with_capacity(
            256 * 1024,
            flate2::bufread::MultiGzDecoder::new(raw),
        )),
        Compression::Zstd => Box::new(BufReader::with_capacity(
            256 * 1024,
            zstd::stream::read::Decoder::with_buffer(raw)
                .map_err(|e| Error::File(format!("not zstd: {e}")))?,
        )),
    })
}

/// Opens a decoder over `input` (decompressed already, except Parquet which reads `file`).
pub fn open(
    shape: &Shape,
    format: Format,
    input: Box<dyn BufRead + Send>,
    file: &Fetched,
    batch_rows: usize,
    max_record_bytes: usize,
) -> Result<Decoder> {
    Ok(match shape {
        Shape::Csv { dialect, columns } => {
            let reader = csv::Reader::new(
                input,
                *dialect,
                columns.clone(),
                batch_rows,
                max_record_bytes,
            );
            Decoder {
                schema: reader.schema(),
                jsonb: Vec::new(),
                batches: Box::new(reader.map(|b| b.map_err(|e| Error::File(e.to_string())))),
            }
        }
        Shape::Json { typed } => {
            let records: Box<dyn Iterator<Item = Result<(u64, Vec<u8>)>> + Send> = match format {
                Format::Jsonl => Box::new(json::lines(input, max_record_bytes)),
                _ => json::document(input, max_record_bytes)?,
            };
            Decoder {
                schema: json::schema(typed),
                jsonb: vec![json::RECORD_COLUMN.to_owned()],
                batches: Box::new(json::decode(
                    records,
                    typed.clone(),
                    batch_rows,
                    max_record_bytes,
                )),
            }
        }
        Shape::Parquet => {
            let (schema, jsonb) = parquet::schema_of(file)?;
            Decoder {
                schema,
                jsonb,
                batches: parquet::decode(file, batch_rows)?,
            }
        }
    })
}
