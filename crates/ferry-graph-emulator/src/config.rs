//! Emulator configuration: tenants/apps, users, drives, lifetimes and initial faults.
//! Loaded from TOML (`from_file`), the environment (`from_env`) or built in code.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::Error;
use crate::faults::Faults;

/// A registered application (an app registration in one tenant).
#[derive(Debug, Clone, Deserialize)]
pub struct App {
    pub tenant: String,
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<String>,
    /// PEM of the public certificate whose key signs client assertions.
    #[serde(default)]
    pub certificate_pem: Option<String>,
    /// Allowed redirect URIs for the authorization-code flow; empty allows any
    /// `http://localhost` / `http://127.0.0.1` URI, like a public client's loopback redirect.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
}

impl App {
    pub fn new(tenant: impl Into<String>, client_id: impl Into<String>) -> Self {
        App {
            tenant: tenant.into(),
            client_id: client_id.into(),
            client_secret: None,
            certificate_pem: None,
            redirect_uris: Vec::new(),
        }
    }
}

/// A user that delegated flows sign in as.
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: String,
    pub user_principal_name: String,
    pub display_name: String,
}

/// The kind of drive, reported as `driveType`; it also decides id formats and hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum DriveType {
    Personal,
    #[default]
    Business,
    DocumentLibrary,
}

impl DriveType {
    pub fn as_str(self) -> &'static str {
        match self {
            DriveType::Personal => "personal",
            DriveType::Business => "business",
            DriveType::DocumentLibrary => "documentLibrary",
        }
    }
}

/// One drive. Drives not listed are created automatically, one per user.
#[derive(Debug, Clone, Deserialize)]
pub struct DriveConfig {
    /// Drive id; derived from the owner when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// Owning user id (for `/me/drive`, `/users/{id}/drive`).
    #[serde(default)]
    pub owner: Option<String>,
    /// Site id (for `/sites/{id}/drive`), making this a document library.
    #[serde(default)]
    pub site: Option<String>,
    #[serde(default)]
    pub drive_type: Option<DriveType>,
    /// Folder under `root` holding this drive's files; defaults to the drive id.
    #[serde(default)]
    pub folder: Option<String>,
    /// Quota total in bytes.
    #[serde(default)]
    pub quota_total: Option<u64>,
}

/// Everything the emulator needs to run.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Folder holding the drives' files (one subfolder per drive) and the emulator's
    /// sidecar state in `.ferry-emulator/`.
    pub root: PathBuf,
    pub apps: Vec<App>,
    pub users: Vec<User>,
    pub drives: Vec<DriveConfig>,
    pub faults: Faults,
    /// Access-token lifetime. The default is drawn at random between 60 and 90 minutes,
    /// as Azure AD does.
    pub token_lifetime: Duration,
    pub refresh_token_lifetime: Duration,
    pub device_code_lifetime: Duration,
    /// Minimum polling interval for device codes; polling faster gets `slow_down`.
    pub device_code_interval: Duration,
    /// Approve device codes as soon as they are issued (for interactive use of the CLI).
    pub auto_approve_device_codes: bool,
    pub upload_session_lifetime: Duration,
    pub download_url_lifetime: Duration,
    /// Drive type for automatically created drives.
    pub default_drive_type: DriveType,
    /// Default quota for drives without one.
    pub default_quota: u64,
    /// Refuse `Authorization` headers on upload URLs (401), as the docs warn may happen.
    pub reject_auth_on_upload_url: bool,
    /// Also report the descendants of a deleted folder in delta (off: only the folder).
    pub delta_report_deleted_descendants: bool,
    /// Watch the drive folders so changes made on disk show up (off: only the start-up scan).
    pub scan_disk: bool,
}

impl EmulatorConfig {
    /// A config with one default user and no apps.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        EmulatorConfig {
            root: root.into(),
            apps: Vec::new(),
            users: vec![User {
                id: "00000000-0000-0000-0000-0000000000a1".into(),
                user_principal_name: "emulator.user@ferry.test".into(),
                display_name: "Emulator User".into(),
            }],
            drives: Vec::new(),
            faults: Faults::default(),
            token_lifetime: random_token_lifetime(),
            refresh_token_lifetime: Duration::from_secs(90 * 24 * 3600),
            device_code_lifetime: Duration::from_secs(900),
            device_code_interval: Duration::from_secs(5),
            auto_approve_device_codes: false,
            upload_session_lifetime: Duration::from_secs(24 * 3600),
            download_url_lifetime: Duration::from_secs(3600),
            default_drive_type: DriveType::Business,
            default_quota: 1024 * 1024 * 1024 * 1024,
            reject_auth_on_upload_url: true,
            delta_report_deleted_descendants: false,
            scan_disk: true,
        }
    }

    /// Reads a TOML config; a relative `root` is taken relative to the file's folder.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::ConfigRead {
            path: path.to_path_buf(),
            source,
        })?;
        let file: crate::config_file::FileConfig =
            toml::from_str(&text).map_err(|source| Error::ConfigParse {
                path: path.to_path_buf(),
                source,
            })?;
        let base = path.parent().unwrap_or(Path::new("."));
        file.into_config(base)
    }

    /// A config with one app from `FERRY_EMULATOR_TENANT`, `FERRY_EMULATOR_CLIENT_ID`,
    /// `FERRY_EMULATOR_CLIENT_SECRET` (and optionally `FERRY_EMULATOR_CERTIFICATE`, a PEM
    /// file path), rooted at `FERRY_EMULATOR_ROOT` (default `./ferry-emulator-data`).
    pub fn from_env() -> Result<Self, Error> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let root = var("FERRY_EMULATOR_ROOT").unwrap_or_else(|| "ferry-emulator-data".into());
        let mut config = EmulatorConfig::new(root);
        let mut app = App::new(
            var("FERRY_EMULATOR_TENANT").unwrap_or_else(|| DEFAULT_TENANT.into()),
            var("FERRY_EMULATOR_CLIENT_ID").unwrap_or_else(|| DEFAULT_CLIENT_ID.into()),
        );
        app.client_secret = var("FERRY_EMULATOR_CLIENT_SECRET");
        if let Some(cert) = var("FERRY_EMULATOR_CERTIFICATE") {
            let pem = std::fs::read_to_string(&cert).map_err(|source| Error::ConfigRead {
                path: cert.into(),
                source,
            })?;
            app.certificate_pem = Some(pem);
        }
        config.apps.push(app);
        Ok(config)
    }

    /// Checks the config is usable before serving.
    pub fn validate(&self) -> Result<(), Error> {
        if self.users.is_empty() {
            return Err(Error::Config("at least one user is required".into()));
        }
        for app in &self.apps {
            if let Some(pem) = &app.certificate_pem {
                crate::identity::cert::Certificate::from_pem(pem).map_err(|reason| {
                    Error::Certificate {
                        client_id: app.client_id.clone(),
                        reason,
                    }
                })?;
            }
        }
        Ok(())
    }
}

/// Tenant used by `from_env` when none is given.
pub const DEFAULT_TENANT: &str = "00000000-0000-0000-0000-00000000e001";
/// Client id used by `from_env` when none is given.
pub const DEFAULT_CLIENT_ID: &str = "00000000-0000-0000-0000-00000000c001";

/// Azure AD issues access tokens valid for a random 60–90 minutes.
pub fn random_token_lifetime() -> Duration {
    let extra = (crate::util::random_f64() * 1800.0) as u64;
    Duration::from_secs(3600 + extra)
}
