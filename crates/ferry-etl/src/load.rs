//! Loading one file into its table inside the caller's transaction: the file is parsed on
//! a blocking thread into Arrow batches, encoded as Postgres binary COPY (pgpq) and
//! streamed into `COPY ... FROM STDIN (FORMAT binary)`; bad rows come back as rejects.

use std::io::Read;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use futures::SinkExt as _;
use sha2::Digest as _;
use tokio::sync::mpsc;

use crate::csv::{self, Column, ColumnType, Dialect, Reject};
use crate::dataset::{Format, quote_ident};
use crate::error::{Error, Result};

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

/// What loading one file did.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub columns: Vec<Column>,
    pub rows: u64,
    pub rejected: u64,
    /// The first `max_stored_rejects` rejects.
    pub rejects: Vec<Reject>,
    pub sha256: String,
    pub bytes: u64,
}

/// `schema.table`, quoted.
#[derive(Debug, Clone)]
pub struct Table {
    pub schema: String,
    pub name: String,
}

impl Table {
    pub fn sql(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

const SAMPLE_BYTES: usize = 1024 * 1024;
const SAMPLE_ROWS: usize = 10_000;
const BATCH_ROWS: usize = 8192;
/// COPY data is sent in chunks of about this size.
const CHUNK_BYTES: usize = 1024 * 1024;

/// Loads a CSV/TSV file into `table` (created if missing) as the rows of `file_id`,
/// replacing rows an earlier version of the same file left there.
pub async fn load_csv(
    tx: &tokio_postgres::Transaction<'_>,
    table: &Table,
    path: &Path,
    format: Format,
    file_id: &str,
    limits: Limits,
) -> Result<Loaded> {
    let sample = read_sample(path).await?;
    let mut dialect = csv::sniff(&sample);
    if format == Format::Tsv {
        dialect.delimiter = b'\t';
    }
    let inferred = csv::infer(&sample, dialect, SAMPLE_ROWS);
    if inferred.is_empty() {
        return Err(Error::File("the file has no columns".into()));
    }
    let columns = prepare_table(tx, table, &inferred).await?;
    tx.execute("SELECT set_config('ferry.file_id', $1, true)", &[&file_id])
        .await?;
    tx.execute(
        &format!("DELETE FROM {} WHERE _ferry_file_id = $1", table.sql()),
        &[&file_id],
    )
    .await?;
    let column_list: Vec<String> = std::iter::once("_ferry_row".to_owned())
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
        let path = path.to_path_buf();
        let columns = columns.clone();
        tokio::task::spawn_blocking(move || parse(&path, dialect, columns, limits, &tx_msg))
    };
    let mut loaded = Loaded {
        columns: columns.clone(),
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
    let parsed = parser
        .await
        .map_err(|e| Error::File(format!("the parser stopped: {e}")))??;
    if let Some(e) = copy_error {
        return Err(e.into());
    }
    loaded.rows = sink.as_mut().finish().await?;
    loaded.sha256 = parsed.sha256;
    loaded.bytes = parsed.bytes;
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

struct Parsed {
    sha256: String,
    bytes: u64,
}

/// Runs on a blocking thread: file -> Arrow batches -> binary COPY chunks.
fn parse(
    path: &Path,
    dialect: Dialect,
    columns: Vec<Column>,
    limits: Limits,
    out: &mpsc::Sender<Msg>,
) -> Result<Parsed> {
    let file = std::fs::File::open(path).map_err(Error::io("open", path))?;
    let mut hashed = HashingReader::new(std::io::BufReader::with_capacity(256 * 1024, file));
    let reader = csv::Reader::new(
        &mut hashed,
        dialect,
        columns,
        BATCH_ROWS,
        limits.max_record_bytes,
    );
    let mut encoder = pgpq::ArrowToPostgresBinaryEncoder::try_new(&reader.schema())
        .map_err(|e| Error::File(format!("cannot encode these columns: {e}")))?;
    let mut buf = BytesMut::with_capacity(CHUNK_BYTES * 2);
    encoder
        .write_header(&mut buf)
        .map_err(|e| Error::File(e.to_string()))?;
    // A closed channel means the loader gave up; stop quietly.
    let send = |msg| out.blocking_send(msg).is_ok();
    for batch in reader {
        let batch = batch.map_err(|e| Error::File(e.to_string()))?;
        if !batch.rejects.is_empty() && !send(Msg::Rejects(batch.rejects)) {
            return Ok(hashed.finish());
        }
        encoder
            .write_batch(&batch.rows, &mut buf)
            .map_err(|e| Error::File(e.to_string()))?;
        if buf.len() >= CHUNK_BYTES && !send(Msg::Data(buf.split().freeze())) {
            return Ok(hashed.finish());
        }
    }
    encoder
        .write_footer(&mut buf)
        .map_err(|e| Error::File(e.to_string()))?;
    send(Msg::Data(buf.freeze()));
    // Hash what the parser did not need to read (a trailing partial record, nothing else).
    std::io::copy(&mut hashed, &mut std::io::sink()).map_err(Error::io("read", path))?;
    Ok(hashed.finish())
}

async fn read_sample(path: &Path) -> Result<Vec<u8>> {
    let path: PathBuf = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&path).map_err(Error::io("open", &path))?;
        let mut sample = Vec::with_capacity(SAMPLE_BYTES);
        file.take(SAMPLE_BYTES as u64)
            .read_to_end(&mut sample)
            .map_err(Error::io("read", &path))?;
        Ok(sample)
    })
    .await
    .map_err(|e| Error::File(e.to_string()))?
}

/// Creates the table for these columns, or checks that the existing one has them; returns
/// the columns with the table's types (the table decides, so later files conform).
async fn prepare_table(
    tx: &tokio_postgres::Transaction<'_>,
    table: &Table,
    inferred: &[Column],
) -> Result<Vec<Column>> {
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {}",
        quote_ident(&table.schema)
    ))
    .await?;
    let existing = table_columns(tx, table).await?;
    if existing.is_empty() {
        let defs: Vec<String> = inferred
            .iter()
            .map(|c| format!("{} {}", quote_ident(&c.name), c.kind.postgres()))
            .collect();
        tx.batch_execute(&format!(
            "CREATE UNLOGGED TABLE {} (
                 _ferry_file_id text NOT NULL DEFAULT current_setting('ferry.file_id'),
                 _ferry_row bigint NOT NULL,
                 {}
             );
             CREATE INDEX ON {} (_ferry_file_id);
             ALTER TABLE {} ENABLE ROW LEVEL SECURITY;",
            table.sql(),
            defs.join(",\n"),
            table.sql(),
            table.sql()
        ))
        .await?;
        return Ok(inferred.to_vec());
    }
    let names = |cols: &[Column]| cols.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    if names(&existing) != names(inferred) {
        return Err(Error::SchemaMismatch {
            table: table.to_string(),
            table_columns: names(&existing),
            file_columns: names(inferred),
        });
    }
    Ok(existing)
}

/// The data columns of a table (ferry's own `_ferry_*` left out), in order.
pub async fn table_columns(
    client: &impl tokio_postgres::GenericClient,
    table: &Table,
) -> Result<Vec<Column>> {
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
        .filter_map(|r| {
            let name: String = r.get(0);
            let pg_type: String = r.get(1);
            (!name.starts_with("_ferry_")).then(|| Column {
                kind: ColumnType::parse(&pg_type).unwrap_or(ColumnType::Text),
                name,
            })
        })
        .collect())
}

/// Counts and hashes the bytes read through it.
struct HashingReader<R> {
    inner: R,
    digest: sha2::Sha256,
    bytes: u64,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            digest: sha2::Sha256::new(),
            bytes: 0,
        }
    }

    fn finish(self) -> Parsed {
        Parsed {
            sha256: hex::encode(self.digest.finalize()),
            bytes: self.bytes,
        }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digest.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}
