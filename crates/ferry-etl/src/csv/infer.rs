//! Column names and types from a sample.

use std::collections::HashSet;

use csv::ByteRecord;

use super::scan::sample_records;
use super::types::{ColumnType, TypeSet, classify};
use super::{Column, Dialect, ROW_NUMBER_COLUMN};

/// Infers column names and types from the first `sample_rows` data records of `sample`
/// (bytes from the start of the file; a record cut off at its end is ignored, see
/// `sample_records`).
///
/// Names come from the header (trimmed; empty -> `column_N` for the N-th column; a name
/// already taken gets `_2`, `_3`, ... skipping names that appear elsewhere in the header;
/// `_ferry_row` counts as taken), or are `column_1..N` without one. The first record sets the
/// number of columns; records of another width, or with invalid UTF-8, are ignored.
///
/// A column's type is the first of Bool, Int64, Float64, Date, Timestamp, TimestampTz that
/// every non-empty value parses as, else Text (also when all values are empty). See
/// `parse_value` for the accepted forms; in addition, numbers with a leading zero ("007")
/// and integers too large for an i64 only fit Text, so no digits are lost.
pub fn infer(sample: &[u8], dialect: Dialect, sample_rows: usize) -> Vec<Column> {
    let limit = sample_rows.saturating_add(usize::from(dialect.has_header));
    let records = sample_records(sample, dialect, limit);
    let Some(first) = records.first() else {
        return Vec::new();
    };
    let width = first.len();
    let (names, data) = if dialect.has_header {
        (header_names(first), &records[1..])
    } else {
        (
            (1..=width).map(|i| format!("column_{i}")).collect(),
            &records[..],
        )
    };
    let kinds = infer_kinds(data, width);
    names
        .into_iter()
        .zip(kinds)
        .map(|(name, kind)| Column { name, kind })
        .collect()
}

/// The narrowest type of each of `width` columns over `rows` (see [`infer`]).
pub(super) fn infer_kinds(rows: &[ByteRecord], width: usize) -> Vec<ColumnType> {
    let mut fits = vec![TypeSet::ALL; width];
    let mut seen = vec![false; width];
    for row in rows.iter().filter(|r| r.len() == width) {
        let Ok(values) = row
            .iter()
            .map(std::str::from_utf8)
            .collect::<Result<Vec<_>, _>>()
        else {
            continue;
        };
        for (j, value) in values.into_iter().enumerate() {
            if !value.is_empty() && !fits[j].is_empty() {
                fits[j] = fits[j].intersect(classify(value));
                seen[j] = true;
            }
        }
    }
    fits.iter()
        .zip(seen)
        .map(|(set, seen)| {
            if seen {
                set.narrowest()
            } else {
                ColumnType::Text
            }
        })
        .collect()
}

fn header_names(header: &ByteRecord) -> Vec<String> {
    let given: Vec<String> = header
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let name = String::from_utf8_lossy(field).trim().to_string();
            if name.is_empty() {
                format!("column_{}", i + 1)
            } else {
                name
            }
        })
        .collect();
    let wanted: HashSet<&str> = given.iter().map(String::as_str).collect();
    let mut used: HashSet<String> = HashSet::from([ROW_NUMBER_COLUMN.to_string()]);
    let mut names = Vec::with_capacity(given.len());
    for name in &given {
        let mut candidate = name.clone();
        let mut n = 2;
        while used.contains(&candidate) || (candidate != *name && wanted.contains(&*candidate)) {
            candidate = format!("{name}_{n}");
            n += 1;
        }
        used.insert(candidate.clone());
        names.push(candidate);
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: Dialect = Dialect {
        delimiter: b',',
        quote: b'"',
        has_header: true,
    };

    fn kinds(sample: &str) -> Vec<ColumnType> {
        infer(sample.as_bytes(), HEADER, 100)
            .into_iter()
            .map(|c| c.kind)
            .collect()
    }

    fn names(sample: &str) -> Vec<String> {
        infer(sample.as_bytes(), HEADER, 100)
            .into_iter()
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn each_type() {
        use ColumnType::*;
        let sample = "b,i,f,d,ts,tz,t\n\
            true,1,1.5,2024-01-31,2024-01-31 10:00:00,2024-01-31T10:00:00Z,x\n\
            NO,-7,1e-3,2024-02-29,2024-02-29T23:59:59.999999,2024-02-29 01:00:00+02:00,y\n";
        assert_eq!(
            kinds(sample),
            [Bool, Int64, Float64, Date, Timestamp, TimestampTz, Text]
        );
    }

    #[test]
    fn widening_and_fallbacks() {
        use ColumnType::*;
        // int+float -> float, int+text -> text, 0/1 are ints, bool+int -> text.
        assert_eq!(
            kinds("a,b,c,d\n1,1,0,t\n2.5,x,1,1\n"),
            [Float64, Text, Int64, Text]
        );
        // Empty values are NULLs; an all-empty column is text.
        assert_eq!(kinds("a,b,c\n,1,\n2,,\n"), [Int64, Int64, Text]);
        // Dates widen to timestamps; naive + zoned -> text.
        let s = "a,b,c\n2024-01-01,2024-01-01,2024-01-01 00:00:00\n\
            2024-01-02 03:04:05,2024-01-02 03:04:05Z,2024-01-02 03:04:05Z\n";
        assert_eq!(kinds(s), [Timestamp, TimestampTz, Text]);
        // Leading zeros and i64 overflow stay text.
        assert_eq!(
            kinds("zip,big,neg\n01234,99999999999999999999,-5\n"),
            [Text, Text, Int64]
        );
        assert_eq!(kinds("x,y\nNaN,inf\n-INF,2\n"), [Float64, Float64]);
    }

    #[test]
    fn ignores_ragged_rows_and_limits_the_sample() {
        use ColumnType::*;
        assert_eq!(kinds("a,b\n1,2\nx,y,z\n3,4\n"), [Int64, Int64]);
        let cols = infer(b"a\n1\n2\nx\n", HEADER, 2);
        assert_eq!(cols[0].kind, Int64);
        assert_eq!(infer(b"", HEADER, 10), []);
        assert_eq!(kinds("a,b\n"), [Text, Text]);
    }

    #[test]
    fn header_names_are_cleaned_up() {
        assert_eq!(
            names(" id ,,id,name,id,id_2,_ferry_row\n"),
            [
                "id",
                "column_2",
                "id_3",
                "name",
                "id_4",
                "id_2",
                "_ferry_row_2"
            ]
        );
        let no_header = Dialect {
            has_header: false,
            ..HEADER
        };
        let cols = infer(b"1,x\n2,y\n", no_header, 10);
        assert_eq!(
            cols,
            [
                Column {
                    name: "column_1".into(),
                    kind: ColumnType::Int64
                },
                Column {
                    name: "column_2".into(),
                    kind: ColumnType::Text
                },
            ]
        );
    }
}
