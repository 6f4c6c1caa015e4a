//! Errors from Microsoft identity and Graph, classified by their codes, never by messages.

use std::time::Duration;

use serde::Deserialize;

use crate::names::NameError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The identity platform refused a token request (`error` is the OAuth code, such as
    /// `invalid_grant`; `aadsts` the numeric AADSTS codes).
    #[error("sign-in failed: {error} (AADSTS{codes}): {description}", codes = fmt_codes(.aadsts))]
    Identity {
        error: String,
        description: String,
        aadsts: Vec<u64>,
    },
    /// The saved delegated sign-in can no longer be refreshed (expired, revoked, or consent
    /// withdrawn): a person has to sign in again.
    #[error("the saved sign-in is no longer valid; run `ferry onedrive login` ({source})")]
    SignInExpired {
        #[source]
        source: Box<Error>,
    },
    /// Graph answered with an error envelope.
    #[error("Graph {status} {code}{inner}: {message}", inner = fmt_inner(.inner_codes))]
    Graph {
        status: u16,
        code: String,
        /// Nested `innerError` codes, outermost first.
        inner_codes: Vec<String>,
        message: String,
        request_id: Option<String>,
        /// The `Location` header, where Graph sends a client next (a 410 resync).
        location: Option<String>,
    },
    /// Throttled or unavailable for longer than the retry budget allows.
    #[error(
        "Graph kept throttling (last Retry-After {retry_after:?}) beyond the retry budget of {budget:?}"
    )]
    Throttled {
        retry_after: Option<Duration>,
        budget: Duration,
    },
    #[error(
        "the downloaded bytes of {path} do not match OneDrive's quickXorHash; they were discarded"
    )]
    HashMismatch { path: String },
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("{what}")]
    Protocol { what: String },
    #[error("request to {url} failed")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn fmt_codes(codes: &[u64]) -> String {
    codes
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn fmt_inner(codes: &[String]) -> String {
    if codes.is_empty() {
        String::new()
    } else {
        format!(" ({})", codes.join(" > "))
    }
}

impl Error {
    /// An HTTP failure of a request to `url`, which it names without its query: the query
    /// of a pre-authenticated download URL is its key, and errors reach logs.
    pub(crate) fn http(url: &str, source: reqwest::Error) -> Self {
        Self::Http {
            url: loggable_url(url),
            source: source.without_url(),
        }
    }

    /// A closure turning an io::Error into [`Error::Io`] about `path`.
    pub fn io(
        op: &'static str,
        path: impl std::fmt::Display,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.to_string();
        move |source| Error::Io { op, path, source }
    }

    /// The Graph error code (`itemNotFound`, `resyncRequired`, ...), if this is one.
    pub fn graph_code(&self) -> Option<&str> {
        match self {
            Self::Graph { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Where a 410 resync sends the client.
    pub fn location(&self) -> Option<&str> {
        match self {
            Self::Graph { location, .. } => location.as_deref(),
            _ => None,
        }
    }

    /// True when trying again later may succeed: the connection failed or timed out, the
    /// service was throttling, or it answered with a server error.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Http { .. } | Self::Throttled { .. } => true,
            Self::Graph { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// The HTTP status of a Graph error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Graph { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True for a Graph error whose code or any inner code is `code`.
    pub fn has_code(&self, code: &str) -> bool {
        match self {
            Self::Graph {
                code: outer,
                inner_codes,
                ..
            } => outer == code || inner_codes.iter().any(|c| c == code),
            _ => false,
        }
    }

    /// True when a refresh token is no longer usable and a person must sign in again.
    pub fn needs_sign_in(&self) -> bool {
        match self {
            Self::Identity { error, .. } => {
                error == "invalid_grant" || error == "interaction_required"
            }
            Self::SignInExpired { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn protocol(what: impl Into<String>) -> Self {
        Self::Protocol { what: what.into() }
    }
}

/// Graph's error envelope: `{"error": {"code", "message", "innerError": {...}}}`. Both
/// spellings of the inner error occur in real responses.
#[derive(Debug, Deserialize)]
struct Envelope {
    error: Body,
}

#[derive(Debug, Deserialize)]
struct Body {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(rename = "innerError", alias = "innererror", default)]
    inner: Option<Box<Inner>>,
}

#[derive(Debug, Deserialize)]
struct Inner {
    #[serde(default)]
    code: Option<String>,
    #[serde(rename = "request-id", default)]
    request_id: Option<String>,
    #[serde(rename = "innerError", alias = "innererror", default)]
    inner: Option<Box<Inner>>,
}

/// Builds the error for a failed Graph response from its status, headers and body.
pub(crate) fn graph_error(
    status: u16,
    request_id: Option<String>,
    location: Option<String>,
    body: &[u8],
) -> Error {
    let Ok(envelope) = serde_json::from_slice::<Envelope>(body) else {
        return Error::Graph {
            status,
            code: format!("http{status}"),
            inner_codes: Vec::new(),
            message: String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
            request_id,
            location,
        };
    };
    let mut inner_codes = Vec::new();
    let mut inner_request_id = None;
    let mut next = envelope.error.inner.as_deref();
    while let Some(inner) = next {
        inner_codes.extend(inner.code.clone());
        inner_request_id = inner_request_id.or_else(|| inner.request_id.clone());
        next = inner.inner.as_deref();
    }
    Error::Graph {
        status,
        code: envelope.error.code,
        inner_codes,
        message: envelope.error.message,
        request_id: request_id.or(inner_request_id),
        location,
    }
}

/// The identity platform's error body.
#[derive(Debug, Deserialize)]
pub(crate) struct IdentityErrorBody {
    pub error: String,
    #[serde(default)]
    pub error_description: String,
    #[serde(default)]
    pub error_codes: Vec<u64>,
}

impl From<IdentityErrorBody> for Error {
    fn from(body: IdentityErrorBody) -> Self {
        // The description starts with "AADSTSnnn: "; keep the human part only.
        let description = body
            .error_description
            .split_once(": ")
            .filter(|(code, _)| code.starts_with("AADSTS"))
            .map_or(body.error_description.as_str(), |(_, rest)| rest)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        Self::Identity {
            error: body.error,
            description,
            aadsts: body.error_codes,
        }
    }
}

/// A URL fit for logs and errors: never its query, and only the host of a URL that is not a
/// Graph API call, because pre-authenticated download and upload URLs carry their key in
/// the query (`tempauth=`) or in the path (OneDrive personal, the emulator).
fn loggable_url(url: &str) -> String {
    let url = url.split('?').next().unwrap_or_default();
    if url.contains("/v1.0/") || url.contains("/beta/") {
        return url.to_owned();
    }
    let host_end = url
        .find("://")
        .map(|at| at + 3)
        .and_then(|start| url[start..].find('/').map(|end| start + end))
        .unwrap_or(url.len());
    format!("{}/…", &url[..host_end])
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_graph_api_urls_keep_their_path() {
        use super::loggable_url;
        assert_eq!(
            loggable_url("https://graph.microsoft.com/v1.0/me/drive/items/1/content?a=b"),
            "https://graph.microsoft.com/v1.0/me/drive/items/1/content"
        );
        assert_eq!(
            loggable_url("https://public.bn.files.1drv.com/y4mSECRET/file.bin?download"),
            "https://public.bn.files.1drv.com/…"
        );
        assert_eq!(
            loggable_url("http://127.0.0.1:7/_emulator/upload/SECRET"),
            "http://127.0.0.1:7/…"
        );
    }

    #[tokio::test]
    async fn an_http_error_never_shows_a_pre_authenticated_url_key() {
        let url = "http://127.0.0.1:9/download/item?tempauth=SECRET-KEY";
        let _ = rustls::crypto::ring::default_provider().install_default();
        let failed = reqwest::Client::new().get(url).send().await;
        let source = failed.expect_err("nothing listens on port 9");
        let err = super::Error::http(url, source);
        let mut shown = format!("{err} {err:?}");
        let mut cause = std::error::Error::source(&err);
        while let Some(c) = cause {
            shown.push_str(&format!(" {c}"));
            cause = c.source();
        }
        assert!(!shown.contains("SECRET-KEY"), "{shown}");
        assert!(shown.contains("http://127.0.0.1:9/…"), "{shown}");
    }
}
