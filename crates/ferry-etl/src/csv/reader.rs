//! Streaming CSV -> Arrow record batches, with per-row rejects.

use std::fmt;
use std::io::Read;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use csv::ByteRecord;

use super::scan::{Meta, Records};
use super::types::{Value, parse_value};
use super::{Column, ColumnType, Dialect, Error, ROW_NUMBER_COLUMN};

/// Longest `Reject::raw`, in bytes.
const RAW_LIMIT: usize = 4096;
/// Longest value quoted in a reject reason, in characters.
const REASON_VALUE_CHARS: usize = 80;

/// One row the reader could not take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// 1-based physical line where the record starts.
    pub line: u64,
    /// The record's text, lossy UTF-8, at most 4096 bytes (cut short with "…"). It is
    /// rebuilt from the parsed fields (joined by the delimiter, quoted where needed), so
    /// quoting may differ from the original bytes.
    pub raw: String,
    /// Why, e.g. `expected 4 fields, found 5`.
    pub reason: String,
}

/// A batch of good rows plus the rejects met while reading them.
#[derive(Debug)]
pub struct Batch {
    pub rows: RecordBatch,
    pub rejects: Vec<Reject>,
}

/// Reads records from `input` (which starts at the beginning of the file; the header, if any,
/// is skipped) and yields batches of up to `batch_rows` good rows.
///
/// The schema is `_ferry_row` (Int64, not null: the 1-based record number after the header,
/// counting rejected records too) followed by the columns, all nullable. Text values are kept
/// as they are (an empty string stays ""); an empty value is NULL in other columns.
///
/// A record is rejected, never failing the file, when: its quoted field is never closed; it is
/// longer than `max_record_bytes`; it has the wrong number of fields; a field is not valid
/// UTF-8; a value does not parse as its column type; or a text value holds a NUL byte
/// (Postgres text cannot store it).
///
/// Memory is bounded by the batch: a batch also ends after `batch_rows` rejects. A too-long
/// record is never held whole: the parser gets its first `max_record_bytes` bytes and the rest
/// is skipped while scanning (peak for that record is about `max_record_bytes` of field bytes
/// plus 8 bytes per field, i.e. up to ~9x for a record made only of delimiters).
/// `batch_rows` and `max_record_bytes` are at least 1.
///
/// The last batch may have no rows but carry rejects. An IO error ends the iteration with
/// `Err` (rows of the unfinished batch are dropped).
pub struct Reader<R> {
    records: Records<R>,
    dialect: Dialect,
    columns: Vec<Column>,
    schema: SchemaRef,
    batch_rows: usize,
    max_record_bytes: usize,
    header_pending: bool,
    record_no: i64,
    cells: Vec<Option<Value>>,
    done: bool,
}

impl<R> fmt::Debug for Reader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("dialect", &self.dialect)
            .field("columns", &self.columns)
            .field("batch_rows", &self.batch_rows)
            .field("max_record_bytes", &self.max_record_bytes)
            .field("record_no", &self.record_no)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<R: Read> Reader<R> {
    pub fn new(
        input: R,
        dialect: Dialect,
        columns: Vec<Column>,
        batch_rows: usize,
        max_record_bytes: usize,
    ) -> Self {
        let max_record_bytes = max_record_bytes.max(1);
        let mut fields = vec![Field::new(ROW_NUMBER_COLUMN, DataType::Int64, false)];
        fields.extend(
            columns
                .iter()
                .map(|c| Field::new(&c.name, c.kind.arrow(), true)),
        );
        Reader {
            records: Records::new(input, dialect, max_record_bytes),
            dialect,
            schema: Arc::new(Schema::new(fields)),
            cells: Vec::with_capacity(columns.len()),
            columns,
            batch_rows: batch_rows.max(1),
            max_record_bytes,
            header_pending: dialect.has_header,
            record_no: 0,
            done: false,
        }
    }

    /// The schema of every batch's `rows`.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn next_batch(&mut self) -> Result<Option<Batch>, Error> {
        let mut rows = Rows::new(&self.columns, self.batch_rows);
        let mut rejects = Vec::new();
        while rows.len < self.batch_rows && rejects.len() < self.batch_rows {
            let Some((record, meta)) = self.records.next()? else {
                self.done = true;
                break;
            };
            if std::mem::take(&mut self.header_pending) {
                continue;
            }
            self.record_no += 1;
            let checked = check(
                record,
                meta,
                &self.columns,
                self.max_record_bytes,
                &mut self.cells,
            );
            match checked {
                Ok(()) => rows.push(self.record_no, record, &self.cells),
                Err(reason) => rejects.push(Reject {
                    line: meta.line,
                    raw: raw_text(record, self.dialect),
                    reason,
                }),
            }
        }
        if rows.len == 0 && rejects.is_empty() {
            return Ok(None);
        }
        Ok(Some(Batch {
            rows: rows.finish(&self.schema)?,
            rejects,
        }))
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Result<Batch, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.next_batch();
        if next.is_err() {
            self.done = true;
        }
        next.transpose()
    }
}

/// Checks a record and parses its values into `cells` (`None` = NULL, or a Text value,
/// which is taken from the record itself). `Err` holds the reject reason.
fn check(
    record: &ByteRecord,
    meta: Meta,
    columns: &[Column],
    max_record_bytes: usize,
    cells: &mut Vec<Option<Value>>,
) -> Result<(), String> {
    if meta.unterminated {
        return Err("unterminated quoted field".into());
    }
    if meta.too_long {
        return Err(format!("record longer than {max_record_bytes} bytes"));
    }
    if record.len() != columns.len() {
        return Err(format!(
            "expected {} fields, found {}",
            columns.len(),
            record.len()
        ));
    }
    cells.clear();
    for (i, (field, column)) in record.iter().zip(columns).enumerate() {
        let name = &column.name;
        let Ok(text) = std::str::from_utf8(field) else {
            return Err(format!(
                "invalid UTF-8 in field {} (column {name:?})",
                i + 1
            ));
        };
        let cell = match column.kind {
            ColumnType::Text if text.contains('\0') => {
                return Err(format!("column {name:?}: text contains a NUL byte"));
            }
            ColumnType::Text => None,
            _ if text.is_empty() => None,
            kind => Some(parse_value(kind, text).ok_or_else(|| {
                format!(
                    "column {name:?}: {:?} is not a {}",
                    clip(text),
                    kind.postgres()
                )
            })?),
        };
        cells.push(cell);
    }
    Ok(())
}

fn clip(text: &str) -> String {
    match text.char_indices().nth(REASON_VALUE_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// The record's fields joined by the delimiter, quoted where needed, cut at [`RAW_LIMIT`].
fn raw_text(record: &ByteRecord, dialect: Dialect) -> String {
    // A few bytes over the limit are enough to know the text must be cut.
    let cap = RAW_LIMIT + 8;
    let mut out = Vec::new();
    let push = |bytes: &[u8], out: &mut Vec<u8>| {
        let room = cap.saturating_sub(out.len());
        out.extend_from_slice(&bytes[..bytes.len().min(room)]);
    };
    let (d, q) = (dialect.delimiter, dialect.quote);
    for (i, field) in record.iter().enumerate() {
        if i > 0 {
            push(&[d], &mut out);
        }
        if field
            .iter()
            .any(|&b| b == d || b == q || b == b'\n' || b == b'\r')
        {
            push(&[q], &mut out);
            for part in field.split_inclusive(|&b| b == q) {
                push(part, &mut out);
                if part.ends_with(&[q]) {
                    push(&[q], &mut out);
                }
            }
            push(&[q], &mut out);
        } else {
            push(field, &mut out);
        }
        if out.len() >= cap {
            break;
        }
    }
    let mut text = String::from_utf8_lossy(&out).into_owned();
    if text.len() > RAW_LIMIT {
        let end = text.floor_char_boundary(RAW_LIMIT - '…'.len_utf8());
        text.truncate(end);
        text.push('…');
    }
    text
}

/// Column builders for one batch.
struct Rows {
    len: usize,
    row_numbers: Int64Builder,
    columns: Vec<ColumnBuilder>,
}

/// Builds one typed column of a batch.
pub(crate) enum ColumnBuilder {
    Bool(BooleanBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
    Text(StringBuilder),
}

impl ColumnBuilder {
    pub(crate) fn new(kind: ColumnType, capacity: usize) -> Self {
        match kind {
            ColumnType::Bool => ColumnBuilder::Bool(BooleanBuilder::with_capacity(capacity)),
            ColumnType::Int64 => ColumnBuilder::Int(Int64Builder::with_capacity(capacity)),
            ColumnType::Float64 => ColumnBuilder::Float(Float64Builder::with_capacity(capacity)),
            ColumnType::Date => ColumnBuilder::Date(Date32Builder::with_capacity(capacity)),
            ColumnType::Timestamp => {
                ColumnBuilder::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity))
            }
            ColumnType::TimestampTz => ColumnBuilder::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            ),
            ColumnType::Text => {
                ColumnBuilder::Text(StringBuilder::with_capacity(capacity, capacity * 16))
            }
        }
    }

    /// Appends a checked value: a parsed `cell` for typed columns, `text` for text ones
    /// (`None` is NULL).
    pub(crate) fn append(&mut self, cell: Option<Value>, text: Option<&str>) {
        match (self, cell) {
            (ColumnBuilder::Text(b), _) => b.append_option(text),
            (ColumnBuilder::Bool(b), Some(Value::Bool(v))) => b.append_value(v),
            (ColumnBuilder::Int(b), Some(Value::Int(v))) => b.append_value(v),
            (ColumnBuilder::Float(b), Some(Value::Float(v))) => b.append_value(v),
            (ColumnBuilder::Date(b), Some(Value::Days(v))) => b.append_value(v),
            (ColumnBuilder::Timestamp(b), Some(Value::Micros(v))) => b.append_value(v),
            (ColumnBuilder::Bool(b), _) => b.append_null(),
            (ColumnBuilder::Int(b), _) => b.append_null(),
            (ColumnBuilder::Float(b), _) => b.append_null(),
            (ColumnBuilder::Date(b), _) => b.append_null(),
            (ColumnBuilder::Timestamp(b), _) => b.append_null(),
        }
    }

    pub(crate) fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Bool(b) => Arc::new(b.finish()),
            ColumnBuilder::Int(b) => Arc::new(b.finish()),
            ColumnBuilder::Float(b) => Arc::new(b.finish()),
            ColumnBuilder::Date(b) => Arc::new(b.finish()),
            ColumnBuilder::Timestamp(b) => Arc::new(b.finish()),
            ColumnBuilder::Text(b) => Arc::new(b.finish()),
        }
    }
}

impl Rows {
    fn new(columns: &[Column], capacity: usize) -> Self {
        Rows {
            len: 0,
            row_numbers: Int64Builder::with_capacity(capacity),
            columns: columns
                .iter()
                .map(|c| ColumnBuilder::new(c.kind, capacity))
                .collect(),
        }
    }

    /// Appends a checked row: `cells` from [`check`], text taken from `record`.
    fn push(&mut self, row_number: i64, record: &ByteRecord, cells: &[Option<Value>]) {
        self.len += 1;
        self.row_numbers.append_value(row_number);
        for ((builder, cell), field) in self.columns.iter_mut().zip(cells).zip(record) {
            // Only text columns take the field itself (`check` validated its UTF-8).
            let text = match builder {
                ColumnBuilder::Text(_) => std::str::from_utf8(field).ok(),
                _ => None,
            };
            builder.append(*cell, text);
        }
    }

    fn finish(mut self, schema: &SchemaRef) -> Result<RecordBatch, Error> {
        let mut arrays: Vec<ArrayRef> = vec![Arc::new(self.row_numbers.finish())];
        arrays.extend(self.columns.iter_mut().map(ColumnBuilder::finish));
        Ok(RecordBatch::try_new(Arc::clone(schema), arrays)?)
    }
}
