//! Requests to the token endpoint, one function per grant.

use serde::{Deserialize, Deserializer};

use crate::error::{Error, IdentityErrorBody, Result};
use crate::secret::Secret;

/// A successful token response.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenResponse {
    pub access_token: Secret,
    #[serde(deserialize_with = "seconds")]
    pub expires_in: u64,
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    #[serde(default)]
    pub id_token: Option<String>,
    #[serde(default)]
    pub scope: String,
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

/// Numbers of seconds arrive as JSON numbers or, from older endpoints, as strings.
pub(crate) fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        N(u64),
        S(String),
    }
    match Num::deserialize(d)? {
        Num::N(n) => Ok(n),
        Num::S(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

/// What an attempt at the token endpoint gave.
pub(crate) enum Outcome<T> {
    Ok(T),
    /// The identity platform's OAuth error (`authorization_pending`, `invalid_grant`, ...).
    Refused(IdentityErrorBody),
}

/// Posts a form to an identity endpoint and parses either answer.
pub(crate) async fn post_form<T: for<'de> Deserialize<'de>>(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> Result<Outcome<T>> {
    let http_err = |source| Error::http(url, source);
    let response = http.post(url).form(form).send().await.map_err(http_err)?;
    let status = response.status();
    let body = response.bytes().await.map_err(http_err)?;
    if status.is_success() {
        return serde_json::from_slice(&body)
            .map(Outcome::Ok)
            .map_err(|e| Error::protocol(format!("unexpected answer from {url}: {e}")));
    }
    match serde_json::from_slice::<IdentityErrorBody>(&body) {
        Ok(refused) => Ok(Outcome::Refused(refused)),
        Err(_) => Err(Error::protocol(format!(
            "{url} answered {status} without an OAuth error body"
        ))),
    }
}
