//! Where the identity platform and Graph are, who we are, and which drive we use.

use std::path::PathBuf;
use std::time::Duration;

use crate::secret::Secret;

/// The public cloud's identity platform; national clouds and the emulator have their own.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
/// Microsoft Graph v1.0 in the public cloud.
pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com/v1.0";

/// Everything the client needs. Authority and Graph URL are separate settings, so a national
/// cloud or the emulator is two values away.
#[derive(Debug, Clone)]
pub struct GraphConfig {
    pub authority: String,
    pub graph_url: String,
    pub tenant: String,
    pub client_id: String,
    pub credential: Credential,
    pub drive: DriveSelector,
    /// The MSAL-layout token cache for delegated sign-ins (written 0600, atomically).
    pub token_cache: Option<PathBuf>,
    /// Where upload sessions are saved (0600), so an interrupted large upload resumes
    /// when run again; without it an upload resumes only within its own process.
    pub upload_sessions: Option<PathBuf>,
    /// Delegated scopes; app-only requests always ask for `{graph}/.default`.
    pub scopes: Vec<String>,
    pub retry: RetryPolicy,
}

impl GraphConfig {
    /// A configuration for the public cloud with delegated `Files.ReadWrite.All` access.
    pub fn new(tenant: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            authority: DEFAULT_AUTHORITY.into(),
            graph_url: DEFAULT_GRAPH_URL.into(),
            tenant: tenant.into(),
            client_id: client_id.into(),
            credential: Credential::None,
            drive: DriveSelector::Me,
            token_cache: None,
            upload_sessions: None,
            scopes: vec![
                "Files.ReadWrite.All".into(),
                "offline_access".into(),
                "openid".into(),
                "profile".into(),
            ],
            retry: RetryPolicy::default(),
        }
    }

    /// `{authority}/{tenant}/oauth2/v2.0/{endpoint}`.
    pub fn identity_url(&self, endpoint: &str) -> String {
        format!(
            "{}/{}/oauth2/v2.0/{endpoint}",
            self.authority.trim_end_matches('/'),
            self.tenant
        )
    }

    /// The host of the authority, as MSAL's cache calls it (`environment`).
    pub fn environment(&self) -> String {
        let rest = self
            .authority
            .split_once("://")
            .map_or(self.authority.as_str(), |(_, r)| r);
        rest.split('/').next().unwrap_or(rest).to_ascii_lowercase()
    }

    /// The scope for app-only tokens: the Graph resource's `.default`. The resource is the
    /// Graph host of a national cloud when `graph_url` names one, else the public cloud's
    /// (an emulator or a proxy stands in for it).
    pub fn app_scope(&self) -> String {
        const CLOUD_HOSTS: [&str; 4] = [
            "graph.microsoft.com",
            "graph.microsoft.us",
            "dod-graph.microsoft.us",
            "microsoftgraph.chinacloudapi.cn",
        ];
        let host = self
            .graph_url
            .split_once("://")
            .map_or(self.graph_url.as_str(), |(_, rest)| rest)
            .split('/')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let resource = CLOUD_HOSTS
            .iter()
            .find(|h| **h == host)
            .copied()
            .unwrap_or(CLOUD_HOSTS[0]);
        format!("https://{resource}/.default")
    }
}

/// How the application proves who it is.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A public client (device code, refresh token): no secret.
    None,
    Secret(Secret),
    /// A certificate: its PEM chain and PKCS#8 private key; requests carry a signed assertion.
    Certificate {
        cert_pem: String,
        key_pem: Secret,
    },
}

/// Which drive requests go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriveSelector {
    /// The signed-in user's drive (delegated sign-in only).
    Me,
    Id(String),
    User(String),
    Site(String),
}

impl DriveSelector {
    /// Parses `me`, `user:<id>`, `site:<id>` or a drive id.
    pub fn parse(text: &str) -> Self {
        match text.split_once(':') {
            _ if text == "me" => Self::Me,
            Some(("user", id)) => Self::User(id.to_owned()),
            Some(("site", id)) => Self::Site(id.to_owned()),
            _ => Self::Id(text.to_owned()),
        }
    }

    /// The setting text [`parse`](Self::parse) reads back (`FERRY_GRAPH_DRIVE`).
    pub fn setting(&self) -> String {
        match self {
            Self::Me => "me".into(),
            Self::Id(id) => id.clone(),
            Self::User(id) => format!("user:{id}"),
            Self::Site(id) => format!("site:{id}"),
        }
    }

    /// The path of the drive under the Graph URL.
    pub fn path(&self) -> String {
        match self {
            Self::Me => "/me/drive".into(),
            Self::Id(id) => format!("/drives/{id}"),
            Self::User(id) => format!("/users/{id}/drive"),
            Self::Site(id) => format!("/sites/{id}/drive"),
        }
    }
}

/// Retries for throttling, server errors and dropped connections.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Total time one request may spend waiting between attempts.
    pub budget: Duration,
    /// First backoff; doubles per attempt (with jitter) up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Per-attempt timeout for requests without a body stream.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            budget: Duration::from_secs(300),
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            timeout: Duration::from_secs(120),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drive_settings_read_back_as_themselves() {
        for text in ["me", "user:u-1", "site:s,1", "b!drive-id"] {
            assert_eq!(DriveSelector::parse(text).setting(), text);
        }
    }

    #[test]
    fn app_only_scope_follows_the_cloud() {
        let mut c = GraphConfig::new("t", "c");
        for (graph_url, scope) in [
            (DEFAULT_GRAPH_URL, "https://graph.microsoft.com/.default"),
            (
                "https://graph.microsoft.us/v1.0",
                "https://graph.microsoft.us/.default",
            ),
            (
                "https://dod-graph.microsoft.us/v1.0/",
                "https://dod-graph.microsoft.us/.default",
            ),
            (
                "https://microsoftgraph.chinacloudapi.cn/v1.0",
                "https://microsoftgraph.chinacloudapi.cn/.default",
            ),
            // The emulator (or any other host) issues tokens for the public resource.
            (
                "http://127.0.0.1:8800/v1.0",
                "https://graph.microsoft.com/.default",
            ),
        ] {
            c.graph_url = graph_url.into();
            assert_eq!(c.app_scope(), scope, "{graph_url}");
        }
        c.authority = "https://login.chinacloudapi.cn/".into();
        assert_eq!(
            c.identity_url("token"),
            "https://login.chinacloudapi.cn/t/oauth2/v2.0/token"
        );
    }
}
