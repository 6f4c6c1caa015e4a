//! The file dialect and its detection.

use std::collections::HashMap;

use csv::ByteRecord;

use super::infer::infer_kinds;
use super::scan::sample_records;
use super::types::{ColumnType, classify};

/// How a file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    pub delimiter: u8,
    pub quote: u8,
    pub has_header: bool,
}

impl Default for Dialect {
    /// Comma, double quote, with a header.
    fn default() -> Self {
        Dialect {
            delimiter: b',',
            quote: b'"',
            has_header: true,
        }
    }
}

/// Candidate delimiters, in order of preference when they split the sample equally well:
/// the rarer a byte is in ordinary data, the more a consistent split by it means.
const DELIMITERS: [u8; 4] = [b'\t', b'|', b';', b','];

/// How many records of the sample are looked at.
const SNIFF_RECORDS: usize = 1000;

/// Detects the dialect from the first bytes of a file (up to ~64 KiB; the last line may be
/// cut, see `sample_records`). The rules:
///
/// - **Delimiter**: each of tab, `|`, `;`, `,` splits the sample into records (quotes
///   respected). Its score is the share of records whose field count equals the most common
///   count, and it only counts if that count is above 1. The best score wins; ties go to the
///   earlier byte in that list (tab, `|`, `;`, `,`). With no candidate, `,`.
/// - **Quote**: `"` unless the sample has no `"` byte at all, some field starts with `'`
///   (at a line start or after a candidate delimiter), and parsing with `'` scores better than
///   with `"` -- or as well, when some field is wrapped in `'…'`.
/// - **Header**: with `F` the first record and `R` the later records with as many fields:
///   - if `R` is empty: a header unless some value of `F` parses as a non-text type;
///   - otherwise infer each column's type from `R` alone. It is *not* a header when at least
///     one column is non-text and, in every such column, `F`'s value is empty or parses as
///     that type too; in every other case (some typed column's first value doesn't fit, or
///     all columns are text) it is a header.
///
///   This is the brief's rule reduced: "first row unique, non-empty and differs in type or
///   shape" is one way to be a header, but since the default is "header" whenever the first
///   row does not look like data, only the data-like case needs testing. In particular an
///   all-text file is always taken to have a header.
pub fn sniff(sample: &[u8]) -> Dialect {
    let body = sample.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(sample);
    let (score, mut dialect) = best_delimiter(sample, b'"');
    if !body.contains(&b'"') && single_quote_at_field_start(body) {
        let (single, with_single) = best_delimiter(sample, b'\'');
        let records = sample_records(sample, dialect, SNIFF_RECORDS);
        if single > score || (single == score && score > 0.0 && wrapped_in_single_quotes(&records))
        {
            dialect = with_single;
        }
    }
    dialect.has_header = has_header(&sample_records(sample, dialect, SNIFF_RECORDS));
    dialect
}

/// The best-scoring delimiter for `quote` (score 0 and a comma when none qualifies).
fn best_delimiter(sample: &[u8], quote: u8) -> (f64, Dialect) {
    let mut best = (
        0.0,
        Dialect {
            quote,
            ..Dialect::default()
        },
    );
    for delimiter in DELIMITERS {
        let dialect = Dialect {
            delimiter,
            quote,
            has_header: true,
        };
        let records = sample_records(sample, dialect, SNIFF_RECORDS);
        if let Some(score) = consistency(&records)
            && score > best.0
        {
            best = (score, dialect);
        }
    }
    best
}

/// Share of records with the most common field count, if that count is above 1.
fn consistency(records: &[ByteRecord]) -> Option<f64> {
    let mut counts: HashMap<usize, usize> = HashMap::new();
    for record in records {
        *counts.entry(record.len()).or_default() += 1;
    }
    // Most frequent count; on a tie the wider one.
    let (width, hits) = counts
        .into_iter()
        .max_by_key(|&(width, hits)| (hits, width))?;
    (width > 1).then(|| hits as f64 / records.len() as f64)
}

/// Whether some field (as parsed with `"` quotes) is wrapped in `'…'`.
fn wrapped_in_single_quotes(records: &[ByteRecord]) -> bool {
    records
        .iter()
        .flatten()
        .any(|f| f.len() >= 2 && f.starts_with(b"'") && f.ends_with(b"'"))
}

fn single_quote_at_field_start(body: &[u8]) -> bool {
    let mut prev = b'\n';
    body.iter().any(|&b| {
        let hit = b == b'\'' && (prev == b'\n' || prev == b'\r' || DELIMITERS.contains(&prev));
        prev = b;
        hit
    })
}

/// The header rule documented on [`sniff`].
fn has_header(records: &[ByteRecord]) -> bool {
    let Some((first, rest)) = records.split_first() else {
        return true;
    };
    let width = first.len();
    let first: Vec<Option<&str>> = first.iter().map(|f| std::str::from_utf8(f).ok()).collect();
    if !rest.iter().any(|r| r.len() == width) {
        return !first
            .iter()
            .flatten()
            .any(|v| !v.is_empty() && !classify(v).is_empty());
    }
    let kinds = infer_kinds(rest, width);
    let mut typed = kinds
        .iter()
        .zip(&first)
        .filter(|(k, _)| **k != ColumnType::Text)
        .peekable();
    if typed.peek().is_none() {
        return true;
    }
    let looks_like_data = typed.all(|(&kind, value)| match value {
        Some(v) => v.is_empty() || classify(v).contains(kind),
        None => false,
    });
    !looks_like_data
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(delimiter: u8, quote: u8, has_header: bool) -> Dialect {
        Dialect {
            delimiter,
            quote,
            has_header,
        }
    }

    #[test]
    fn delimiters() {
        assert_eq!(
            sniff(b"id,name,price\n1,apple,1.5\n2,pear,2\n"),
            d(b',', b'"', true)
        );
        assert_eq!(
            sniff(b"id\tname\tprice\n1\tapple\t1.5\n"),
            d(b'\t', b'"', true)
        );
        assert_eq!(
            sniff(b"id;name;price\n1;apple;1,5\n2;pear;2,25\n"),
            d(b';', b'"', true)
        );
        assert_eq!(sniff(b"id|name\n1|a, b\n2|c, d\n"), d(b'|', b'"', true));
    }

    #[test]
    fn quoted_fields_with_delimiters_and_newlines() {
        let sample = b"id,comment,n\n1,\"a; b; c\",2\n2,\"x\ny;z\",3\n3,\"p|q\",4\n";
        assert_eq!(sniff(sample), d(b',', b'"', true));
        let sample = b"a;b\n\"1,2,3\";x\n\"4\n5,6\";y\n\"7,8\";z\n";
        assert_eq!(sniff(sample).delimiter, b';');
    }

    #[test]
    fn single_quotes() {
        let sample = b"id,name\n1,'Smith, J'\n2,'Doe, A'\n3,plain\n";
        assert_eq!(sniff(sample), d(b',', b'\'', true));
        // An apostrophe inside a field is no reason to switch.
        assert_eq!(sniff(b"id,name\n1,O'Brien\n2,x\n").quote, b'"');
        assert_eq!(sniff(b"'id','name'\n1,'x'\n").quote, b'\'');
    }

    #[test]
    fn header_or_not() {
        assert!(!sniff(b"1,2020-01-01,x\n2,2020-01-02,y\n").has_header);
        assert!(sniff(b"id,day,x\n1,2020-01-01,y\n").has_header);
        // First row fits every typed column (an empty value is a NULL).
        assert!(!sniff(b"1,,a\n2,3.5,b\n").has_header);
        assert!(sniff(b",amount\nx,1\ny,2\n").has_header);
        // All text: assumed to have a header.
        assert!(sniff(b"name,city\nalice,paris\nbob,rome\n").has_header);
        // A single row: a header unless it holds typed values.
        assert!(sniff(b"a,b,c\n").has_header);
        assert!(!sniff(b"1,b,c\n").has_header);
    }

    #[test]
    fn cut_sample_and_fallbacks() {
        // The last line is cut inside a quoted field; it must not spoil the guess.
        let sample = b"a|b\n1|x\n2|y\n3|\"long, and";
        assert_eq!(sniff(sample), d(b'|', b'"', true));
        assert_eq!(sniff(b""), d(b',', b'"', true));
        assert_eq!(sniff(b"one\ntwo\n").delimiter, b',');
        assert_eq!(sniff(b"\xEF\xBB\xBFa;b\n1;2\n"), d(b';', b'"', true));
    }
}
