//! Reader tests (sniff, infer and the parsers have their own next to the code).

use std::io::{self, Read};
use std::time::Instant;

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};

use super::*;

const CSV: Dialect = Dialect {
    delimiter: b',',
    quote: b'"',
    has_header: true,
};

fn col(name: &str, kind: ColumnType) -> Column {
    Column {
        name: name.into(),
        kind,
    }
}

fn read(input: &[u8], columns: Vec<Column>, batch_rows: usize) -> (Vec<RecordBatch>, Vec<Reject>) {
    let reader = Reader::new(input, CSV, columns, batch_rows, 1 << 20);
    let (mut batches, mut rejects) = (Vec::new(), Vec::new());
    for batch in reader {
        let batch = batch.unwrap();
        batches.push(batch.rows);
        rejects.extend(batch.rejects);
    }
    (batches, rejects)
}

fn row_numbers(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect()
}

fn two_ints() -> Vec<Column> {
    vec![col("a", ColumnType::Int64), col("b", ColumnType::Int64)]
}

#[test]
fn round_trips_every_type() {
    use ColumnType::*;
    let columns = vec![
        col("b", Bool),
        col("i", Int64),
        col("f", Float64),
        col("d", Date),
        col("ts", Timestamp),
        col("tz", TimestampTz),
        col("t", Text),
    ];
    let input = "b,i,f,d,ts,tz,t\n\
        Yes,-42,2.5,1970-01-02,1970-01-01 00:00:01.5,1970-01-01T01:00:00+01:00,\"hi, \"\"you\"\"\"\n\
        ,,,,,,\n\
        f,9223372036854775807,-inf,1969-12-31,1970-01-02,1970-01-01 00:00:00.000001Z,日本\n";
    let (batches, rejects) = read(input.as_bytes(), columns, 10);
    assert_eq!(rejects, []);
    assert_eq!(batches.len(), 1);
    let b = &batches[0];
    assert_eq!(b.num_rows(), 3);
    assert_eq!(row_numbers(&batches), [1, 2, 3]);

    let bools = b.column(1).as_boolean();
    assert_eq!(
        (bools.value(0), bools.is_null(1), bools.value(2)),
        (true, true, false)
    );
    let ints = b.column(2).as_primitive::<Int64Type>();
    assert_eq!(
        (ints.value(0), ints.is_null(1), ints.value(2)),
        (-42, true, i64::MAX)
    );
    let floats = b.column(3).as_primitive::<Float64Type>();
    assert_eq!((floats.value(0), floats.is_null(1)), (2.5, true));
    assert_eq!(floats.value(2), f64::NEG_INFINITY);
    let dates = b.column(4).as_primitive::<Date32Type>();
    assert_eq!(
        (dates.value(0), dates.is_null(1), dates.value(2)),
        (1, true, -1)
    );
    let ts = b.column(5).as_primitive::<TimestampMicrosecondType>();
    assert_eq!(
        (ts.value(0), ts.is_null(1), ts.value(2)),
        (1_500_000, true, 86_400_000_000)
    );
    let tz = b.column(6).as_primitive::<TimestampMicrosecondType>();
    assert_eq!((tz.value(0), tz.is_null(1), tz.value(2)), (0, true, 1));
    let text = b.column(7).as_string::<i32>();
    assert_eq!(
        (text.value(0), text.value(1), text.value(2)),
        ("hi, \"you\"", "", "日本")
    );
    assert_eq!(text.null_count(), 0);

    let schema = b.schema();
    assert_eq!(schema.field(0).name(), "_ferry_row");
    assert!(!schema.field(0).is_nullable());
    assert!(schema.fields().iter().skip(1).all(|f| f.is_nullable()));
    assert_eq!(
        schema.field(5).data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, None)
    );
    assert_eq!(
        schema.field(6).data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
}

#[test]
fn row_numbers_count_rejected_records() {
    let (batches, rejects) = read(b"a,b\n1,2\nx,3\n\n4,5\n", two_ints(), 10);
    assert_eq!(row_numbers(&batches), [1, 3]);
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].line, 3);
    assert_eq!(rejects[0].raw, "x,3");
    assert_eq!(rejects[0].reason, "column \"a\": \"x\" is not a bigint");
}

#[test]
fn ragged_rows_report_physical_lines() {
    let columns = vec![col("a", ColumnType::Int64), col("note", ColumnType::Text)];
    let input = b"a,note\r\n1,\"two\r\nlines\"\r\n2,x,extra\r\n\r\n3\r\n4,ok\r\n";
    let (batches, rejects) = read(input, columns, 10);
    assert_eq!(row_numbers(&batches), [1, 4]);
    let got: Vec<_> = rejects
        .iter()
        .map(|r| (r.line, r.raw.as_str(), r.reason.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (4, "2,x,extra", "expected 2 fields, found 3"),
            (6, "3", "expected 2 fields, found 1")
        ]
    );
    let text = batches[0].column(2).as_string::<i32>();
    assert_eq!(text.value(0), "two\r\nlines");
}

#[test]
fn broken_quoting() {
    let columns = vec![col("a", ColumnType::Text), col("b", ColumnType::Text)];
    // A stray quote mid-field is kept as text; an unclosed one swallows the rest of the file.
    let (batches, rejects) = read(b"a,b\nx\"y,z\n1,\"open\n2,3\n", columns, 10);
    assert_eq!(batches[0].column(1).as_string::<i32>().value(0), "x\"y");
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].line, 3);
    assert_eq!(rejects[0].reason, "unterminated quoted field");
    assert_eq!(rejects[0].raw, "1,\"open\n2,3\n\"");
}

#[test]
fn invalid_utf8_and_nul() {
    let columns = vec![col("a", ColumnType::Int64), col("b", ColumnType::Text)];
    let (batches, rejects) = read(b"a,b\n1,caf\xE9\n2,ok\n3,x\0y\n", columns, 10);
    assert_eq!(row_numbers(&batches), [2]);
    assert_eq!(rejects[0].reason, "invalid UTF-8 in field 2 (column \"b\")");
    assert_eq!(rejects[0].raw, "1,caf\u{FFFD}");
    assert_eq!(rejects[1].reason, "column \"b\": text contains a NUL byte");
}

#[test]
fn type_errors_name_column_and_value() {
    let columns = vec![
        col("price", ColumnType::Float64),
        col("day", ColumnType::Date),
    ];
    let (_, rejects) = read(b"price,day\nabc,2024-01-01\n1.5,2024-13-01\n", columns, 10);
    let reasons: Vec<_> = rejects.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "column \"price\": \"abc\" is not a double precision",
            "column \"day\": \"2024-13-01\" is not a date",
        ]
    );
}

#[test]
fn batches_split_at_batch_rows() {
    let mut input = String::from("a,b\n");
    for i in 0..10 {
        input.push_str(&format!("{i},{i}\n"));
    }
    let (batches, _) = read(input.as_bytes(), two_ints(), 4);
    let sizes: Vec<_> = batches.iter().map(RecordBatch::num_rows).collect();
    assert_eq!(sizes, [4, 4, 2]);
    assert_eq!(row_numbers(&batches), (1..=10).collect::<Vec<_>>());
}

#[test]
fn rejects_end_a_batch_too_and_may_come_alone() {
    let input = b"a,b\n1,2\nx\ny\nz\n";
    let batches: Vec<Batch> = Reader::new(&input[..], CSV, two_ints(), 2, 100)
        .collect::<Result<_, _>>()
        .unwrap();
    let shape: Vec<_> = batches
        .iter()
        .map(|b| (b.rows.num_rows(), b.rejects.len()))
        .collect();
    assert_eq!(shape, [(1, 2), (0, 1)]);
}

#[test]
fn empty_inputs() {
    assert_eq!(read(b"", two_ints(), 10).0.len(), 0);
    assert_eq!(read(b"a,b\n", two_ints(), 10).0.len(), 0);
    let no_header = Dialect {
        has_header: false,
        ..CSV
    };
    let rows: Vec<_> = Reader::new(&b"1,2"[..], no_header, two_ints(), 10, 100).collect();
    assert_eq!(rows.len(), 1);
}

#[test]
fn raw_text_is_requoted_and_cut() {
    let columns = vec![col("a", ColumnType::Int64)];
    let long = "é".repeat(3000);
    let input = format!("a\n\"x,\"\"y\"\"\",z\n{long}\n");
    let (_, rejects) = read(input.as_bytes(), columns, 10);
    assert_eq!(rejects[0].raw, "\"x,\"\"y\"\"\",z");
    let raw = &rejects[1].raw;
    assert!(raw.len() <= 4096 && raw.ends_with('…'), "{}", raw.len());
    assert!(raw.len() > 4000);
}

#[test]
fn huge_record_is_skipped_and_reading_goes_on() {
    let columns = vec![col("a", ColumnType::Text)];
    let mut input = b"a\nfirst\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 20 << 20));
    input.extend_from_slice(b"\n\"quoted\nhuge ");
    input.extend(std::iter::repeat_n(b'y', 3 << 20));
    input.extend_from_slice(b"\"\nlast\n");
    let start = Instant::now();
    let reader = Reader::new(&input[..], CSV, columns, 100, 1 << 20);
    let batches: Vec<Batch> = reader.collect::<Result<_, _>>().unwrap();
    eprintln!("20 MB record skipped in {:?}", start.elapsed());
    let rows: Vec<_> = batches.iter().map(|b| b.rows.clone()).collect();
    let values: Vec<_> = rows
        .iter()
        .flat_map(|b| {
            let text = b.column(1).as_string::<i32>();
            (0..text.len())
                .map(|i| text.value(i).to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(values, ["first", "last"]);
    assert_eq!(row_numbers(&rows), [1, 4]);
    let rejects: Vec<_> = batches.iter().flat_map(|b| b.rejects.clone()).collect();
    let got: Vec<_> = rejects
        .iter()
        .map(|r| (r.line, r.reason.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (3, "record longer than 1048576 bytes"),
            (4, "record longer than 1048576 bytes")
        ]
    );
    assert!(rejects.iter().all(|r| r.raw.len() <= 4096));
}

/// Yields `data`, then fails.
struct Failing<'a>(&'a [u8]);

impl Read for Failing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0.is_empty() {
            return Err(io::Error::other("disk on fire"));
        }
        let n = self.0.read(buf)?;
        Ok(n)
    }
}

#[test]
fn io_errors_end_the_iteration() {
    let mut reader = Reader::new(Failing(b"a,b\n1,2\n"), CSV, two_ints(), 10, 100);
    let err = reader.next().unwrap().unwrap_err();
    assert!(matches!(err, Error::Io(_)));
    assert_eq!(err.to_string(), "reading the file: disk on fire");
    assert!(reader.next().is_none());
}

#[test]
fn sniff_infer_read_together() {
    let input = b"\xEF\xBB\xBFwhen;amount;ok\r\n2024-03-01 10:00:00+02;1,5;yes\r\n\
        2024-03-02 11:30:00Z;7;no\r\n";
    let dialect = sniff(input);
    assert_eq!(
        dialect,
        Dialect {
            delimiter: b';',
            quote: b'"',
            has_header: true
        }
    );
    let columns = infer(input, dialect, 100);
    let kinds: Vec<_> = columns.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [ColumnType::TimestampTz, ColumnType::Text, ColumnType::Bool]
    );
    assert_eq!(columns[0].name, "when");
    let reader = Reader::new(&input[..], dialect, columns, 10, 1000);
    let batch = reader.into_iter().next().unwrap().unwrap();
    assert_eq!(batch.rows.num_rows(), 2);
    let when = batch
        .rows
        .column(1)
        .as_primitive::<TimestampMicrosecondType>();
    assert_eq!(when.value(0), 1_709_280_000_000_000); // 2024-03-01 08:00:00 UTC
}
