//! Parquet files, one row group at a time through the Arrow reader. Primitive, decimal,
//! temporal and list columns keep their types (lists become Postgres arrays); structs, maps
//! and lists of them, which have no plain Postgres column type, become `jsonb`.

use std::fs::File;
use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{
    Array, ArrayRef, Int8Array, Int16Array, Int64Array, RecordBatch, RecordBatchReader as _,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use crate::csv::{Batch, ROW_NUMBER_COLUMN};
use crate::error::{Error, Result};
use crate::source::Fetched;

/// Whether a column is written as JSON text (for `jsonb`) rather than its own type.
pub fn as_json(data_type: &DataType) -> bool {
    match data_type {
        DataType::Struct(_) | DataType::Map(..) | DataType::Union(..) => true,
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            // Postgres arrays are flat and hold scalars.
            matches!(
                f.data_type(),
                DataType::List(_)
                    | DataType::LargeList(_)
                    | DataType::FixedSizeList(..)
                    | DataType::Struct(_)
                    | DataType::Map(..)
                    | DataType::Union(..)
            )
        }
        _ => false,
    }
}

/// Parquet's reader reads ranges out of order: a plain file, or an encrypted staging file.
fn builder(file: &Fetched) -> Result<Box<dyn FnOnce(usize) -> Result<ParquetRecordBatchReader>>> {
    let bad =
        |e: parquet::errors::ParquetError| Error::File(format!("not a readable Parquet file: {e}"));
    Ok(match &file.key {
        Some(key) => {
            let len = crate::staging::EncryptedReader::open(&file.path, key)
                .map_err(Error::io("open", &file.path))?
                .len();
            let b = ParquetRecordBatchReaderBuilder::try_new(crate::staging::EncryptedFile {
                path: file.path.clone(),
                key: key.clone(),
                len,
            })
            .map_err(bad)?;
            Box::new(move |rows| b.with_batch_size(rows).build().map_err(bad))
        }
        None => {
            let f = File::open(&file.path).map_err(Error::io("open", &file.path))?;
            let b = ParquetRecordBatchReaderBuilder::try_new(f).map_err(bad)?;
            Box::new(move |rows| b.with_batch_size(rows).build().map_err(bad))
        }
    })
}

/// The file's columns as loaded: `_ferry_row`, then each column (JSON ones as Utf8).
pub fn schema_of(file: &Fetched) -> Result<(SchemaRef, Vec<String>)> {
    let reader = builder(file)?(1)?;
    Ok(loaded_schema(&reader.schema()))
}

fn loaded_schema(file_schema: &Schema) -> (SchemaRef, Vec<String>) {
    let mut fields = vec![Field::new(ROW_NUMBER_COLUMN, DataType::Int64, false)];
    let mut json = Vec::new();
    for f in file_schema.fields() {
        if as_json(f.data_type()) {
            json.push(f.name().clone());
            fields.push(Field::new(f.name(), DataType::Utf8, true));
        } else if f.data_type() == &DataType::Int8 {
            // pgpq writes Int8 as Postgres "char"; a smallint is what people expect.
            fields.push(Field::new(f.name(), DataType::Int16, true));
        } else {
            fields.push(f.as_ref().clone().with_nullable(true));
        }
    }
    (Arc::new(Schema::new(fields)), json)
}

/// Batches of the file's rows, numbered from 1.
pub fn decode(
    file: &Fetched,
    batch_rows: usize,
) -> Result<Box<dyn Iterator<Item = Result<Batch>> + Send>> {
    let reader = builder(file)?(batch_rows)?;
    let (schema, _) = loaded_schema(&reader.schema());
    let mut row = 0i64;
    Ok(Box::new(reader.map(move |batch| {
        let batch = batch.map_err(|e| Error::File(format!("reading Parquet: {e}")))?;
        let n = batch.num_rows() as i64;
        let numbers: ArrayRef = Arc::new(Int64Array::from_iter_values(row + 1..=row + n));
        row += n;
        let mut columns = vec![numbers];
        for column in batch.columns() {
            columns.push(if as_json(column.data_type()) {
                to_json(column)?
            } else if let Some(small) = column.as_any().downcast_ref::<Int8Array>() {
                Arc::new(
                    small
                        .iter()
                        .map(|v| v.map(i16::from))
                        .collect::<Int16Array>(),
                )
            } else {
                column.clone()
            });
        }
        let rows = RecordBatch::try_new(schema.clone(), columns)
            .map_err(|e| Error::File(format!("reading Parquet: {e}")))?;
        Ok(Batch {
            rows,
            rejects: Vec::new(),
        })
    })))
}

/// Each value of a nested column as JSON text (NULL stays NULL).
fn to_json(column: &ArrayRef) -> Result<ArrayRef> {
    let err = |e: &dyn std::fmt::Display| Error::File(format!("converting to JSON: {e}"));
    let wrapper = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "v",
            column.data_type().clone(),
            true,
        )])),
        vec![column.clone()],
    )
    .map_err(|e| err(&e))?;
    let mut lines = Vec::new();
    {
        let mut writer = arrow_json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, arrow_json::writer::LineDelimited>(&mut lines);
        writer.write(&wrapper).map_err(|e| err(&e))?;
        writer.finish().map_err(|e| err(&e))?;
    }
    let mut out = StringBuilder::new();
    // One line per row (JSON text never holds a raw newline); `{"v": ...}` or `{}` for NULL.
    for (i, line) in lines.split(|b| *b == b'\n').take(column.len()).enumerate() {
        if column.is_null(i) {
            out.append_null();
            continue;
        }
        let value: serde_json::Value = serde_json::from_slice(line).map_err(|e| err(&e))?;
        out.append_value(
            value
                .get("v")
                .unwrap_or(&serde_json::Value::Null)
                .to_string(),
        );
    }
    Ok(Arc::new(out.finish()))
}
