//! Column types and the value parsers shared by inference and reading.

use arrow_schema::{DataType, TimeUnit};
use serde::{Deserialize, Serialize};
use time::{Date, Month};

/// Column types, with one fixed Arrow -> Postgres mapping:
///
/// | type          | Arrow                                  | Postgres           |
/// |---------------|----------------------------------------|--------------------|
/// | `Bool`        | `Boolean`                              | `boolean`          |
/// | `Int64`       | `Int64`                                | `bigint`           |
/// | `Float64`     | `Float64`                              | `double precision` |
/// | `Date`        | `Date32`                               | `date`             |
/// | `Timestamp`   | `Timestamp(Microsecond, None)`         | `timestamp`        |
/// | `TimestampTz` | `Timestamp(Microsecond, Some("UTC"))`  | `timestamptz`      |
/// | `Text`        | `Utf8`                                 | `text`             |
///
/// `TimestampTz` values are converted to UTC when read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    Bool,
    Int64,
    Float64,
    Date,
    Timestamp,
    TimestampTz,
    Text,
}

/// A column of the target table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub kind: ColumnType,
}

impl ColumnType {
    /// The non-text types, narrowest first; inference picks the first one that fits.
    pub(super) const TYPED: [ColumnType; 6] = [
        ColumnType::Bool,
        ColumnType::Int64,
        ColumnType::Float64,
        ColumnType::Date,
        ColumnType::Timestamp,
        ColumnType::TimestampTz,
    ];

    /// The Arrow type of the column's array.
    pub fn arrow(self) -> DataType {
        match self {
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Date => DataType::Date32,
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            ColumnType::TimestampTz => {
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            }
            ColumnType::Text => DataType::Utf8,
        }
    }

    /// The Postgres type name.
    pub fn postgres(self) -> &'static str {
        match self {
            ColumnType::Bool => "boolean",
            ColumnType::Int64 => "bigint",
            ColumnType::Float64 => "double precision",
            ColumnType::Date => "date",
            ColumnType::Timestamp => "timestamp",
            ColumnType::TimestampTz => "timestamptz",
            ColumnType::Text => "text",
        }
    }

    /// Parses a type name: the serde names (`"int64"`, `"timestamptz"`, ...) or Postgres names
    /// and common aliases (`"bigint"`, `"int8"`, `"double precision"`, `"float8"`,
    /// `"timestamp with time zone"`, ...). Case and repeated spaces don't matter.
    pub fn parse(name: &str) -> Option<Self> {
        let name = name
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_ascii_lowercase();
        Some(match name.as_str() {
            "bool" | "boolean" => ColumnType::Bool,
            "int64" | "bigint" | "int8" => ColumnType::Int64,
            "float64" | "double precision" | "float8" | "double" => ColumnType::Float64,
            "date" => ColumnType::Date,
            "timestamp" | "timestamp without time zone" => ColumnType::Timestamp,
            "timestamptz" | "timestamp with time zone" => ColumnType::TimestampTz,
            "text" => ColumnType::Text,
            _ => return None,
        })
    }

    fn bit(self) -> u8 {
        match self {
            ColumnType::Bool => 1,
            ColumnType::Int64 => 1 << 1,
            ColumnType::Float64 => 1 << 2,
            ColumnType::Date => 1 << 3,
            ColumnType::Timestamp => 1 << 4,
            ColumnType::TimestampTz => 1 << 5,
            ColumnType::Text => 0,
        }
    }
}

/// A set of non-text types, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TypeSet(u8);

impl TypeSet {
    pub(super) const ALL: TypeSet = TypeSet(0b11_1111);

    pub(super) fn contains(self, kind: ColumnType) -> bool {
        self.0 & kind.bit() != 0
    }

    pub(super) fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(super) fn intersect(self, other: TypeSet) -> TypeSet {
        TypeSet(self.0 & other.0)
    }

    /// The narrowest type in the set, or `Text` when it is empty.
    pub(super) fn narrowest(self) -> ColumnType {
        ColumnType::TYPED
            .into_iter()
            .find(|&k| self.contains(k))
            .unwrap_or(ColumnType::Text)
    }
}

/// A parsed, non-null value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value {
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Days since 1970-01-01.
    Days(i32),
    /// Microseconds since 1970-01-01 00:00:00 (UTC for `TimestampTz`).
    Micros(i64),
}

/// Parses a non-empty `s` as `kind`. `Text` is never parsed (returns `None`).
pub(crate) fn parse_value(kind: ColumnType, s: &str) -> Option<Value> {
    match kind {
        ColumnType::Bool => parse_bool(s).map(Value::Bool),
        ColumnType::Int64 => parse_int(s).map(Value::Int),
        ColumnType::Float64 => s.parse().ok().map(Value::Float),
        ColumnType::Date => match parse_temporal(s)? {
            Temporal::Date(days) => Some(Value::Days(days)),
            _ => None,
        },
        // A bare date is midnight (UTC for TimestampTz), so dates widen to timestamps.
        ColumnType::Timestamp => match parse_temporal(s)? {
            Temporal::Date(days) => Some(Value::Micros(i64::from(days) * DAY_MICROS)),
            Temporal::Naive(micros) => Some(Value::Micros(micros)),
            Temporal::Zoned(_) => None,
        },
        ColumnType::TimestampTz => match parse_temporal(s)? {
            Temporal::Date(days) => Some(Value::Micros(i64::from(days) * DAY_MICROS)),
            Temporal::Naive(_) => None,
            Temporal::Zoned(micros) => Some(Value::Micros(micros)),
        },
        ColumnType::Text => None,
    }
}

/// The types a non-empty value could be inferred as. Stricter than [`parse_value`] in two
/// ways, so that no digits are lost: numbers with a leading zero ("007", "01.5", e.g. ZIP
/// codes) and integers too large for an i64 count as text only.
pub(super) fn classify(s: &str) -> TypeSet {
    let mut bits = 0;
    if parse_bool(s).is_some() {
        bits |= ColumnType::Bool.bit();
    }
    let (int, float) = (ColumnType::Int64.bit(), ColumnType::Float64.bit());
    bits |= if has_leading_zero(s) {
        0
    } else if is_integer(s) {
        // One too large for an i64 is text: as a double it would lose digits.
        if parse_int(s).is_some() {
            int | float
        } else {
            0
        }
    } else if s.parse::<f64>().is_ok() {
        float
    } else {
        0
    };
    bits |= match parse_temporal(s) {
        Some(Temporal::Date(_)) => {
            ColumnType::Date.bit() | ColumnType::Timestamp.bit() | ColumnType::TimestampTz.bit()
        }
        Some(Temporal::Naive(_)) => ColumnType::Timestamp.bit(),
        Some(Temporal::Zoned(_)) => ColumnType::TimestampTz.bit(),
        None => 0,
    };
    TypeSet(bits)
}

pub(super) const DAY_MICROS: i64 = 86_400_000_000;
const UNIX_EPOCH_JULIAN_DAY: i32 = 2_440_588;

/// true/false/t/f/yes/no, any case. Not 0/1: those are integers.
fn parse_bool(s: &str) -> Option<bool> {
    const WORDS: [(&str, bool); 6] = [
        ("true", true),
        ("t", true),
        ("yes", true),
        ("false", false),
        ("f", false),
        ("no", false),
    ];
    WORDS
        .iter()
        .find(|(w, _)| w.eq_ignore_ascii_case(s))
        .map(|&(_, v)| v)
}

/// An optional sign and ASCII digits that fit in an i64.
fn parse_int(s: &str) -> Option<i64> {
    if is_integer(s) { s.parse().ok() } else { None }
}

fn is_integer(s: &str) -> bool {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Whether the integer part has two or more digits and starts with '0'.
fn has_leading_zero(s: &str) -> bool {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s).as_bytes();
    let run = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    run >= 2 && digits[0] == b'0'
}

enum Temporal {
    /// Days since the Unix epoch.
    Date(i32),
    /// Microseconds since the epoch, no offset given.
    Naive(i64),
    /// Microseconds since the epoch in UTC.
    Zoned(i64),
}

/// `YYYY-MM-DD`, optionally followed by `( |T)HH:MM:SS[.f{1,6}]` and then optionally by
/// `Z`, `±HH`, `±HHMM` or `±HH:MM`.
fn parse_temporal(s: &str) -> Option<Temporal> {
    let b = s.as_bytes();
    let days = parse_ymd(b.get(..10)?)?;
    let rest = &b[10..];
    if rest.is_empty() {
        return Some(Temporal::Date(days));
    }
    let (time, mut rest) = (rest.get(..9)?, &rest[9..]);
    if !matches!(time[0], b' ' | b'T') || time[3] != b':' || time[6] != b':' {
        return None;
    }
    let (h, m, sec) = (
        number(&time[1..3])?,
        number(&time[4..6])?,
        number(&time[7..9])?,
    );
    if h > 23 || m > 59 || sec > 59 {
        return None;
    }
    let mut micros = i64::from(days) * DAY_MICROS + (h * 3600 + m * 60 + sec) * 1_000_000;
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|b| b.is_ascii_digit()).count();
        if n > 6 {
            return None;
        }
        // number() rejects n == 0.
        micros += number(&frac[..n])? * 10_i64.pow(6 - n as u32);
        rest = &frac[n..];
    }
    if rest.is_empty() {
        return Some(Temporal::Naive(micros));
    }
    Some(Temporal::Zoned(micros - parse_offset(rest)? * 1_000_000))
}

/// `YYYY-MM-DD` as days since the epoch; checks the calendar.
fn parse_ymd(b: &[u8]) -> Option<i32> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = i32::try_from(number(&b[..4])?).ok()?;
    let month = Month::try_from(u8::try_from(number(&b[5..7])?).ok()?).ok()?;
    let day = u8::try_from(number(&b[8..10])?).ok()?;
    let date = Date::from_calendar_date(year, month, day).ok()?;
    Some(date.to_julian_day() - UNIX_EPOCH_JULIAN_DAY)
}

/// A UTC offset in seconds.
fn parse_offset(b: &[u8]) -> Option<i64> {
    if b == b"Z" || b == b"z" {
        return Some(0);
    }
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = match &b[1..] {
        [_, _] => (number(&b[1..3])?, 0),
        [_, _, _, _] => (number(&b[1..3])?, number(&b[3..5])?),
        [_, _, b':', _, _] => (number(&b[1..3])?, number(&b[4..6])?),
        _ => return None,
    };
    if h > 23 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

/// A short run (1..=6 bytes) of ASCII digits.
fn number(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 6 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(s: &str, kind: ColumnType) -> Option<i64> {
        match parse_value(kind, s)? {
            Value::Micros(m) => Some(m),
            _ => None,
        }
    }

    #[test]
    fn type_names_round_trip() {
        for kind in ColumnType::TYPED.into_iter().chain([ColumnType::Text]) {
            assert_eq!(ColumnType::parse(kind.postgres()), Some(kind));
            let serde_name = serde_json::to_string(&kind).unwrap();
            assert_eq!(ColumnType::parse(serde_name.trim_matches('"')), Some(kind));
        }
        assert_eq!(
            ColumnType::parse("  Double   Precision "),
            Some(ColumnType::Float64)
        );
        assert_eq!(ColumnType::parse("varchar"), None);
        assert_eq!(
            serde_json::to_string(&ColumnType::TimestampTz).unwrap(),
            "\"timestamptz\""
        );
    }

    #[test]
    fn scalars() {
        assert_eq!(
            parse_value(ColumnType::Bool, "YES"),
            Some(Value::Bool(true))
        );
        assert_eq!(parse_value(ColumnType::Bool, "f"), Some(Value::Bool(false)));
        assert_eq!(parse_value(ColumnType::Bool, "1"), None);
        assert_eq!(parse_value(ColumnType::Int64, "+42"), Some(Value::Int(42)));
        assert_eq!(
            parse_value(ColumnType::Int64, "-9223372036854775808"),
            Some(Value::Int(i64::MIN))
        );
        assert_eq!(parse_value(ColumnType::Int64, "9223372036854775808"), None);
        assert_eq!(parse_value(ColumnType::Int64, "1.0"), None);
        assert_eq!(parse_value(ColumnType::Int64, "+"), None);
        assert_eq!(
            parse_value(ColumnType::Float64, "1e3"),
            Some(Value::Float(1000.0))
        );
        assert_eq!(
            parse_value(ColumnType::Float64, "-INF"),
            Some(Value::Float(f64::NEG_INFINITY))
        );
        assert!(
            matches!(parse_value(ColumnType::Float64, "nan"), Some(Value::Float(f)) if f.is_nan())
        );
        assert_eq!(parse_value(ColumnType::Float64, "1,5"), None);
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(
            parse_value(ColumnType::Date, "1970-01-02"),
            Some(Value::Days(1))
        );
        assert_eq!(
            parse_value(ColumnType::Date, "1969-12-31"),
            Some(Value::Days(-1))
        );
        assert_eq!(parse_value(ColumnType::Date, "2023-02-29"), None);
        assert_eq!(parse_value(ColumnType::Date, "2023-2-01"), None);
        let base = 86_400_000_000 + 3_723_000_000; // 1970-01-02 01:02:03
        assert_eq!(
            micros("1970-01-02 01:02:03", ColumnType::Timestamp),
            Some(base)
        );
        assert_eq!(
            micros("1970-01-02T01:02:03.5", ColumnType::Timestamp),
            Some(base + 500_000)
        );
        assert_eq!(
            micros("1970-01-02", ColumnType::Timestamp),
            Some(86_400_000_000)
        );
        assert_eq!(micros("1970-01-02 01:02:03Z", ColumnType::Timestamp), None);
        assert_eq!(
            micros("1970-01-02 01:02:03.1234567", ColumnType::Timestamp),
            None
        );
        assert_eq!(micros("1970-01-02 01:02:03.", ColumnType::Timestamp), None);
        assert_eq!(micros("1970-01-02 24:00:00", ColumnType::Timestamp), None);
        let hour = 3_600_000_000;
        for (s, want) in [
            ("1970-01-02 01:02:03Z", base),
            ("1970-01-02 01:02:03+01", base - hour),
            ("1970-01-02 01:02:03-0130", base + hour * 3 / 2),
            ("1970-01-02T01:02:03.000001+01:00", base - hour + 1),
        ] {
            assert_eq!(micros(s, ColumnType::TimestampTz), Some(want), "{s}");
        }
        assert_eq!(micros("1970-01-02 01:02:03", ColumnType::TimestampTz), None);
        assert_eq!(
            micros("1970-01-02 01:02:03+1", ColumnType::TimestampTz),
            None
        );
        assert_eq!(
            micros("1970-01-02 01:02:03 +01:00", ColumnType::TimestampTz),
            None
        );
    }

    #[test]
    fn classify_keeps_leading_zeros_as_text() {
        assert!(!classify("007").contains(ColumnType::Int64));
        assert!(!classify("-01.5").contains(ColumnType::Float64));
        assert!(classify("0").contains(ColumnType::Int64));
        assert!(classify("0.5").contains(ColumnType::Float64));
        assert_eq!(classify("2024-01-01").narrowest(), ColumnType::Date);
        assert_eq!(classify("hello"), TypeSet(0));
    }
}
