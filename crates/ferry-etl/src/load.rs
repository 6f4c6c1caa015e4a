//! Loading one file into its table inside the caller's transaction: the file is decoded on
//! a blocking thread into Arrow batches, encoded as Postgres binary COPY (pgpq) and streamed
//! into `COPY ... FROM STDIN (FORMAT binary)`; bad rows come back as rejects.

use std::collections::HashMap;
use std::io::Read;
use std::io::Seek as _;
use std::sync::{Arc, Mutex};

use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bytes::{Bytes, BytesMut};
use futures::SinkExt as _;
use pgpq::pg_schema::PostgresType;
use serde::Serialize;
use sha2::Digest as _;
use tokio::sync::mpsc;

use crate::contract::Contract;
use crate::csv::{self, ColumnType, Reject};
use crate::dataset::{Compression, Format, Placement, quote_ident};
use crate::decode::{self, Shape};
use crate::error::{Error, Result};
use crate::source::Fetched;

/// Limits that keep one file from hurting the run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A file whose rejected share of rows is above this fails (and only that file).
    pub max_reject_rate: f64,
    /// Rejects kept per file in `ferry.etl_rejects` (all are counted).
    pub max_stored_rejects: usize,
    /// Longer records are rejected.
    pub max_record_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_reject_rate: 0.1,
            max_stored_rejects: 10_000,
            max_record_bytes: 16 * 1024 * 1024,
        }
    }
}

/// A table column as loaded: its name and Postgres type (as `format_type` prints it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub pg_type: String,
}

/// What loading one file did.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub columns: Vec<ColumnInfo>,
    pub rows: u64,
    pub rejected: u64,
    /// The first `max_stored_rejects` rejects.
    pub rejects: Vec<Reject>,
    pub sha256: String,
    pub bytes: u64,
}

/// `schema.table`.
#[derive(Debug, Clone)]
pub struct Table {
    pub schema: String,
    pub name: String,
}

impl Table {
    /// Quoted for SQL.
    pub fn sql(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// The column naming the `ferry.onedrive_ingest` record of each row's file version.
pub const INGEST_COLUMN: &str = "_ferry_ingest";

const SAMPLE_BYTES: u64 = 1024 * 1024;
const SAMPLE_ROWS: usize = 10_000;
const BATCH_ROWS: usize = 8192;
/// COPY data is sent in chunks of about this size.
const CHUNK_BYTES: usize = 1024 * 1024;

/// Where a file version's rows go.
#[derive(Debug, Clone)]
pub struct Target {
    pub table: Table,
    /// The version's `ferry.onedrive_ingest` id, written into every row as `_ferry_ingest`.
    pub ingest_id: i64,
    /// Ingest ids of earlier versions of the same file whose rows this version replaces.
    pub replaces: Vec<i64>,
}

/// Loads a file into its target table (created if missing), replacing the rows of the
/// versions it supersedes.
pub async fn load(
    tx: &tokio_postgres::Transaction<'_>,
    target: &Target,
    file: &Fetched,
    placement: &Placement,
    contract: &Contract,
    limits: Limits,
) -> Result<Loaded> {
    let table = &target.table;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {}",
        quote_ident(&table.schema)
    ))
    .await?;
    let existing = table_columns(tx, table).await?;
    let (shape, columns) = {
        let (file, placement, existing) = (file.clone(), placement.clone(), existing.clone());
        let typed = contract.columns.clone();
        blocking(move || probe(&file, &placement, &typed, &existing)).await?
    };
    if existing.is_empty() {
        create_table(tx, table, &columns).await?;
    } else if existing != columns {
        return Err(Error::SchemaMismatch {
            table: table.to_string(),
            table_columns: describe(&existing),
            file_columns: describe(&columns),
        });
    }
    if !target.replaces.is_empty() {
        tx.execute(
            &format!("DELETE FROM {} WHERE _ferry_ingest = ANY($1)", table.sql()),
            &[&target.replaces],
        )
        .await?;
    }
    let column_list: Vec<String> = [INGEST_COLUMN, csv::ROW_NUMBER_COLUMN]
        .into_iter()
        .map(str::to_owned)
        .chain(columns.iter().map(|c| quote_ident(&c.name)))
        .collect();
    let copy = format!(
        "COPY {} ({}) FROM STDIN (FORMAT binary)",
        table.sql(),
        column_list.join(", ")
    );
    let sink = tx.copy_in::<_, Bytes>(&copy).await?;
    let mut sink = std::pin::pin!(sink);
    let (tx_msg, mut rx) = mpsc::channel::<Msg>(4);
    let parser = {
        let (file, placement, ingest_id) = (file.clone(), placement.clone(), target.ingest_id);
        tokio::task::spawn_blocking(move || {
            feed(&file, &placement, &shape, ingest_id, limits, &tx_msg)
        })
    };
    let mut loaded = Loaded {
        columns,
        ..Loaded::default()
    };
    let mut copy_error = None;
    while let Some(msg) = rx.recv().await {
        match msg {
            Msg::Data(bytes) => {
                if copy_error.is_none()
                    && let Err(e) = sink.send(bytes).await
                {
                    // Keep draining so the parser finishes; the error is reported below.
                    copy_error = Some(e);
                }
            }
            Msg::Rejects(rejects) => {
                loaded.rejected += rejects.len() as u64;
                let room = limits
                    .max_stored_rejects
                    .saturating_sub(loaded.rejects.len());
                loaded.rejects.extend(rejects.into_iter().take(room));
            }
        }
    }
    let hashed = parser
        .await
        .map_err(|e| Error::File(format!("the parser stopped: {e}")))??;
    if let Some(e) = copy_error {
        return Err(e.into());
    }
    loaded.rows = sink.as_mut().finish().await?;
    loaded.sha256 = hashed.sha256;
    loaded.bytes = hashed.bytes;
    let total = loaded.rows + loaded.rejected;
    if total > 0 && loaded.rejected as f64 / total as f64 > limits.max_reject_rate {
        return Err(Error::RejectRate {
            rejected: loaded.rejected,
            total,
            max: limits.max_reject_rate,
            loaded: Box::new(loaded),
        });
    }
    Ok(loaded)
}

enum Msg {
    Data(Bytes),
    Rejects(Vec<Reject>),
}

struct Hashed {
    sha256: String,
    bytes: u64,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::File(format!("the reader stopped: {e}")))?
}

/// How to read the file, and the columns it fills: for CSV the table's types (so later
/// files of a version conform to the first), else the contract's, else inferred ones.
fn probe(
    file: &Fetched,
    placement: &Placement,
    typed: &[csv::Column],
    existing: &[ColumnInfo],
) -> Result<(Shape, Vec<ColumnInfo>)> {
    match placement.format {
        Format::Csv | Format::Tsv => {
            let mut sample = Vec::new();
            decode::open_stream(file, placement.compression, |f| Box::new(f))?
                .take(SAMPLE_BYTES)
                .read_to_end(&mut sample)
                .map_err(|e| Error::File(format!("reading the file: {e}")))?;
            let mut dialect = csv::sniff(&sample);
            if placement.format == Format::Tsv {
                dialect.delimiter = b'\t';
            }
            let mut columns = csv::infer(&sample, dialect, SAMPLE_ROWS);
            if columns.is_empty() {
                return Err(Error::File("the file has no columns".into()));
            }
            for want in typed {
                let column = columns
                    .iter_mut()
                    .find(|c| c.name == want.name)
                    .ok_or_else(|| {
                        Error::Contract(format!(
                            "the dataset contract names column {:?}, which the file does not have",
                            want.name
                        ))
                    })?;
                column.kind = want.kind;
            }
            let same_names = existing.len() == columns.len()
                && existing.iter().zip(&columns).all(|(e, c)| e.name == c.name);
            if same_names {
                for (c, e) in columns.iter_mut().zip(existing) {
                    c.kind = ColumnType::parse(&e.pg_type).unwrap_or(ColumnType::Text);
                }
            }
            let info = columns
                .iter()
                .map(|c| ColumnInfo {
                    name: c.name.clone(),
                    pg_type: canonical(c.kind.postgres()),
                })
                .collect();
            let info = if same_names { existing.to_vec() } else { info };
            Ok((Shape::Csv { dialect, columns }, info))
        }
        Format::Json | Format::Jsonl => {
            let columns: Vec<ColumnInfo> = typed
                .iter()
                .map(|c| ColumnInfo {
                    name: c.name.clone(),
                    pg_type: canonical(c.kind.postgres()),
                })
                .chain(std::iter::once(ColumnInfo {
                    name: decode::json::RECORD_COLUMN.to_owned(),
                    pg_type: "jsonb".to_owned(),
                }))
                .collect();
            if typed.iter().any(|c| c.name == decode::json::RECORD_COLUMN) {
                return Err(Error::Contract(
                    "the dataset contract names a column \"record\", which is where JSON records go"
                        .into(),
                ));
            }
            if !existing.is_empty() && existing != columns.as_slice() {
                return Err(Error::Contract(format!(
                    "the version's table has the columns ({}) and the dataset contract asks for \
                     ({}); a changed contract applies to new versions",
                    describe(existing).join(", "),
                    describe(&columns).join(", ")
                )));
            }
            let typed = typed.to_vec();
            Ok((Shape::Json { typed }, columns))
        }
        Format::Parquet => {
            if placement.compression != Compression::None {
                return Err(Error::File(
                    "compressed Parquet files are not read (Parquet compresses inside)".into(),
                ));
            }
            let (schema, jsonb) = decode::parquet::schema_of(file)?;
            Ok((Shape::Parquet, pg_columns(&schema, &jsonb)?))
        }
    }
}

/// Postgres columns for an Arrow schema (after `_ferry_row`), as pgpq will encode them.
fn pg_columns(schema: &SchemaRef, jsonb: &[String]) -> Result<Vec<ColumnInfo>> {
    let encoder = encoder(schema, jsonb)?;
    let pg = encoder.schema();
    Ok(schema
        .fields()
        .iter()
        .zip(pg.columns)
        .skip(1)
        .map(|(field, column)| ColumnInfo {
            name: field.name().clone(),
            pg_type: sql_type(&column.data_type, field.data_type()),
        })
        .collect())
}

/// `format_type`'s name for what pgpq writes (a zoned Arrow timestamp is `timestamptz`).
fn sql_type(pg: &PostgresType, arrow: &DataType) -> String {
    match pg {
        PostgresType::Timestamp if matches!(arrow, DataType::Timestamp(_, Some(_))) => {
            "timestamp with time zone".into()
        }
        PostgresType::List(inner) => {
            let item = match arrow {
                DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                    f.data_type().clone()
                }
                other => other.clone(),
            };
            format!("{}[]", sql_type(&inner.data_type, &item))
        }
        other => canonical(&other.name().unwrap_or_default()),
    }
}

/// A type name as `format_type` prints it, so table and file can be compared.
fn canonical(name: &str) -> String {
    match name.to_ascii_lowercase().as_str() {
        "bool" | "boolean" => "boolean",
        "int2" | "smallint" => "smallint",
        "int4" | "integer" => "integer",
        "int8" | "bigint" => "bigint",
        "float4" | "real" => "real",
        "float8" | "double precision" => "double precision",
        "timestamp" | "timestamp without time zone" => "timestamp without time zone",
        "timestamptz" | "timestamp with time zone" => "timestamp with time zone",
        "time" | "time without time zone" => "time without time zone",
        "char" => "\"char\"",
        other => return other.to_owned(),
    }
    .to_owned()
}

fn describe(columns: &[ColumnInfo]) -> Vec<String> {
    columns
        .iter()
        .map(|c| format!("{} {}", c.name, c.pg_type))
        .collect()
}

async fn create_table(
    tx: &tokio_postgres::Transaction<'_>,
    table: &Table,
    columns: &[ColumnInfo],
) -> Result<()> {
    let defs: Vec<String> = columns
        .iter()
        .map(|c| format!("{} {}", quote_ident(&c.name), c.pg_type))
        .collect();
    // No index: even a BRIN one adds a quarter to COPY's server time, and only an edited
    // file's replacement needs to find rows by `_ferry_ingest` (one scan, rarely).
    tx.batch_execute(&format!(
        "CREATE UNLOGGED TABLE {t} (
             {INGEST_COLUMN} bigint NOT NULL,
             _ferry_row bigint NOT NULL,
             {}
         );
         ALTER TABLE {t} ENABLE ROW LEVEL SECURITY;",
        defs.join(",\n"),
        t = table.sql(),
    ))
    .await?;
    Ok(())
}

/// The data columns of a table (ferry's own `_ferry_*` left out), in order.
pub async fn table_columns(
    client: &impl tokio_postgres::GenericClient,
    table: &Table,
) -> Result<Vec<ColumnInfo>> {
    let rows = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod)
             FROM pg_attribute a
             JOIN pg_class c ON c.oid = a.attrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum",
            &[&table.schema, &table.name],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| ColumnInfo {
            name: r.get(0),
            pg_type: r.get(1),
        })
        .filter(|c| !c.name.starts_with("_ferry_"))
        .collect())
}

fn encoder(schema: &SchemaRef, jsonb: &[String]) -> Result<pgpq::ArrowToPostgresBinaryEncoder> {
    let fail = |e: pgpq::error::ErrorKind| Error::File(format!("cannot load these columns: {e}"));
    let builders: HashMap<String, pgpq::encoders::EncoderBuilder> =
        pgpq::build_encoders(schema.fields())
            .map_err(fail)?
            .into_iter()
            .map(|(name, builder)| {
                if !jsonb.contains(&name) {
                    return Ok((name, builder));
                }
                let field = Arc::new(
                    schema
                        .field_with_name(&name)
                        .map_err(|e| Error::File(e.to_string()))?
                        .clone(),
                );
                let json = pgpq::encoders::StringEncoderBuilder::new_with_output(
                    field,
                    PostgresType::Jsonb,
                )
                .map_err(fail)?;
                Ok((name, pgpq::encoders::EncoderBuilder::String(json)))
            })
            .collect::<Result<_>>()?;
    pgpq::ArrowToPostgresBinaryEncoder::try_new_with_encoders(schema, &builders).map_err(fail)
}

/// Runs on a blocking thread: file -> Arrow batches -> binary COPY chunks.
fn feed(
    file: &Fetched,
    placement: &Placement,
    shape: &Shape,
    ingest_id: i64,
    limits: Limits,
    out: &mpsc::Sender<Msg>,
) -> Result<Hashed> {
    let hash = Arc::new(Mutex::new((sha2::Sha256::new(), 0u64)));
    let input = {
        let hash = hash.clone();
        decode::open_stream(file, placement.compression, move |plain| {
            Box::new(HashingReader { inner: plain, hash })
        })?
    };
    let decoder = decode::open(
        shape,
        placement.format,
        input,
        file,
        BATCH_ROWS,
        limits.max_record_bytes,
    )?;
    let schema = with_ingest_column(&decoder.schema);
    let mut encoder = encoder(&schema, &decoder.jsonb)?;
    let mut buf = BytesMut::with_capacity(CHUNK_BYTES * 2);
    let encode_err = |e: pgpq::error::ErrorKind| Error::File(format!("encoding rows: {e}"));
    encoder.write_header(&mut buf).map_err(encode_err)?;
    // A closed channel means the loader gave up; stop quietly.
    let send = |msg| out.blocking_send(msg).is_ok();
    for batch in decoder.batches {
        let batch = batch?;
        if !batch.rejects.is_empty() && !send(Msg::Rejects(batch.rejects)) {
            return Ok(finish_hash(&hash));
        }
        let ingest: ArrayRef = Arc::new(Int64Array::from_value(ingest_id, batch.rows.num_rows()));
        let rows = RecordBatch::try_new(
            schema.clone(),
            std::iter::once(ingest)
                .chain(batch.rows.columns().iter().cloned())
                .collect(),
        )
        .map_err(|e| Error::File(format!("encoding rows: {e}")))?;
        encoder.write_batch(&rows, &mut buf).map_err(encode_err)?;
        if buf.len() >= CHUNK_BYTES && !send(Msg::Data(buf.split().freeze())) {
            return Ok(finish_hash(&hash));
        }
    }
    encoder.write_footer(&mut buf).map_err(encode_err)?;
    send(Msg::Data(buf.freeze()));
    // The hash covers the whole file: what the decoder did not read through the stream
    // (Parquet reads its own way, footer first; a JSON array may be followed by spaces).
    let done = hash.lock().unwrap_or_else(|e| e.into_inner()).1;
    let path = &file.path;
    let mut rest = file.open()?;
    rest.seek(std::io::SeekFrom::Start(done))
        .map_err(Error::io("read", path))?;
    let mut rest = HashingReader {
        inner: rest,
        hash: hash.clone(),
    };
    std::io::copy(&mut rest, &mut std::io::sink()).map_err(Error::io("read", path))?;
    Ok(finish_hash(&hash))
}

/// The decoder's schema with `_ferry_ingest` in front.
fn with_ingest_column(schema: &SchemaRef) -> SchemaRef {
    let ingest = Arc::new(Field::new(INGEST_COLUMN, DataType::Int64, false));
    Arc::new(Schema::new(
        std::iter::once(ingest)
            .chain(schema.fields().iter().cloned())
            .collect::<Vec<_>>(),
    ))
}

fn finish_hash(hash: &Mutex<(sha2::Sha256, u64)>) -> Hashed {
    let guard = hash.lock().unwrap_or_else(|e| e.into_inner());
    Hashed {
        sha256: hex::encode(guard.0.clone().finalize()),
        bytes: guard.1,
    }
}

/// Counts and hashes the file's bytes as they are read (before decompression).
struct HashingReader<R> {
    inner: R,
    hash: Arc<Mutex<(sha2::Sha256, u64)>>,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut guard = self.hash.lock().unwrap_or_else(|e| e.into_inner());
        guard.0.update(&buf[..n]);
        guard.1 += n as u64;
        Ok(n)
    }
}
