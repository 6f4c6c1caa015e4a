//! Gateway metrics in Prometheus' text format: requests, errors, bytes and latency by
//! operation.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0];

#[derive(Debug, Default)]
struct Latency {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Latency>>,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    in_flight: AtomicI64,
}

impl Metrics {
    pub fn start(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub fn finish(&self, op: &str, status: u16, elapsed: Duration, bytes_in: u64, bytes_out: u64) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes_in, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes_out, Ordering::Relaxed);
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((op.to_owned(), status))
            .or_default() += 1;
        let mut latency = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let entry = latency.entry(op.to_owned()).or_default();
        let secs = elapsed.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                entry.counts[i] += 1;
            }
        }
        entry.count += 1;
        entry.sum += secs;
    }

    /// The metrics in Prometheus' text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        out.push_str("# HELP ferry_s3_requests_total S3 requests by operation and status.\n");
        out.push_str("# TYPE ferry_s3_requests_total counter\n");
        for ((op, status), n) in requests.iter() {
            let _ = writeln!(
                out,
                "ferry_s3_requests_total{{op=\"{op}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP ferry_s3_errors_total S3 requests answered with an error status.\n");
        out.push_str("# TYPE ferry_s3_errors_total counter\n");
        let mut errors: BTreeMap<&str, u64> = BTreeMap::new();
        for ((op, status), n) in requests.iter() {
            if *status >= 400 {
                *errors.entry(op).or_default() += n;
            }
        }
        for (op, n) in errors {
            let _ = writeln!(out, "ferry_s3_errors_total{{op=\"{op}\"}} {n}");
        }
        drop(requests);
        out.push_str("# HELP ferry_s3_request_duration_seconds Time to answer, by operation.\n");
        out.push_str("# TYPE ferry_s3_request_duration_seconds histogram\n");
        let latency = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        for (op, l) in latency.iter() {
            for (bound, n) in BUCKETS.iter().zip(l.counts) {
                let _ = writeln!(
                    out,
                    "ferry_s3_request_duration_seconds_bucket{{op=\"{op}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "ferry_s3_request_duration_seconds_bucket{{op=\"{op}\",le=\"+Inf\"}} {}",
                l.count
            );
            let _ = writeln!(
                out,
                "ferry_s3_request_duration_seconds_sum{{op=\"{op}\"}} {}",
                l.sum
            );
            let _ = writeln!(
                out,
                "ferry_s3_request_duration_seconds_count{{op=\"{op}\"}} {}",
                l.count
            );
        }
        drop(latency);
        let counters = [
            (
                "ferry_s3_received_bytes_total",
                "Request body bytes received.",
                self.bytes_in.load(Ordering::Relaxed) as i64,
                "counter",
            ),
            (
                "ferry_s3_sent_bytes_total",
                "Response body bytes sent.",
                self.bytes_out.load(Ordering::Relaxed) as i64,
                "counter",
            ),
            (
                "ferry_s3_requests_in_flight",
                "Requests being answered now.",
                self.in_flight.load(Ordering::Relaxed),
                "gauge",
            ),
        ];
        for (name, help, value, kind) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out
    }
}
