//! The TOML file format for `EmulatorConfig::from_file`. Durations are in seconds.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::config::{App, DriveConfig, DriveType, EmulatorConfig, User};
use crate::error::Error;
use crate::faults::Faults;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    root: String,
    #[serde(default)]
    apps: Vec<FileApp>,
    #[serde(default)]
    users: Vec<User>,
    #[serde(default)]
    drives: Vec<DriveConfig>,
    #[serde(default)]
    faults: Faults,
    token_lifetime_secs: Option<u64>,
    refresh_token_lifetime_secs: Option<u64>,
    device_code_lifetime_secs: Option<u64>,
    device_code_interval_secs: Option<u64>,
    auto_approve_device_codes: Option<bool>,
    upload_session_lifetime_secs: Option<u64>,
    download_url_lifetime_secs: Option<u64>,
    default_drive_type: Option<DriveType>,
    default_quota: Option<u64>,
    reject_auth_on_upload_url: Option<bool>,
    delta_report_deleted_descendants: Option<bool>,
    scan_disk: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileApp {
    tenant: String,
    client_id: String,
    client_secret: Option<String>,
    certificate_pem: Option<String>,
    /// Path of a PEM certificate file, relative to the config file.
    certificate_file: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
}

impl FileConfig {
    pub fn into_config(self, base: &Path) -> Result<EmulatorConfig, Error> {
        let mut c = EmulatorConfig::new(base.join(&self.root));
        for a in self.apps {
            let mut app = App::new(a.tenant, a.client_id);
            app.client_secret = a.client_secret;
            app.redirect_uris = a.redirect_uris;
            app.certificate_pem = match (a.certificate_pem, a.certificate_file) {
                (Some(pem), _) => Some(pem),
                (None, Some(file)) => {
                    let path = base.join(file);
                    Some(
                        std::fs::read_to_string(&path)
                            .map_err(|source| Error::ConfigRead { path, source })?,
                    )
                }
                (None, None) => None,
            };
            c.apps.push(app);
        }
        if !self.users.is_empty() {
            c.users = self.users;
        }
        c.drives = self.drives;
        c.faults = self.faults;
        let secs = Duration::from_secs;
        if let Some(v) = self.token_lifetime_secs {
            c.token_lifetime = secs(v);
        }
        if let Some(v) = self.refresh_token_lifetime_secs {
            c.refresh_token_lifetime = secs(v);
        }
        if let Some(v) = self.device_code_lifetime_secs {
            c.device_code_lifetime = secs(v);
        }
        if let Some(v) = self.device_code_interval_secs {
            c.device_code_interval = secs(v);
        }
        if let Some(v) = self.upload_session_lifetime_secs {
            c.upload_session_lifetime = secs(v);
        }
        if let Some(v) = self.download_url_lifetime_secs {
            c.download_url_lifetime = secs(v);
        }
        c.auto_approve_device_codes = self.auto_approve_device_codes.unwrap_or(false);
        c.default_drive_type = self.default_drive_type.unwrap_or_default();
        if let Some(v) = self.default_quota {
            c.default_quota = v;
        }
        c.reject_auth_on_upload_url = self.reject_auth_on_upload_url.unwrap_or(true);
        c.delta_report_deleted_descendants = self.delta_report_deleted_descendants.unwrap_or(false);
        c.scan_disk = self.scan_disk.unwrap_or(true);
        Ok(c)
    }
}
