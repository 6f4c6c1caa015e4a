//! JSON files as rows: a JSONL file is one record per line; a `.json` file holding an array
//! is one record per element (split while streaming, never parsed whole); any other JSON
//! value is one record. Each record becomes a `jsonb` value in the column `record`, after
//! the typed columns a dataset contract names (taken from the record's top-level keys). A
//! line or element that is not JSON, or whose typed value does not fit, is a reject; a
//! `.json` file that is not JSON fails.

use std::io::{BufRead, Read};
use std::sync::Arc;

use arrow_array::builder::{Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::csv::{Batch, Column, ColumnBuilder, ColumnType, ROW_NUMBER_COLUMN, Reject, Value};
use crate::error::{Error, Result};

/// The column holding each record.
pub const RECORD_COLUMN: &str = "record";

/// `_ferry_row`, the typed columns, then `record`.
pub fn schema(typed: &[Column]) -> SchemaRef {
    let row = Field::new(ROW_NUMBER_COLUMN, DataType::Int64, false);
    let typed = typed
        .iter()
        .map(|c| Field::new(&c.name, c.kind.arrow(), true));
    let record = Field::new(RECORD_COLUMN, DataType::Utf8, true);
    Arc::new(Schema::new(
        std::iter::once(row)
            .chain(typed)
            .chain(std::iter::once(record))
            .collect::<Vec<_>>(),
    ))
}

/// A record's value for a typed column: (parsed value, text), both `None` for NULL. A
/// missing key, `null` and `""` are NULL; strings are parsed like CSV fields; a text column
/// takes any other value as its JSON text.
fn typed_value(
    column: &Column,
    value: Option<&serde_json::Value>,
) -> std::result::Result<(Option<Value>, Option<String>), String> {
    use serde_json::Value as J;
    let text = match value {
        None | Some(J::Null) => return Ok((None, None)),
        Some(J::String(s)) if s.is_empty() => return Ok((None, None)),
        Some(J::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    if column.kind == ColumnType::Text {
        return Ok((None, Some(text)));
    }
    let fits = match value {
        Some(J::Bool(_)) => column.kind == ColumnType::Bool,
        Some(J::Number(_)) => matches!(column.kind, ColumnType::Int64 | ColumnType::Float64),
        Some(J::String(_)) => true,
        _ => false,
    };
    match crate::csv::parse_value(column.kind, &text).filter(|_| fits) {
        Some(v) => Ok((Some(v), None)),
        None => {
            let shown: String = text.chars().take(100).collect();
            Err(format!(
                "key {:?}: {shown} is not a {}",
                column.name,
                column.kind.postgres()
            ))
        }
    }
}

/// One record's bytes and the line it starts on.
type Record = (u64, Vec<u8>);

/// Records of a JSON Lines file: blank lines are skipped.
pub fn lines<R: BufRead + Send + 'static>(
    input: R,
    max_record_bytes: usize,
) -> impl Iterator<Item = Result<Record>> + Send {
    let mut input = input;
    let mut line_no = 0u64;
    std::iter::from_fn(move || {
        loop {
            let mut line = Vec::new();
            line_no += 1;
            // Never hold more than the limit of one line: read it in capped steps.
            let n = match (&mut input)
                .take(max_record_bytes as u64 + 1)
                .read_until(b'\n', &mut line)
            {
                Ok(n) => n,
                Err(e) => return Some(Err(Error::File(format!("reading the file: {e}")))),
            };
            if n == 0 {
                return None;
            }
            if line.len() > max_record_bytes && !line.ends_with(b"\n") {
                // Skip the rest of this line.
                if let Err(e) = skip_line(&mut input) {
                    return Some(Err(Error::File(format!("reading the file: {e}"))));
                }
                line.truncate(max_record_bytes);
                line.extend_from_slice(b"\xff"); // marks "too long" for `decode`
            }
            let trimmed = line.trim_ascii();
            if trimmed.is_empty() {
                continue;
            }
            return Some(Ok((line_no, trimmed.to_vec())));
        }
    })
}

fn skip_line<R: BufRead>(input: &mut R) -> std::io::Result<()> {
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        if let Some(i) = buf.iter().position(|b| *b == b'\n') {
            input.consume(i + 1);
            return Ok(());
        }
        let n = buf.len();
        input.consume(n);
    }
}

/// Records of a `.json` file: the elements of a top-level array (split by a small scanner
/// that tracks strings and nesting), or the whole file when it is not an array.
pub fn document<R: Read + Send + 'static>(
    input: R,
    max_record_bytes: usize,
) -> Result<Box<dyn Iterator<Item = Result<Record>> + Send>> {
    let mut input = std::io::BufReader::new(input);
    // Find the first significant byte.
    let mut line = 1u64;
    let first = loop {
        let buf = input
            .fill_buf()
            .map_err(|e| Error::File(format!("reading the file: {e}")))?;
        let Some(&b) = buf.first() else {
            return Err(Error::File("the file is empty, not JSON".into()));
        };
        if b.is_ascii_whitespace() || b == 0xEF || b == 0xBB || b == 0xBF {
            if b == b'\n' {
                line += 1;
            }
            input.consume(1);
            continue;
        }
        break b;
    };
    if first != b'[' {
        let mut body = Vec::new();
        (&mut input)
            .take(max_record_bytes as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|e| Error::File(format!("reading the file: {e}")))?;
        if body.len() > max_record_bytes {
            return Err(Error::File(format!(
                "a JSON document longer than {max_record_bytes} bytes that is not an array"
            )));
        }
        serde_json::from_slice::<serde::de::IgnoredAny>(&body)
            .map_err(|e| Error::File(format!("not JSON: {e}")))?;
        return Ok(Box::new(std::iter::once(Ok((line, body)))));
    }
    input.consume(1);
    let mut scanner = ArrayScanner {
        input,
        line,
        done: false,
        max: max_record_bytes,
    };
    Ok(Box::new(std::iter::from_fn(move || scanner.next_element())))
}

struct ArrayScanner<R> {
    input: std::io::BufReader<R>,
    line: u64,
    done: bool,
    max: usize,
}

impl<R: Read> ArrayScanner<R> {
    fn byte(&mut self) -> std::io::Result<Option<u8>> {
        let buf = self.input.fill_buf()?;
        let Some(&b) = buf.first() else {
            return Ok(None);
        };
        self.input.consume(1);
        if b == b'\n' {
            self.line += 1;
        }
        Ok(Some(b))
    }

    /// The next element's bytes, up to the `,` or `]` that ends it at depth 0.
    fn next_element(&mut self) -> Option<Result<Record>> {
        if self.done {
            return None;
        }
        let mut out = Vec::new();
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        let mut start_line = None;
        loop {
            let b = match self.byte() {
                Ok(Some(b)) => b,
                Ok(None) => {
                    self.done = true;
                    return Some(Err(Error::File(
                        "the JSON array is not closed (the file ends inside it)".into(),
                    )));
                }
                Err(e) => return Some(Err(Error::File(format!("reading the file: {e}")))),
            };
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
            } else {
                match b {
                    b'"' => in_string = true,
                    b'[' | b'{' => depth += 1,
                    b']' | b'}' if depth > 0 => depth -= 1,
                    b']' | b',' if depth == 0 => {
                        if b == b']' {
                            self.done = true;
                        }
                        let trimmed = out.trim_ascii();
                        if trimmed.is_empty() {
                            if b == b']' {
                                return None;
                            }
                            continue;
                        }
                        return Some(Ok((start_line.unwrap_or(self.line), trimmed.to_vec())));
                    }
                    _ => {}
                }
            }
            if start_line.is_none() && !b.is_ascii_whitespace() {
                start_line = Some(self.line);
            }
            if out.len() <= self.max {
                out.push(b);
            } else if out.len() == self.max + 1 {
                out.push(0xff); // too long: rejected in `decode`
            }
        }
    }
}

/// Turns records into batches of (`_ferry_row`, `record` as JSON text for jsonb).
pub fn decode(
    records: impl Iterator<Item = Result<Record>> + Send + 'static,
    typed: Vec<Column>,
    batch_rows: usize,
    max_record_bytes: usize,
) -> impl Iterator<Item = Result<Batch>> + Send {
    let schema = schema(&typed);
    let mut records = records.peekable();
    let mut row = 0u64;
    std::iter::from_fn(move || {
        records.peek()?;
        let mut numbers = Int64Builder::new();
        let mut columns: Vec<ColumnBuilder> = typed
            .iter()
            .map(|c| ColumnBuilder::new(c.kind, batch_rows))
            .collect();
        let mut cells = Vec::with_capacity(typed.len());
        let mut values = StringBuilder::new();
        let mut rejects = Vec::new();
        let mut taken = 0;
        while taken < batch_rows {
            let Some(next) = records.next() else { break };
            let (line, bytes) = match next {
                Ok(r) => r,
                Err(e) => return Some(Err(e)),
            };
            row += 1;
            taken += 1;
            let reject = |reason: String| Reject {
                line,
                raw: String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).into_owned(),
                reason,
            };
            if bytes.len() > max_record_bytes {
                rejects.push(reject(format!(
                    "record longer than {max_record_bytes} bytes"
                )));
                continue;
            }
            let text = match std::str::from_utf8(&bytes) {
                Ok(t) => t,
                Err(_) => {
                    rejects.push(reject("invalid UTF-8".into()));
                    continue;
                }
            };
            let parsed = match serde_json::from_str::<serde_json::Value>(text) {
                Ok(v) => v,
                Err(e) => {
                    rejects.push(reject(format!("not JSON: {e}")));
                    continue;
                }
            };
            // Postgres jsonb cannot hold \u0000 in strings.
            if text.contains("\\u0000") {
                rejects.push(reject(
                    "a string holds \\u0000, which jsonb cannot store".into(),
                ));
                continue;
            }
            cells.clear();
            let typed_cells = typed
                .iter()
                .map(|c| typed_value(c, parsed.get(&c.name)))
                .collect::<std::result::Result<Vec<_>, String>>();
            match typed_cells {
                Ok(found) => cells.extend(found),
                Err(reason) => {
                    rejects.push(reject(reason));
                    continue;
                }
            }
            numbers.append_value(row as i64);
            for (builder, (cell, text)) in columns.iter_mut().zip(cells.drain(..)) {
                builder.append(cell, text.as_deref());
            }
            values.append_value(text);
        }
        let columns: Vec<ArrayRef> = std::iter::once(Arc::new(numbers.finish()) as ArrayRef)
            .chain(columns.iter_mut().map(ColumnBuilder::finish))
            .chain(std::iter::once(Arc::new(values.finish()) as ArrayRef))
            .collect();
        Some(
            RecordBatch::try_new(schema.clone(), columns)
                .map(|rows| Batch { rows, rejects })
                .map_err(|e| Error::File(e.to_string())),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(batches: impl Iterator<Item = Result<Batch>>) -> (Vec<(i64, String)>, Vec<Reject>) {
        let mut rows = Vec::new();
        let mut rejects = Vec::new();
        for b in batches {
            let b = b.unwrap();
            let n = b
                .rows
                .column(0)
                .as_any()
                .downcast_ref::<arrow_array::Int64Array>()
                .unwrap();
            let v = b
                .rows
                .column(1)
                .as_any()
                .downcast_ref::<arrow_array::StringArray>()
                .unwrap();
            for i in 0..b.rows.num_rows() {
                rows.push((n.value(i), v.value(i).to_owned()));
            }
            rejects.extend(b.rejects);
        }
        (rows, rejects)
    }

    #[test]
    fn json_lines_with_bad_lines() {
        let input = b"{\"a\":1}\n\n{oops}\n[1,2]\n\xff\n\"s\"\n".to_vec();
        let (rows, rejects) = collect(decode(
            lines(std::io::Cursor::new(input), 1000),
            Vec::new(),
            2,
            1000,
        ));
        assert_eq!(
            rows,
            vec![
                (1, "{\"a\":1}".into()),
                (3, "[1,2]".into()),
                (5, "\"s\"".into())
            ]
        );
        assert_eq!(rejects.iter().map(|r| r.line).collect::<Vec<_>>(), [3, 5]);
        assert!(rejects[0].reason.starts_with("not JSON"));
        assert_eq!(rejects[1].reason, "invalid UTF-8");
    }

    #[test]
    fn a_long_line_is_rejected_and_the_next_read() {
        let mut input = vec![b'x'; 5000];
        input.extend_from_slice(b"\n{\"ok\":true}\n");
        let (rows, rejects) = collect(decode(
            lines(std::io::Cursor::new(input), 100),
            Vec::new(),
            10,
            100,
        ));
        assert_eq!(rows, vec![(2, "{\"ok\":true}".into())]);
        assert!(rejects[0].reason.contains("longer than 100"));
    }

    #[test]
    fn array_elements_are_split_while_streaming() {
        let input = b" [\n {\"a\": \"x,]}\"},\n [1, [2]],\n 3 , {bad}\n]".to_vec();
        let records = document(std::io::Cursor::new(input), 1000).unwrap();
        let (rows, rejects) = collect(decode(records, Vec::new(), 10, 1000));
        assert_eq!(
            rows,
            vec![
                (1, "{\"a\": \"x,]}\"}".into()),
                (2, "[1, [2]]".into()),
                (3, "3".into())
            ]
        );
        assert_eq!(rejects.len(), 1);
        assert_eq!(rejects[0].line, 4);
    }

    #[test]
    fn a_single_document_and_not_json() {
        let records = document(std::io::Cursor::new(b"{\"k\": [1]}".to_vec()), 1000).unwrap();
        let (rows, _) = collect(decode(records, Vec::new(), 10, 1000));
        assert_eq!(rows, vec![(1, "{\"k\": [1]}".into())]);
        let err = document(std::io::Cursor::new(b"id,name\n1,x\n".to_vec()), 1000)
            .err()
            .unwrap();
        assert!(err.to_string().starts_with("not JSON"), "{err}");
        let unclosed = document(std::io::Cursor::new(b"[1, 2".to_vec()), 1000).unwrap();
        assert!(unclosed.last().unwrap().is_err());
    }
}
