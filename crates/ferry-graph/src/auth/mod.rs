//! Microsoft identity: app-only tokens (client secret or certificate), delegated tokens from a
//! refresh token kept in an MSAL-layout cache, and device-code sign-in.
//!
//! One [`Authenticator`] serves a whole client. Tokens are refreshed ahead of expiry, and
//! concurrent callers share one refresh: the lock is held while the token endpoint answers.

mod assertion;
mod browser;
mod cache;
mod device;
mod flows;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Mutex;

pub use self::cache::{Account, TokenCache};
pub use self::device::DeviceCode;
#[cfg(test)]
pub(crate) use self::flows::TokenResponse as TokenResponseForTests;
use self::flows::{Outcome, TokenResponse, post_form};
use crate::config::{Credential, GraphConfig};
use crate::error::{Error, Result};
use crate::secret::Secret;

/// Refresh when less than this is left of a token's life.
const REFRESH_AHEAD: Duration = Duration::from_secs(5 * 60);
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[derive(Debug)]
struct Current {
    token: Secret,
    refresh_at: Instant,
}

/// Gets and keeps access tokens.
#[derive(Debug)]
pub struct Authenticator {
    http: reqwest::Client,
    token_url: String,
    device_url: String,
    client_id: String,
    secret: Option<Secret>,
    signer: Option<assertion::Signer>,
    app_scope: String,
    scopes: String,
    cache: Option<TokenCache>,
    current: Mutex<Option<Current>>,
    requests: AtomicU64,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

impl Authenticator {
    pub fn new(http: reqwest::Client, config: &GraphConfig) -> Result<Self> {
        let (secret, signer) = match &config.credential {
            Credential::None => (None, None),
            Credential::Secret(secret) => (Some(secret.clone()), None),
            Credential::Certificate { cert_pem, key_pem } => {
                (None, Some(assertion::Signer::new(cert_pem, key_pem)?))
            }
        };
        let cache = config
            .token_cache
            .clone()
            .map(|path| TokenCache::new(path, &config.client_id, &config.environment()));
        Ok(Self {
            http,
            token_url: config.identity_url("token"),
            device_url: config.identity_url("devicecode"),
            client_id: config.client_id.clone(),
            secret,
            signer,
            app_scope: config.app_scope(),
            scopes: config.scopes.join(" "),
            cache,
            current: Mutex::new(None),
            requests: AtomicU64::new(0),
        })
    }

    /// How many token requests this authenticator has made.
    pub fn token_requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The token cache, for delegated sign-ins.
    pub fn cache(&self) -> Option<&TokenCache> {
        self.cache.as_ref()
    }

    /// A valid access token, refreshed first if it expires within five minutes.
    pub async fn token(&self) -> Result<Secret> {
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        let response = self.request_token().await?;
        let life = Duration::from_secs(response.expires_in);
        let token = response.access_token.clone();
        *current = Some(Current {
            token: token.clone(),
            refresh_at: Instant::now() + life.saturating_sub(REFRESH_AHEAD).max(life / 2),
        });
        Ok(token)
    }

    /// Drops `used` if it is still the current token (Graph said it is no longer valid).
    pub async fn invalidate(&self, used: &Secret) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|c| c.token == *used) {
            *current = None;
        }
    }

    /// The client's own proof for confidential-client requests.
    fn client_auth(&self) -> Result<Vec<(&'static str, Secret)>> {
        if let Some(secret) = &self.secret {
            return Ok(vec![("client_secret", secret.clone())]);
        }
        if let Some(signer) = &self.signer {
            return Ok(vec![
                ("client_assertion_type", Secret::new(JWT_BEARER)),
                (
                    "client_assertion",
                    signer.assertion(&self.client_id, &self.token_url)?,
                ),
            ]);
        }
        Ok(Vec::new())
    }

    async fn token_request(&self, grant: &[(&str, &str)]) -> Result<Outcome<TokenResponse>> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let auth = self.client_auth()?;
        let mut form: Vec<(&str, &str)> = vec![("client_id", &self.client_id)];
        form.extend_from_slice(grant);
        form.extend(auth.iter().map(|(k, v)| (*k, v.expose())));
        tracing::debug!(url = %self.token_url, grant = grant.first().map(|g| g.1), "token request");
        post_form(&self.http, &self.token_url, &form).await
    }

    async fn request_token(&self) -> Result<TokenResponse> {
        if let Some(cache) = &self.cache
            && let Some((refresh, _)) = cache.refresh_token()?
        {
            return self.redeem_refresh_token(cache, &refresh).await;
        }
        if self.secret.is_none() && self.signer.is_none() {
            return Err(Error::protocol(
                "not signed in: run `ferry onedrive login`, or configure a client secret or certificate",
            ));
        }
        let grant = [
            ("grant_type", "client_credentials"),
            ("scope", self.app_scope.as_str()),
        ];
        match self.token_request(&grant).await? {
            Outcome::Ok(response) => Ok(response),
            Outcome::Refused(refused) => Err(refused.into()),
        }
    }

    async fn redeem_refresh_token(
        &self,
        cache: &TokenCache,
        refresh: &Secret,
    ) -> Result<TokenResponse> {
        let grant = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.expose()),
            ("scope", self.scopes.as_str()),
        ];
        match self.token_request(&grant).await? {
            Outcome::Ok(response) => {
                self.remember(cache, &response)?;
                Ok(response)
            }
            Outcome::Refused(refused) => {
                let err: Error = refused.into();
                if !err.needs_sign_in() {
                    return Err(err);
                }
                let err = Error::SignInExpired {
                    source: Box::new(err),
                };
                tracing::error!(error = %err, "cannot refresh the access token");
                Err(err)
            }
        }
    }

    /// Persists a token response at once: a refresh token is single-use.
    fn remember(&self, cache: &TokenCache, response: &TokenResponse) -> Result<Account> {
        cache.save(&cache::Saved {
            access_token: response.access_token.expose(),
            refresh_token: response.refresh_token.as_ref().map(Secret::expose),
            id_token: response.id_token.as_deref(),
            scope: &response.scope,
            expires_in: response.expires_in,
            now: now_secs(),
        })
    }

    /// Signs a person in through a browser (authorization code with PKCE): `open` gets the
    /// URL to visit; the answer comes back to a loopback address. Saves the tokens.
    pub async fn browser_login(&self, open: impl FnOnce(&str)) -> Result<Account> {
        let cache = self.cache.as_ref().ok_or_else(|| {
            Error::protocol("a browser sign-in needs a token cache to keep the refresh token")
        })?;
        let authorize = self.token_url.trim_end_matches("token").to_owned() + "authorize";
        let pending = browser::prepare(&authorize, &self.client_id, &self.scopes).await?;
        open(&pending.url);
        let code = browser::wait_for_code(&pending).await?;
        let grant = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", pending.redirect_uri.as_str()),
            ("code_verifier", pending.verifier.as_str()),
            ("scope", self.scopes.as_str()),
        ];
        match self.token_request(&grant).await? {
            Outcome::Ok(response) => {
                let account = self.remember(cache, &response)?;
                *self.current.lock().await = None;
                Ok(account)
            }
            Outcome::Refused(refused) => Err(refused.into()),
        }
    }

    /// Starts a device-code sign-in; show the result's `message`, then call
    /// [`Authenticator::complete_device_login`].
    pub async fn start_device_login(&self) -> Result<DeviceCode> {
        let form = [
            ("client_id", self.client_id.as_str()),
            ("scope", self.scopes.as_str()),
        ];
        match post_form::<DeviceCode>(&self.http, &self.device_url, &form).await? {
            Outcome::Ok(code) => Ok(code),
            Outcome::Refused(refused) => Err(refused.into()),
        }
    }

    /// Polls until the person has signed in (or the code expires); saves the tokens.
    pub async fn complete_device_login(&self, code: &DeviceCode) -> Result<Account> {
        let cache = self.cache.as_ref().ok_or_else(|| {
            Error::protocol("a device sign-in needs a token cache to keep the refresh token")
        })?;
        let mut interval = code.interval();
        let deadline = Instant::now() + Duration::from_secs(code.expires_in);
        loop {
            tokio::time::sleep(interval).await;
            let grant = [
                ("grant_type", DEVICE_CODE_GRANT),
                ("device_code", code.device_code.as_str()),
            ];
            match self.token_request(&grant).await? {
                Outcome::Ok(response) => {
                    let account = self.remember(cache, &response)?;
                    *self.current.lock().await = None;
                    return Ok(account);
                }
                Outcome::Refused(r)
                    if r.error == "authorization_pending" && Instant::now() < deadline => {}
                Outcome::Refused(r) if r.error == "slow_down" => interval += Duration::from_secs(5),
                Outcome::Refused(refused) => return Err(refused.into()),
            }
        }
    }
}
