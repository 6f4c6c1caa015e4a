//! Sending Graph requests: bearer tokens, one refresh on 401, throttling honoured for the whole
//! client, exponential backoff with jitter within a total budget, errors parsed by code.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::{RequestBuilder, Response, StatusCode};

use crate::auth::Authenticator;
use crate::config::RetryPolicy;
use crate::error::{Error, Result, graph_error};

/// What [`Transport::send`] calls the GET of a file's bytes.
pub(crate) const DOWNLOAD: &str = "download";

/// Whether a request carries the bearer token. Pre-authenticated URLs (downloads, upload
/// sessions) must not: they are often on other hosts, and the token is not theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
    Bearer,
    PreAuthenticated,
}

/// Once Graph says "wait", every request of this client waits, not just the one throttled.
#[derive(Debug, Default)]
struct ThrottleGate {
    until: std::sync::Mutex<Option<Instant>>,
}

impl ThrottleGate {
    fn pause(&self, wait: Duration) {
        let mut until = self.until.lock().unwrap_or_else(|p| p.into_inner());
        let end = Instant::now() + wait;
        if until.is_none_or(|u| u < end) {
            *until = Some(end);
        }
    }

    async fn wait(&self) {
        let until = *self.until.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(until) = until {
            tokio::time::sleep_until(until.into()).await;
        }
    }
}

/// The transport shared by every Graph call of a client.
#[derive(Debug)]
pub(crate) struct Transport {
    pub http: reqwest::Client,
    pub auth: Arc<Authenticator>,
    retry: RetryPolicy,
    gate: ThrottleGate,
    throttled: std::sync::atomic::AtomicU64,
}

/// Statuses Graph uses for "slow down" and "try again".
fn is_throttle(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 503 | 504 | 509)
}

/// `Retry-After` in seconds or as an HTTP date.
pub(crate) fn retry_after(response: &Response) -> Option<Duration> {
    parse_retry_after(
        response.headers().get("retry-after")?.to_str().ok()?,
        SystemTime::now(),
    )
}

fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or_default())
}

/// A little randomness for backoff, so that many clients do not retry in lockstep.
fn jitter(max: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let mut x = u64::from(nanos) | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    max.mul_f64((x % 1000) as f64 / 1000.0)
}

impl Transport {
    pub fn new(http: reqwest::Client, auth: Arc<Authenticator>, retry: RetryPolicy) -> Self {
        Self {
            http,
            auth,
            retry,
            gate: ThrottleGate::default(),
            throttled: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Requests Graph throttled (429/503/509) since this client was made.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sends the request `build` makes (again for each attempt) and returns a successful
    /// response, or the error Graph gave, after the retries the policy allows.
    pub async fn send(
        &self,
        what: &str,
        auth: Auth,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response> {
        let started = Instant::now();
        let mut attempt = 0u32;
        let mut refreshed = false;
        loop {
            attempt += 1;
            self.gate.wait().await;
            let mut request = build(&self.http);
            // A download's body may take any time to arrive while it keeps arriving (the
            // client's read timeout catches a stall); every other request has a deadline.
            if what != DOWNLOAD {
                request = request.timeout(self.retry.timeout);
            }
            let token = match auth {
                Auth::Bearer => {
                    let token = self.auth.token().await?;
                    request = request.bearer_auth(token.expose());
                    Some(token)
                }
                Auth::PreAuthenticated => None,
            };
            let (wait, reason) = match request.send().await {
                // Redirects are the caller's: a download's 302 leads to a pre-authenticated URL.
                Ok(response)
                    if response.status().is_success() || response.status().is_redirection() =>
                {
                    return Ok(response);
                }
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED && !refreshed => {
                    if let Some(token) = &token {
                        self.auth.invalidate(token).await;
                    }
                    refreshed = true;
                    tracing::info!(
                        what,
                        "access token refused; refreshing it and retrying once"
                    );
                    continue;
                }
                Ok(response) if is_throttle(response.status()) => {
                    self.throttled
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let status = response.status().as_u16();
                    match retry_after(&response) {
                        Some(wait) => {
                            self.gate.pause(wait);
                            (
                                wait,
                                format!("throttled ({status}), Retry-After {}s", wait.as_secs()),
                            )
                        }
                        None => (self.backoff(attempt), format!("throttled ({status})")),
                    }
                }
                Ok(response) if matches!(response.status().as_u16(), 500 | 502) => (
                    self.backoff(attempt),
                    format!("server error {}", response.status()),
                ),
                Ok(response) => return Err(into_error(response).await),
                Err(e) if e.is_timeout() || e.is_connect() || e.is_request() || e.is_body() => {
                    let e = e.without_url();
                    (self.backoff(attempt), format!("connection problem: {e}"))
                }
                Err(e) => {
                    let url = e.url().map(ToString::to_string).unwrap_or_default();
                    return Err(Error::http(&url, e));
                }
            };
            if started.elapsed() + wait > self.retry.budget {
                return Err(Error::Throttled {
                    retry_after: Some(wait),
                    budget: self.retry.budget,
                });
            }
            tracing::info!(
                what,
                attempt,
                wait_ms = wait.as_millis() as u64,
                reason,
                "retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .retry
            .base_backoff
            .saturating_mul(1u32 << attempt.min(16).saturating_sub(1))
            .min(self.retry.max_backoff);
        exp / 2 + jitter(exp / 2)
    }
}

/// Turns a failed response into the error its body describes.
pub(crate) async fn into_error(response: Response) -> Error {
    let status = response.status().as_u16();
    let request_id = response
        .headers()
        .get("request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let url = response.url().to_string();
    match response.bytes().await {
        Ok(body) => graph_error(status, request_id, location, &body),
        Err(source) => Error::http(&url, source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        // A date in the past means "now".
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
