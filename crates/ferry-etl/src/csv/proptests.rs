//! Round trip: random typed tables written by `csv::Writer`, then sniff + infer + read.

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef};
use proptest::prelude::*;
use time::{Date, PrimitiveDateTime, Time};

use super::*;

const KINDS: [ColumnType; 7] = [
    ColumnType::Bool,
    ColumnType::Int64,
    ColumnType::Float64,
    ColumnType::Date,
    ColumnType::Timestamp,
    ColumnType::TimestampTz,
    ColumnType::Text,
];
const DELIMITERS: [u8; 4] = [b',', b'\t', b';', b'|'];
const NULL: &str = "NULL";

/// One value: (as written, canonical form expected back).
type Cell = (String, String);

fn date() -> impl Strategy<Value = Date> {
    // 0000-01-01 ..= 9999-12-31
    (1_721_060..=5_373_484_i32).prop_map(|j| Date::from_julian_day(j).unwrap())
}

fn ymd(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Written "date time[.frac]" and its microseconds since the epoch, read as UTC.
fn timestamp() -> impl Strategy<Value = (String, i64)> {
    (
        date(),
        0..86_400_u32,
        0..1_000_000_u32,
        0..=6_u32,
        prop::bool::ANY,
    )
        .prop_map(|(d, secs, micros, digits, t)| {
            let scale = 10_u32.pow(6 - digits);
            let micros = micros / scale * scale;
            let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
            let mut text = format!(
                "{}{}{h:02}:{m:02}:{s:02}",
                ymd(d),
                if t { 'T' } else { ' ' }
            );
            if digits > 0 {
                text += &format!(".{:0width$}", micros / scale, width = digits as usize);
            }
            let time = Time::from_hms_micro(h as u8, m as u8, s as u8, micros).unwrap();
            let at = PrimitiveDateTime::new(d, time)
                .assume_utc()
                .unix_timestamp_nanos()
                / 1000;
            (text, i64::try_from(at).unwrap())
        })
}

fn offset() -> impl Strategy<Value = (String, i64)> {
    (prop::bool::ANY, 0..=23_i64, 0..=59_i64, 0..4_u8).prop_map(|(neg, h, m, style)| {
        let sign = if neg { '-' } else { '+' };
        match style {
            0 => ("Z".to_string(), 0),
            1 => (
                format!("{sign}{h:02}"),
                if neg { -h * 3600 } else { h * 3600 },
            ),
            _ => {
                let secs = (h * 3600 + m * 60) * if neg { -1 } else { 1 };
                let colon = if style == 2 { ":" } else { "" };
                (format!("{sign}{h:02}{colon}{m:02}"), secs)
            }
        }
    })
}

fn text(delimiter: u8) -> impl Strategy<Value = String> {
    let extra = char::from(delimiter);
    let chars = prop::sample::select(vec![
        'a', 'z', 'Q', '7', ' ', 'é', '日', '\'', '"', '\n', extra,
    ]);
    // A leading 's' keeps it from looking like a bool, number or date.
    prop_oneof![
        1 => Just(String::new()),
        6 => prop::collection::vec(chars, 0..12).prop_map(|c| format!("s{}", String::from_iter(c))),
    ]
}

fn same(s: String) -> Cell {
    (s.clone(), s)
}

fn value(kind: ColumnType, delimiter: u8) -> BoxedStrategy<Cell> {
    match kind {
        ColumnType::Bool => prop::sample::select(vec!["true", "FALSE", "t", "F", "yes", "No"])
            .prop_map(|w| {
                let v = ["true", "t", "yes"]
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(w));
                (w.to_string(), v.to_string())
            })
            .boxed(),
        ColumnType::Int64 => any::<i64>().prop_map(|i| same(i.to_string())).boxed(),
        ColumnType::Float64 => any::<f64>().prop_map(|f| same(format!("{f:?}"))).boxed(),
        ColumnType::Date => date()
            .prop_map(|d| (ymd(d), (d.to_julian_day() - 2_440_588).to_string()))
            .boxed(),
        ColumnType::Timestamp => timestamp().prop_map(|(s, at)| (s, at.to_string())).boxed(),
        ColumnType::TimestampTz => (timestamp(), offset())
            .prop_map(|((s, at), (off, secs))| (s + &off, (at - secs * 1_000_000).to_string()))
            .boxed(),
        ColumnType::Text => text(delimiter).prop_map(same).boxed(),
    }
}

fn cell(kind: ColumnType, delimiter: u8) -> BoxedStrategy<Cell> {
    if kind == ColumnType::Text {
        return value(kind, delimiter);
    }
    prop_oneof![1 => Just((String::new(), NULL.to_string())), 4 => value(kind, delimiter)].boxed()
}

#[derive(Debug, Clone)]
struct Table {
    dialect: Dialect,
    crlf: bool,
    quote_style: u8,
    kinds: Vec<ColumnType>,
    rows: Vec<Vec<Cell>>,
}

fn table() -> impl Strategy<Value = Table> {
    let shape = (
        prop::sample::select(DELIMITERS.to_vec()),
        prop::collection::vec(prop::sample::select(KINDS.to_vec()), 2..=5),
        1..=12_usize,
    );
    shape.prop_flat_map(|(delimiter, kinds, nrows)| {
        let row: Vec<_> = kinds.iter().map(|&k| cell(k, delimiter)).collect();
        // A non-null value per column, to make sure each typed column shows its type.
        let fallback: Vec<_> = kinds.iter().map(|&k| value(k, delimiter)).collect();
        (
            prop::collection::vec(row, nrows),
            fallback,
            prop::bool::ANY,
            prop::bool::ANY,
            0..3_u8,
        )
            .prop_map(move |(mut rows, fallback, has_header, crlf, quote_style)| {
                // Each typed column gets a value in the last row so its type can be seen
                // (and a header-less file can be told from one with a header).
                let last = rows.len() - 1;
                for (j, kind) in kinds.iter().enumerate() {
                    if *kind != ColumnType::Text && rows[last][j].1 == NULL {
                        rows[last][j] = fallback[j].clone();
                    }
                }
                // Without a typed column nothing tells a header-less file apart.
                let all_text = kinds.iter().all(|k| *k == ColumnType::Text);
                let has_header = has_header || all_text;
                let dialect = Dialect {
                    delimiter,
                    quote: b'"',
                    has_header,
                };
                Table {
                    dialect,
                    crlf,
                    quote_style,
                    kinds: kinds.clone(),
                    rows,
                }
            })
    })
}

fn write(table: &Table) -> Vec<u8> {
    let mut writer = ::csv::WriterBuilder::new()
        .delimiter(table.dialect.delimiter)
        .terminator(if table.crlf {
            ::csv::Terminator::CRLF
        } else {
            ::csv::Terminator::Any(b'\n')
        })
        .quote_style(match table.quote_style {
            0 => ::csv::QuoteStyle::Necessary,
            1 => ::csv::QuoteStyle::Always,
            _ => ::csv::QuoteStyle::NonNumeric,
        })
        .from_writer(Vec::new());
    if table.dialect.has_header {
        writer
            .write_record((0..table.kinds.len()).map(|j| format!("c{j}")))
            .unwrap();
    }
    for row in &table.rows {
        writer
            .write_record(row.iter().map(|(written, _)| written))
            .unwrap();
    }
    writer.into_inner().unwrap()
}

/// Canonical string of one Arrow value (see `value`).
fn canonical(array: &ArrayRef, kind: ColumnType, i: usize) -> String {
    if array.is_null(i) {
        return NULL.to_string();
    }
    match kind {
        ColumnType::Bool => array.as_boolean().value(i).to_string(),
        ColumnType::Int64 => array.as_primitive::<Int64Type>().value(i).to_string(),
        ColumnType::Float64 => format!("{:?}", array.as_primitive::<Float64Type>().value(i)),
        ColumnType::Date => array.as_primitive::<Date32Type>().value(i).to_string(),
        ColumnType::Timestamp | ColumnType::TimestampTz => array
            .as_primitive::<TimestampMicrosecondType>()
            .value(i)
            .to_string(),
        ColumnType::Text => array.as_string::<i32>().value(i).to_string(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn written_tables_read_back(table in table(), batch_rows in 1..=5_usize) {
        let bytes = write(&table);
        let dialect = sniff(&bytes);
        prop_assert_eq!(dialect, table.dialect);

        let columns = infer(&bytes, dialect, 10_000);
        let kinds: Vec<_> = columns.iter().map(|c| c.kind).collect();
        prop_assert_eq!(&kinds, &table.kinds);
        let names: Vec<_> = columns.iter().map(|c| c.name.clone()).collect();
        let prefix = if dialect.has_header { "c" } else { "column_" };
        let first = usize::from(!dialect.has_header);
        let want: Vec<_> = (0..kinds.len()).map(|j| format!("{prefix}{}", j + first)).collect();
        prop_assert_eq!(names, want);

        let mut got: Vec<Vec<String>> = Vec::new();
        let mut row_numbers: Vec<i64> = Vec::new();
        for batch in Reader::new(&bytes[..], dialect, columns, batch_rows, 1 << 20) {
            let batch = batch.unwrap();
            prop_assert_eq!(&batch.rejects, &Vec::<Reject>::new());
            prop_assert!(batch.rows.num_rows() <= batch_rows);
            let rows = &batch.rows;
            row_numbers.extend(rows.column(0).as_primitive::<Int64Type>().values().iter());
            for i in 0..rows.num_rows() {
                got.push(
                    kinds.iter().enumerate().map(|(j, &k)| canonical(rows.column(j + 1), k, i)).collect(),
                );
            }
        }
        let want: Vec<Vec<String>> =
            table.rows.iter().map(|r| r.iter().map(|(_, c)| c.clone()).collect()).collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(row_numbers, (1..=table.rows.len() as i64).collect::<Vec<_>>());
    }
}
