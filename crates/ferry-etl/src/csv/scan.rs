//! Record boundaries, physical line numbers and the record-size bound.
//!
//! [`Feed`] sits between the input and the csv parser. It runs the same state machine as
//! csv-core for our settings (CR, LF or CRLF terminators, doubled quotes, no escapes or
//! comments) over every byte it hands on, which tells it:
//! - the physical line each record starts on (csv's `Position` points at the bytes consumed
//!   *before* a record, so blank lines and CRLF endings shift it);
//! - whether the input ended inside a quoted field (csv accepts that silently);
//! - how long the current record is. Once a record passes the limit, `Feed` stops handing it
//!   on, closes it with a synthetic `"` and/or `\n` so the parser stays in step, and skips the
//!   rest of it. The parser thus never holds more than the limit of one record.
//!
//! Both machines see the same bytes, so the n-th record from csv is the n-th one `Feed` saw.

use std::collections::VecDeque;
use std::io::{self, Read};

use csv::ByteRecord;

use super::{Dialect, Error};

const BUF_BYTES: usize = 64 * 1024;
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// What [`Feed`] learned about one record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Meta {
    /// 1-based physical line of the record's first byte.
    pub line: u64,
    /// The record was longer than the limit and was cut short.
    pub too_long: bool,
    /// The input ended inside a quoted field of this record.
    pub unterminated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    StartRecord,
    StartField,
    InField,
    InQuoted,
    /// A quote inside a quoted field: either its end or the first half of `""`.
    QuoteInQuoted,
}

/// A reader adapter that tracks records (see the module docs).
pub(super) struct Feed<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    started: bool,
    eof: bool,
    delimiter: u8,
    quote: u8,
    /// The bytes that can change the state: delimiter, quote, CR, LF.
    special: [bool; 256],
    max: usize,
    state: State,
    line: u64,
    rec_len: usize,
    skipping: bool,
    /// Synthetic bytes still to hand on to close a cut record.
    closing: &'static [u8],
    /// Records seen but not yet returned by the parser.
    metas: VecDeque<Meta>,
}

impl<R: Read> Feed<R> {
    fn new(inner: R, dialect: Dialect, max: usize) -> Self {
        let mut special = [false; 256];
        for b in [dialect.delimiter, dialect.quote, b'\r', b'\n'] {
            special[usize::from(b)] = true;
        }
        Feed {
            inner,
            buf: vec![0; BUF_BYTES].into_boxed_slice(),
            pos: 0,
            len: 0,
            started: false,
            eof: false,
            delimiter: dialect.delimiter,
            quote: dialect.quote,
            special,
            max: max.max(1),
            state: State::StartRecord,
            line: 1,
            rec_len: 0,
            skipping: false,
            closing: b"",
            metas: VecDeque::new(),
        }
    }

    /// Refills the buffer; drops a UTF-8 byte-order mark at the start of the input.
    fn fill(&mut self) -> io::Result<()> {
        self.pos = 0;
        self.len = 0;
        loop {
            match self.inner.read(&mut self.buf[self.len..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => {
                    self.len += n;
                    if self.started || self.len >= BOM.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if !self.started {
            self.started = true;
            if self.buf[..self.len].starts_with(BOM) {
                self.pos = BOM.len();
            }
        }
        Ok(())
    }

    /// Scans up to `n` buffered bytes. Returns how many were consumed and how many of those
    /// (a prefix) are to be handed on; stops early when a record is cut or a skip ends.
    fn scan(&mut self, n: usize) -> (usize, usize) {
        let mut i = 0;
        while i < n {
            if matches!(self.state, State::InField | State::InQuoted) {
                // Fast path: ordinary bytes inside a field don't change the state.
                let end = if self.skipping {
                    n
                } else {
                    n.min(i.saturating_add(self.max.saturating_sub(self.rec_len)))
                };
                let special = &self.special;
                let run = self.buf[self.pos + i..self.pos + end]
                    .iter()
                    .position(|&b| special[usize::from(b)])
                    .unwrap_or(end - i);
                self.rec_len += run;
                i += run;
                if i == n {
                    break;
                }
            }
            let b = self.buf[self.pos + i];
            if !self.skipping && self.rec_len >= self.max && self.grows_record(b) {
                self.cut();
                return (i, i);
            }
            self.step(b);
            i += 1;
            if self.skipping && self.state == State::StartRecord {
                self.skipping = false;
                return (i, 0);
            }
        }
        if self.skipping { (n, 0) } else { (n, n) }
    }

    /// Whether `b` would add a byte to the record in progress (rather than end it, or start
    /// a new one).
    fn grows_record(&self, b: u8) -> bool {
        let term = b == b'\n' || b == b'\r';
        let (q, d) = (self.quote, self.delimiter);
        match self.state {
            State::StartRecord => false,
            State::StartField | State::QuoteInQuoted => b == q || b == d || !term,
            State::InField => b == d || !term,
            State::InQuoted => true,
        }
    }

    /// Stops handing on the current record and closes it for the parser.
    fn cut(&mut self) {
        self.closing = if self.state == State::InQuoted {
            b"\"\n"
        } else {
            b"\n"
        };
        self.skipping = true;
        if let Some(meta) = self.metas.back_mut() {
            meta.too_long = true;
        }
    }

    /// One byte through the state machine (same order of checks as csv-core).
    fn step(&mut self, b: u8) {
        let term = b == b'\n' || b == b'\r';
        let (q, d) = (self.quote, self.delimiter);
        self.state = match self.state {
            State::StartRecord if term => State::StartRecord,
            State::StartRecord => {
                self.metas.push_back(Meta {
                    line: self.line,
                    ..Meta::default()
                });
                self.rec_len = 0;
                self.field_start(b)
            }
            State::StartField => self.field_start(b),
            State::InField if b == d => State::StartField,
            State::InField if term => State::StartRecord,
            State::InField => State::InField,
            State::InQuoted if b == q => State::QuoteInQuoted,
            State::InQuoted => State::InQuoted,
            State::QuoteInQuoted if b == q => State::InQuoted,
            State::QuoteInQuoted if b == d => State::StartField,
            State::QuoteInQuoted if term => State::StartRecord,
            State::QuoteInQuoted => State::InField,
        };
        if self.state != State::StartRecord {
            self.rec_len += 1;
        }
        if b == b'\n' {
            self.line += 1;
        }
    }

    fn field_start(&self, b: u8) -> State {
        if b == self.quote {
            State::InQuoted
        } else if b == self.delimiter {
            State::StartField
        } else if b == b'\n' || b == b'\r' {
            State::StartRecord
        } else {
            State::InField
        }
    }
}

impl<R: Read> Read for Feed<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.closing.is_empty() {
                let n = self.closing.len().min(out.len());
                out[..n].copy_from_slice(&self.closing[..n]);
                self.closing = &self.closing[n..];
                return Ok(n);
            }
            if self.pos == self.len {
                if self.eof {
                    if self.state == State::InQuoted
                        && let Some(meta) = self.metas.back_mut()
                    {
                        meta.unterminated = true;
                    }
                    return Ok(0);
                }
                self.fill()?;
                continue;
            }
            let n = (self.len - self.pos).min(out.len());
            let (consumed, served) = self.scan(n);
            out[..served].copy_from_slice(&self.buf[self.pos..self.pos + served]);
            self.pos += consumed;
            if served > 0 {
                return Ok(served);
            }
        }
    }
}

/// csv records paired with what [`Feed`] learned about them.
pub(super) struct Records<R> {
    csv: csv::Reader<Feed<R>>,
    record: ByteRecord,
}

impl<R: Read> Records<R> {
    pub(super) fn new(input: R, dialect: Dialect, max_record_bytes: usize) -> Self {
        let csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(dialect.delimiter)
            .quote(dialect.quote)
            .buffer_capacity(BUF_BYTES)
            .from_reader(Feed::new(input, dialect, max_record_bytes));
        Records {
            csv,
            record: ByteRecord::new(),
        }
    }

    /// The next record, or `None` at the end of the input.
    pub(super) fn next(&mut self) -> Result<Option<(&ByteRecord, Meta)>, Error> {
        if !self.csv.read_byte_record(&mut self.record)? {
            return Ok(None);
        }
        let meta = self.csv.get_mut().metas.pop_front();
        debug_assert!(meta.is_some(), "csv found a record the scanner did not");
        // Should never be needed; csv's line is close enough as a fallback.
        let meta = meta.unwrap_or_else(|| Meta {
            line: self.record.position().map_or(0, |p| p.line()),
            ..Meta::default()
        });
        Ok(Some((&self.record, meta)))
    }
}

/// Complete, well-formed records from the start of `sample`, at most `limit`. The sample may
/// end mid-record: a last record inside an open quote is always dropped, and one not followed
/// by a line break is dropped when there are at least 3 records (a shorter sample is more
/// likely a whole small file than a cut).
pub(super) fn sample_records(sample: &[u8], dialect: Dialect, limit: usize) -> Vec<ByteRecord> {
    let mut records = Records::new(sample, dialect, usize::MAX);
    let mut out = Vec::new();
    let mut last_unterminated = false;
    while out.len() <= limit {
        match records.next() {
            Ok(Some((record, meta))) => {
                last_unterminated = meta.unterminated;
                out.push(record.clone());
            }
            Ok(None) | Err(_) => break,
        }
    }
    if out.len() > limit {
        // The last one was followed by another, so everything kept is complete.
        out.truncate(limit);
    } else {
        let ends_with_break = matches!(sample.last(), Some(b'\n' | b'\r'));
        if last_unterminated || (!ends_with_break && out.len() >= 3) {
            out.pop();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: Dialect = Dialect {
        delimiter: b',',
        quote: b'"',
        has_header: false,
    };

    fn scan_all(input: &[u8], max: usize) -> Vec<(Vec<String>, Meta)> {
        let mut records = Records::new(input, CSV, max);
        let mut out = Vec::new();
        while let Some((record, meta)) = records.next().unwrap() {
            let fields = record
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect();
            out.push((fields, meta));
        }
        out
    }

    fn lines(input: &[u8]) -> Vec<u64> {
        scan_all(input, usize::MAX)
            .iter()
            .map(|(_, m)| m.line)
            .collect()
    }

    #[test]
    fn physical_lines() {
        assert_eq!(lines(b"a,b\r\nc,d\r\ne,f"), [1, 2, 3]);
        assert_eq!(lines(b"a,b\n\n\nc,d\n"), [1, 4]);
        assert_eq!(lines(b"a,\"x\ny\"\nc,d\n"), [1, 3]);
        assert_eq!(lines(b"a\rb\r\rc"), [1, 1, 1]);
        assert_eq!(lines(b"\xEF\xBB\xBF\na,b\n"), [2]);
    }

    #[test]
    fn unterminated_quote() {
        let records = scan_all(b"a,b\nc,\"d\ne,f\n", usize::MAX);
        assert_eq!(records.len(), 2);
        assert!(!records[0].1.unterminated);
        assert!(records[1].1.unterminated);
        // A closing quote right at the end is fine.
        assert!(!scan_all(b"a,\"b\"", usize::MAX)[0].1.unterminated);
    }

    #[test]
    fn cuts_long_records_and_stays_in_step() {
        let input = b"abcdef,\"gh\nij\"\n\"klmnop\nq\",r\n1,2\r\nxxxxxxxxx,\"\"\n\"\"\"b\"\n";
        let records = scan_all(input, 5);
        let got: Vec<_> = records
            .iter()
            .map(|(f, m)| (f.join("|"), m.line, m.too_long))
            .collect();
        assert_eq!(
            got,
            [
                ("abcde".to_string(), 1, true),
                ("klmn".to_string(), 3, true),
                ("1|2".to_string(), 5, false),
                ("xxxxx".to_string(), 6, true),
                ("\"b".to_string(), 7, false),
            ]
        );
        // Exactly at the limit is fine.
        assert!(!scan_all(b"abcde\nf", 5)[0].1.too_long);
    }

    #[test]
    fn sample_drops_a_cut_last_record() {
        let count = |s: &[u8]| sample_records(s, CSV, 100).len();
        assert_eq!(count(b"a\nb\nc\nd"), 3);
        assert_eq!(count(b"a\nb\nc\nd\n"), 4);
        assert_eq!(count(b"a\nb"), 2);
        assert_eq!(count(b"a\n\"b\nc"), 1);
        assert_eq!(sample_records(b"a\nb\nc\nd", CSV, 2).len(), 2);
    }
}
