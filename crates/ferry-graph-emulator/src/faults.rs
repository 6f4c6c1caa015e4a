//! Fault injection: throttling, server errors, latency, early token expiry, forced delta
//! resyncs, upload-session expiry, dropped downloads and ignored ranges. Settable in the config, through
//! `FaultsHandle` and through `PUT /_emulator/faults`.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The fault settings. Every field defaults to "no fault".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Throttle the next N Graph requests (counts down).
    pub throttle_next: u32,
    /// Probability in \[0, 1\] that a Graph request is throttled.
    pub throttle_rate: f64,
    /// Status for injected throttling: 429 (default when 0) or 503.
    pub throttle_status: u16,
    /// `Retry-After` seconds for the first throttled request (default 1); each further
    /// consecutive throttled request adds this much again.
    pub retry_after_secs: u64,
    /// A request budget per window, like Graph's resource-unit limits: from 80% of it
    /// on, responses carry `RateLimit-*` headers; past it, requests get 429.
    pub rate_limit: Option<RateLimit>,
    /// Probability in \[0, 1\] that a Graph request fails with a random 500/502/503/504.
    pub server_error_rate: f64,
    /// Fail the next N Graph requests with 503 (counts down).
    pub server_error_next: u32,
    /// Added latency for every request, in milliseconds.
    pub latency_ms: u64,
    /// Access tokens older than this many seconds are rejected as expired.
    pub token_expiry_secs: Option<u64>,
    /// The next delta request fails with 410 and this code (`resyncRequired`,
    /// `resyncChangesApplyDifferences` or `resyncChangesUploadDifferences`). One-shot.
    pub delta_resync: Option<String>,
    /// Upload sessions expire this many seconds after creation (overrides the config).
    pub upload_session_expiry_secs: Option<u64>,
    /// Drop the connection halfway through the next N downloads (counts down).
    pub drop_downloads_next: u32,
    /// Probability in \[0, 1\] that a download is cut halfway.
    pub drop_download_rate: f64,
    /// The next N upload fragments are stored but answered with a 500, as when the answer
    /// is lost on the way back: the client's retry overlaps and must resume from the
    /// session's `nextExpectedRanges` (counts down).
    pub lose_fragment_acks_next: u32,
    /// The next N ranged downloads ignore `Range` and answer 200 with the whole file, as
    /// some CDNs in front of OneDrive do (counts down).
    pub ignore_range_next: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateLimit {
    pub limit: u32,
    pub window_secs: u64,
}

/// What the fault layer decided for one Graph request.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Pass {
        rate: Option<RateHeaders>,
    },
    Throttle {
        status: u16,
        retry_after: u64,
        rate: Option<RateHeaders>,
    },
    ServerError(u16),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateHeaders {
    pub limit: u32,
    pub remaining: u32,
    pub reset: u64,
}

#[derive(Debug)]
struct State {
    faults: Faults,
    consecutive_throttled: u64,
    window_start: Instant,
    window_count: u32,
}

/// Shared, runtime-changeable fault settings.
#[derive(Debug, Clone)]
pub struct FaultsHandle {
    inner: Arc<Mutex<State>>,
}

impl FaultsHandle {
    pub fn new(faults: Faults) -> Self {
        FaultsHandle {
            inner: Arc::new(Mutex::new(State {
                faults,
                consecutive_throttled: 0,
                window_start: Instant::now(),
                window_count: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the settings inconsistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self) -> Faults {
        self.lock().faults.clone()
    }

    /// Replaces all settings and resets throttling counters.
    pub fn set(&self, faults: Faults) {
        let mut s = self.lock();
        s.faults = faults;
        s.consecutive_throttled = 0;
        s.window_count = 0;
        s.window_start = Instant::now();
    }

    pub fn update(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut self.lock().faults);
    }

    /// Clears every fault.
    pub fn clear(&self) {
        self.set(Faults::default());
    }

    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.lock().faults.latency_ms)
    }

    pub fn token_expiry(&self) -> Option<u64> {
        self.lock().faults.token_expiry_secs
    }

    pub fn upload_session_expiry(&self) -> Option<u64> {
        self.lock().faults.upload_session_expiry_secs
    }

    pub fn take_delta_resync(&self) -> Option<String> {
        self.lock().faults.delta_resync.take()
    }

    pub fn take_lost_fragment_ack(&self) -> bool {
        let mut s = self.lock();
        if s.faults.lose_fragment_acks_next > 0 {
            s.faults.lose_fragment_acks_next -= 1;
            return true;
        }
        false
    }

    pub fn take_ignore_range(&self) -> bool {
        let mut s = self.lock();
        if s.faults.ignore_range_next > 0 {
            s.faults.ignore_range_next -= 1;
            return true;
        }
        false
    }

    pub fn take_drop_download(&self) -> bool {
        let mut s = self.lock();
        if s.faults.drop_downloads_next > 0 {
            s.faults.drop_downloads_next -= 1;
            return true;
        }
        s.faults.drop_download_rate > 0.0 && crate::util::random_f64() < s.faults.drop_download_rate
    }

    /// Decides the fate of one Graph request.
    pub fn verdict(&self) -> Verdict {
        let mut s = self.lock();
        let (rate, over_limit) = rate_window(&mut s);
        if s.faults.server_error_next > 0 {
            s.faults.server_error_next -= 1;
            return Verdict::ServerError(503);
        }
        if s.faults.server_error_rate > 0.0
            && crate::util::random_f64() < s.faults.server_error_rate
        {
            const CODES: [u16; 4] = [500, 502, 503, 504];
            let i = (crate::util::random_f64() * 4.0) as usize;
            return Verdict::ServerError(CODES[i.min(3)]);
        }
        let injected = if s.faults.throttle_next > 0 {
            s.faults.throttle_next -= 1;
            true
        } else {
            s.faults.throttle_rate > 0.0 && crate::util::random_f64() < s.faults.throttle_rate
        };
        if injected || over_limit {
            s.consecutive_throttled += 1;
            let base = if s.faults.retry_after_secs == 0 {
                1
            } else {
                s.faults.retry_after_secs
            };
            let mut retry_after = base.saturating_mul(s.consecutive_throttled);
            if let (true, Some(r)) = (over_limit && !injected, rate) {
                retry_after = r.reset.max(1);
            }
            let status = match s.faults.throttle_status {
                503 => 503,
                _ => 429,
            };
            return Verdict::Throttle {
                status,
                retry_after,
                rate,
            };
        }
        s.consecutive_throttled = 0;
        Verdict::Pass { rate }
    }
}

/// Counts the request against the rate-limit window; returns headers once usage reaches
/// 80% (Graph only sends `RateLimit-*` then), and whether this request is over budget.
fn rate_window(s: &mut State) -> (Option<RateHeaders>, bool) {
    let Some(limit) = s.faults.rate_limit else {
        return (None, false);
    };
    let window = Duration::from_secs(limit.window_secs.max(1));
    let elapsed = s.window_start.elapsed();
    if elapsed >= window {
        s.window_start = Instant::now();
        s.window_count = 0;
    }
    s.window_count = s.window_count.saturating_add(1);
    let reset = window
        .saturating_sub(s.window_start.elapsed())
        .as_secs()
        .max(1);
    let used = s.window_count;
    if u64::from(used) * 5 < u64::from(limit.limit) * 4 {
        return (None, false);
    }
    let headers = RateHeaders {
        limit: limit.limit,
        remaining: limit.limit.saturating_sub(used),
        reset,
    };
    (Some(headers), used > limit.limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_next_grows_retry_after() {
        let h = FaultsHandle::new(Faults {
            throttle_next: 3,
            retry_after_secs: 2,
            ..Faults::default()
        });
        let ra: Vec<u64> = (0..3)
            .map(|_| match h.verdict() {
                Verdict::Throttle { retry_after, .. } => retry_after,
                v => panic!("unexpected {v:?}"),
            })
            .collect();
        assert_eq!(ra, vec![2, 4, 6]);
        assert_eq!(h.verdict(), Verdict::Pass { rate: None });
    }

    #[test]
    fn rate_limit_headers_then_429() {
        let h = FaultsHandle::new(Faults {
            rate_limit: Some(RateLimit {
                limit: 5,
                window_secs: 60,
            }),
            ..Faults::default()
        });
        assert_eq!(h.verdict(), Verdict::Pass { rate: None });
        assert_eq!(h.verdict(), Verdict::Pass { rate: None });
        assert_eq!(h.verdict(), Verdict::Pass { rate: None });
        assert!(matches!(h.verdict(), Verdict::Pass { rate: Some(r) } if r.remaining == 1));
        assert!(matches!(h.verdict(), Verdict::Pass { rate: Some(r) } if r.remaining == 0));
        assert!(matches!(h.verdict(), Verdict::Throttle { status: 429, .. }));
    }
}
