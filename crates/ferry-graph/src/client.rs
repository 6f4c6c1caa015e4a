//! The Graph client: one drive, one authenticator, one transport.

use std::sync::Arc;
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::redirect::Policy;
use serde::de::DeserializeOwned;

use crate::auth::Authenticator;
use crate::config::GraphConfig;
use crate::error::{Error, Result};
use crate::http::{Auth, Transport};
use crate::model::{Drive, DriveItem, Page};

/// Path segments keep unreserved characters; everything else is percent-encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Told how many more bytes a transfer has moved.
pub type ProgressFn = Arc<dyn Fn(u64) + Send + Sync>;

/// A client for one drive. Cheap to clone; clones share tokens and throttling state.
#[derive(Clone)]
pub struct GraphClient {
    pub(crate) inner: Arc<Inner>,
    progress: Option<ProgressFn>,
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphClient")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub transport: Transport,
    pub graph_url: String,
    pub drive_path: String,
    pub sessions: Option<crate::resume::Sessions>,
    pub download_urls: crate::transfer::DownloadUrls,
}

/// `a/b c` as a Graph path: `a/b%20c` (no leading or trailing slash).
pub(crate) fn encode_path(path: &str) -> String {
    path.trim_matches('/')
        .split('/')
        .map(|s| utf8_percent_encode(s, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

impl GraphClient {
    pub fn new(config: &GraphConfig) -> Result<Self> {
        // reqwest is built without a default TLS provider; ring is the one we ship.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            // Redirects are followed by hand: a download's 302 goes to a pre-authenticated URL
            // that must not receive our bearer token.
            .redirect(Policy::none())
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(120))
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| Error::http(&config.graph_url, source))?;
        let auth = Arc::new(Authenticator::new(http.clone(), config)?);
        Ok(Self {
            inner: Arc::new(Inner {
                transport: Transport::new(http, auth, config.retry),
                graph_url: config.graph_url.trim_end_matches('/').to_owned(),
                drive_path: config.drive.path(),
                download_urls: Default::default(),
                sessions: config
                    .upload_sessions
                    .clone()
                    .map(crate::resume::Sessions::new),
            }),
            progress: None,
        })
    }

    /// How many requests Graph has throttled since this client was made (shared by its
    /// clones), for monitoring.
    pub fn throttled(&self) -> u64 {
        self.inner.transport.throttled()
    }

    /// A client whose uploads and downloads report the bytes they move to `progress`.
    pub fn with_progress(&self, progress: ProgressFn) -> Self {
        Self {
            inner: self.inner.clone(),
            progress: Some(progress),
        }
    }

    pub(crate) fn report(&self, bytes: u64) {
        if let Some(progress) = &self.progress {
            progress(bytes);
        }
    }

    pub fn auth(&self) -> &Authenticator {
        &self.inner.transport.auth
    }

    /// `{graph}{drive}{rest}`.
    pub(crate) fn drive_url(&self, rest: &str) -> String {
        format!("{}{}{rest}", self.inner.graph_url, self.inner.drive_path)
    }

    /// The URL of an item addressed by path (`""` is the root).
    pub(crate) fn path_url(&self, path: &str, suffix: &str) -> String {
        let path = encode_path(path);
        if path.is_empty() {
            self.drive_url(&format!("/root{suffix}"))
        } else if suffix.is_empty() {
            self.drive_url(&format!("/root:/{path}:"))
        } else {
            self.drive_url(&format!("/root:/{path}:{suffix}"))
        }
    }

    pub(crate) async fn get_json<T: DeserializeOwned>(&self, what: &str, url: &str) -> Result<T> {
        let response = self
            .inner
            .transport
            .send(what, Auth::Bearer, |http| http.get(url))
            .await?;
        json(url, response).await
    }

    /// The drive, with its quota.
    pub async fn drive(&self) -> Result<Drive> {
        self.get_json("get drive", &self.drive_url("")).await
    }

    /// The item at `path` (`""` for the root).
    pub async fn item_by_path(&self, path: &str) -> Result<DriveItem> {
        self.get_json("get item", &self.path_url(path, "")).await
    }

    pub async fn item(&self, id: &str) -> Result<DriveItem> {
        self.get_json("get item", &self.drive_url(&format!("/items/{id}")))
            .await
    }

    /// Every child of a folder, following `@odata.nextLink` verbatim.
    pub async fn children(&self, id: &str) -> Result<Vec<DriveItem>> {
        let mut url = self.drive_url(&format!("/items/{id}/children?$top=1000"));
        let mut items = Vec::new();
        loop {
            let page: Page<DriveItem> = self.get_json("list children", &url).await?;
            items.extend(page.value);
            match page.next_link {
                Some(next) => url = next,
                None => return Ok(items),
            }
        }
    }
}

/// Parses a JSON body.
pub(crate) async fn json<T: DeserializeOwned>(url: &str, response: reqwest::Response) -> Result<T> {
    let body = response
        .bytes()
        .await
        .map_err(|source| Error::http(url, source))?;
    serde_json::from_slice(&body)
        .map_err(|e| Error::protocol(format!("unexpected JSON from {url}: {e}")))
}
