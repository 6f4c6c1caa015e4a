//! The token cache on disk, in MSAL's layout (sections `AccessToken`, `RefreshToken`,
//! `IdToken`, `Account`, `AppMetadata`, lower-case keys), so tools that read MSAL caches
//! recognise the accounts. Written atomically with mode 0600; sections and entries we do not
//! use are kept as they are.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::secret::Secret;

type Section = BTreeMap<String, Value>;

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    #[serde(rename = "AccessToken", default)]
    access_tokens: Section,
    #[serde(rename = "RefreshToken", default)]
    refresh_tokens: Section,
    #[serde(rename = "IdToken", default)]
    id_tokens: Section,
    #[serde(rename = "Account", default)]
    accounts: Section,
    #[serde(rename = "AppMetadata", default)]
    app_metadata: Section,
    #[serde(flatten)]
    other: Map<String, Value>,
}

/// Who signed in, from the ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// `{oid}.{tid}`, MSAL's home account id.
    pub home_account_id: String,
    pub username: String,
    pub tenant_id: String,
}

/// The cache file and the identity of this client in it.
#[derive(Debug, Clone)]
pub struct TokenCache {
    path: PathBuf,
    client_id: String,
    environment: String,
}

impl TokenCache {
    pub fn new(path: PathBuf, client_id: &str, environment: &str) -> Self {
        Self {
            path,
            client_id: client_id.to_ascii_lowercase(),
            environment: environment.to_ascii_lowercase(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load(&self) -> Result<CacheFile> {
        let text = match ferry_private::read(&self.path) {
            Ok(text) => text,
            Err(e) if e.is_not_found() => return Ok(CacheFile::default()),
            Err(e) => return Err(Error::protocol(format!("token cache: {e}"))),
        };
        serde_json::from_str(&text).map_err(|e| {
            Error::protocol(format!(
                "token cache {} is not valid JSON: {e}",
                self.path.display()
            ))
        })
    }

    fn store(&self, cache: &CacheFile) -> Result<()> {
        let body = serde_json::to_vec_pretty(cache).map_err(|e| Error::protocol(e.to_string()))?;
        ferry_private::write(&self.path, &body)
            .map_err(Error::io("write token cache", self.path.display()))
    }

    /// The refresh token of this client, and the account it belongs to.
    pub fn refresh_token(&self) -> Result<Option<(Secret, String)>> {
        let cache = self.load()?;
        Ok(cache.refresh_tokens.values().find_map(|entry| {
            let matches = entry["client_id"]
                .as_str()?
                .eq_ignore_ascii_case(&self.client_id)
                && entry["environment"]
                    .as_str()?
                    .eq_ignore_ascii_case(&self.environment);
            matches.then(|| {
                let secret = Secret::new(entry["secret"].as_str().unwrap_or_default());
                (
                    secret,
                    entry["home_account_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
        }))
    }

    /// The signed-in account, if any.
    pub fn account(&self) -> Result<Option<Account>> {
        let cache = self.load()?;
        Ok(cache.accounts.values().find_map(|a| {
            (a["environment"].as_str()? == self.environment).then(|| Account {
                home_account_id: a["home_account_id"].as_str().unwrap_or_default().to_owned(),
                username: a["username"].as_str().unwrap_or_default().to_owned(),
                tenant_id: a["realm"].as_str().unwrap_or_default().to_owned(),
            })
        }))
    }

    /// Records a token response: the new refresh token replaces the old one at once.
    pub(crate) fn save(&self, tokens: &Saved<'_>) -> Result<Account> {
        let mut cache = self.load()?;
        let account = match tokens.id_token.and_then(account_from_id_token) {
            Some(account) => account,
            // A refresh without an ID token keeps the account we had.
            None => self.account()?.ok_or_else(|| {
                Error::protocol("the token response has no ID token and the cache no account")
            })?,
        };
        let (env, client, home) = (&self.environment, &self.client_id, &account.home_account_id);
        let realm = account.tenant_id.to_ascii_lowercase();
        let target = tokens.scope.to_ascii_lowercase();
        let now = tokens.now;
        let key = |kind: &str, realm: &str, target: &str| {
            format!("{home}-{env}-{kind}-{client}-{realm}-{target}").to_ascii_lowercase()
        };
        cache
            .access_tokens
            .retain(|_, v| !same_owner(v, home, client, env));
        cache.access_tokens.insert(
            key("accesstoken", &realm, &target),
            json!({
                "credential_type": "AccessToken", "secret": tokens.access_token,
                "home_account_id": home, "environment": env, "client_id": client,
                "target": target, "realm": realm, "token_type": "Bearer",
                "cached_at": now.to_string(), "expires_on": (now + tokens.expires_in).to_string(),
                "extended_expires_on": (now + tokens.expires_in).to_string(),
            }),
        );
        if let Some(refresh) = tokens.refresh_token {
            cache
                .refresh_tokens
                .retain(|_, v| !same_owner(v, home, client, env));
            cache.refresh_tokens.insert(
                key("refreshtoken", "", ""),
                json!({
                    "credential_type": "RefreshToken", "secret": refresh,
                    "home_account_id": home, "environment": env, "client_id": client,
                    "target": target, "last_modification_time": now.to_string(),
                }),
            );
        }
        if let Some(id_token) = tokens.id_token {
            cache.id_tokens.insert(
                key("idtoken", &realm, ""),
                json!({
                    "credential_type": "IdToken", "secret": id_token,
                    "home_account_id": home, "environment": env, "client_id": client,
                    "realm": realm,
                }),
            );
        }
        cache.accounts.insert(
            format!("{home}-{env}-{realm}").to_ascii_lowercase(),
            json!({
                "home_account_id": home, "environment": env, "realm": realm,
                "local_account_id": home.split('.').next().unwrap_or_default(),
                "username": account.username, "authority_type": "MSSTS",
            }),
        );
        cache.app_metadata.insert(
            format!("appmetadata-{env}-{client}"),
            json!({"client_id": client, "environment": env}),
        );
        self.store(&cache)?;
        Ok(account)
    }

    /// Forgets this client's tokens (sign-out, or a refresh token the service rejected).
    pub fn clear(&self) -> Result<()> {
        let mut cache = self.load()?;
        let (client, env) = (&self.client_id, &self.environment);
        let mine = |v: &Value| {
            v["client_id"].as_str() == Some(client) && v["environment"].as_str() == Some(env)
        };
        cache.access_tokens.retain(|_, v| !mine(v));
        cache.refresh_tokens.retain(|_, v| !mine(v));
        cache.id_tokens.retain(|_, v| !mine(v));
        self.store(&cache)
    }
}

fn same_owner(entry: &Value, home: &str, client: &str, env: &str) -> bool {
    entry["home_account_id"].as_str() == Some(home)
        && entry["client_id"].as_str() == Some(client)
        && entry["environment"].as_str() == Some(env)
}

/// A token response to record.
pub(crate) struct Saved<'a> {
    pub access_token: &'a str,
    pub refresh_token: Option<&'a str>,
    pub id_token: Option<&'a str>,
    pub scope: &'a str,
    pub expires_in: u64,
    /// Seconds since the epoch.
    pub now: u64,
}

/// The account named by an ID token's claims (`oid`, `tid`, `preferred_username`). The token
/// came straight from the token endpoint over TLS, so its signature is not checked here.
fn account_from_id_token(id_token: &str) -> Option<Account> {
    let payload = id_token.split('.').nth(1)?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&raw).ok()?;
    let oid = claims["oid"].as_str()?;
    let tid = claims["tid"].as_str()?;
    Some(Account {
        home_account_id: format!("{oid}.{tid}"),
        username: claims["preferred_username"]
            .as_str()
            .or_else(|| claims["upn"].as_str())
            .unwrap_or_default()
            .to_owned(),
        tenant_id: tid.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt as _;

    fn id_token(oid: &str, tid: &str, user: &str) -> String {
        let enc =
            |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.sig",
            enc(&json!({"alg": "RS256", "typ": "JWT"})),
            enc(&json!({"oid": oid, "tid": tid, "preferred_username": user}))
        )
    }

    #[test]
    fn save_then_read_back_in_msal_layout() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TokenCache::new(dir.path().join("cache.json"), "Client-A", "login.example");
        let id = id_token("oid-1", "tid-1", "ada@example.com");
        let saved = cache
            .save(&Saved {
                access_token: "at-1",
                refresh_token: Some("rt-1"),
                id_token: Some(&id),
                scope: "Files.Read.All offline_access",
                expires_in: 3600,
                now: 1_700_000_000,
            })
            .unwrap();
        assert_eq!(saved.home_account_id, "oid-1.tid-1");
        let mode = fs::metadata(cache.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (rt, home) = cache.refresh_token().unwrap().unwrap();
        assert_eq!((rt.expose(), home.as_str()), ("rt-1", "oid-1.tid-1"));
        let raw: Value = serde_json::from_slice(&fs::read(cache.path()).unwrap()).unwrap();
        assert!(
            raw["RefreshToken"]["oid-1.tid-1-login.example-refreshtoken-client-a--"].is_object()
        );
        assert!(raw["Account"]["oid-1.tid-1-login.example-tid-1"]["username"] == "ada@example.com");

        // A refresh replaces the refresh token; the account stays.
        cache
            .save(&Saved {
                access_token: "at-2",
                refresh_token: Some("rt-2"),
                id_token: None,
                scope: "Files.Read.All offline_access",
                expires_in: 3600,
                now: 1_700_000_100,
            })
            .unwrap();
        assert_eq!(cache.refresh_token().unwrap().unwrap().0.expose(), "rt-2");
        let raw: Value = serde_json::from_slice(&fs::read(cache.path()).unwrap()).unwrap();
        assert_eq!(raw["RefreshToken"].as_object().unwrap().len(), 1);
        assert_eq!(
            cache.account().unwrap().unwrap().username,
            "ada@example.com"
        );
    }

    #[test]
    fn a_cache_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.json");
        fs::write(&path, "{}").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let cache = TokenCache::new(path, "c", "e");
        let err = cache.refresh_token().unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
}
