//! Configuration: flags and `FERRY_*` variables (through clap) over a TOML file over defaults.
//! Secrets come only from the environment, `*_FILE` variables or 0600 files.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use ferry_s3::{AccessKey, TlsFiles};
use serde::Deserialize;

use crate::cli::S3Args;

/// The configuration file. Every setting is optional; see README.md for the reference.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    #[serde(default)]
    pub s3: S3File,
    #[serde(default)]
    pub graph: GraphFile,
}

/// The `[graph]` table: Microsoft identity and Graph settings (`FERRY_GRAPH_*` win).
/// Secrets are not read from here: use FERRY_GRAPH_CLIENT_SECRET(_FILE) or a key file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphFile {
    pub authority: Option<String>,
    pub graph_url: Option<String>,
    pub tenant: Option<String>,
    pub client_id: Option<String>,
    pub drive: Option<String>,
    pub certificate_file: Option<String>,
    pub certificate_key_file: Option<String>,
    pub token_cache: Option<String>,
}

/// The `[s3]` table: the same names as the `serve s3` flags, with `_` for `-`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3File {
    pub root: Option<PathBuf>,
    pub onedrive: Option<bool>,
    pub drive_root: Option<String>,
    #[serde(default, with = "humantime_serde_opt")]
    pub freshness: Option<Duration>,
    pub metadata: Option<Metadata>,
    pub addr: Option<String>,
    pub region: Option<String>,
    pub domain: Option<String>,
    pub access_key_id: Option<String>,
    pub credentials_file: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub uploads_dir: Option<PathBuf>,
    pub fsync: Option<bool>,
    #[serde(default, with = "humantime_serde_opt")]
    pub upload_max_age: Option<Duration>,
    #[serde(default, with = "humantime_serde_opt")]
    pub shutdown_grace: Option<Duration>,
}

mod humantime_serde_opt {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| humantime::parse_duration(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

impl File {
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read configuration file {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("invalid configuration file {}", path.display()))
    }
}

/// Everything `ferry serve s3` needs, resolved.
#[derive(Debug)]
pub struct S3Settings {
    pub store: Store,
    pub addr: SocketAddr,
    pub region: String,
    pub domain: Option<String>,
    pub keys: Vec<AccessKey>,
    pub credentials_file: Option<PathBuf>,
    pub tls: Option<TlsFiles>,
    pub uploads_dir: PathBuf,
    pub fsync: bool,
    pub upload_max_age: Duration,
    pub shutdown_grace: Duration,
}

/// What the gateway serves.
#[derive(Debug, Clone)]
pub enum Store {
    /// A local folder (or NAS mount); its top-level folders are the buckets.
    Folder(PathBuf),
    /// A OneDrive folder; its child folders are the buckets.
    OneDrive {
        root: String,
        /// How long listings may trail changes made in OneDrive itself.
        freshness: Duration,
        metadata: Metadata,
        /// Where the embedded metadata store and spooled writes live.
        state: PathBuf,
    },
}

/// Where the OneDrive gateway keeps S3's own metadata.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Metadata {
    /// A file in the state dir; one gateway.
    #[default]
    Embedded,
    /// `ferry.s3_object_meta` in Postgres; any number of gateways over one drive.
    Postgres,
}

pub const DEFAULT_ADDR: &str = "127.0.0.1:9000";
/// The drive folder `--onedrive` serves unless told otherwise (the seed's layout).
pub const DEFAULT_DRIVE_ROOT: &str = "/DynamicCapital/ai-training";

/// A secret from `NAME` or from the file named by `NAME_FILE` (which must be 0600).
pub fn secret_from_env(name: &str) -> anyhow::Result<Option<String>> {
    if let Ok(value) = std::env::var(name) {
        return Ok(Some(value));
    }
    let file_var = format!("{name}_FILE");
    let Ok(path) = std::env::var(&file_var) else {
        return Ok(None);
    };
    let text =
        ferry_private::read(Path::new(&path)).with_context(|| format!("reading {file_var}"))?;
    Ok(Some(text.trim().to_owned()))
}

impl S3Settings {
    pub fn resolve(args: S3Args, file: &File) -> anyhow::Result<Self> {
        let f = &file.s3;
        let store = if args.onedrive || f.onedrive == Some(true) {
            Store::OneDrive {
                root: args
                    .drive_root
                    .or_else(|| f.drive_root.clone())
                    .unwrap_or_else(|| DEFAULT_DRIVE_ROOT.into()),
                freshness: args
                    .freshness
                    .or(f.freshness)
                    .unwrap_or(ferry_store::onedrive::backend::DEFAULT_FRESHNESS),
                metadata: args.metadata.or(f.metadata).unwrap_or_default(),
                state: state_dir()?.join("s3-onedrive"),
            }
        } else {
            match args.root.or_else(|| f.root.clone()) {
                Some(root) => Store::Folder(root),
                None => bail!(
                    "nothing to serve: pass --root DIR (or FERRY_S3_ROOT, [s3] root) for a \
                     folder, or --onedrive for a OneDrive folder"
                ),
            }
        };
        let addr_text = args
            .addr
            .or_else(|| f.addr.clone())
            .unwrap_or_else(|| DEFAULT_ADDR.into());
        let addr = parse_addr(&addr_text)?;
        let mut keys = Vec::new();
        let access_key_id = args.access_key_id.or_else(|| f.access_key_id.clone());
        let secret = secret_from_env("FERRY_S3_SECRET_ACCESS_KEY")?;
        match (access_key_id, secret) {
            (Some(id), Some(secret)) => keys.push(AccessKey {
                id,
                secret: secret.into(),
            }),
            (Some(_), None) => bail!(
                "FERRY_S3_ACCESS_KEY_ID is set but its secret is not: set FERRY_S3_SECRET_ACCESS_KEY or FERRY_S3_SECRET_ACCESS_KEY_FILE"
            ),
            (None, Some(_)) => {
                bail!("a secret access key is set but FERRY_S3_ACCESS_KEY_ID is not")
            }
            (None, None) => {}
        }
        let credentials_file = args.credentials_file.or_else(|| f.credentials_file.clone());
        let tls = match (
            args.tls_cert.or_else(|| f.tls_cert.clone()),
            args.tls_key.or_else(|| f.tls_key.clone()),
        ) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => bail!("TLS needs both a certificate (--tls-cert) and a key (--tls-key)"),
        };
        let uploads_dir = args
            .uploads_dir
            .or_else(|| f.uploads_dir.clone())
            .unwrap_or_else(|| match &store {
                Store::Folder(root) => root.join(".ferry").join("uploads"),
                Store::OneDrive { state, .. } => state.join("uploads"),
            });
        Ok(Self {
            store,
            addr,
            region: args
                .region
                .or_else(|| f.region.clone())
                .unwrap_or_else(|| "us-east-1".into()),
            domain: args.domain.or_else(|| f.domain.clone()),
            keys,
            credentials_file,
            tls,
            uploads_dir,
            fsync: args.fsync.or(f.fsync).unwrap_or(true),
            upload_max_age: args
                .upload_max_age
                .or(f.upload_max_age)
                .unwrap_or(Duration::from_secs(24 * 3600)),
            shutdown_grace: args
                .shutdown_grace
                .or(f.shutdown_grace)
                .unwrap_or(Duration::from_secs(30)),
        })
    }
}

/// Accepts `HOST:PORT` and `:PORT` (all interfaces, as rclone's `--addr :9000`).
fn parse_addr(text: &str) -> anyhow::Result<SocketAddr> {
    let full = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_owned()
    };
    full.parse().with_context(|| {
        format!("invalid address {text:?}: expected HOST:PORT such as 127.0.0.1:9000")
    })
}

/// ferry's own state: `FERRY_STATE_DIR`; else `/var/lib/ferry` for root (the managed
/// Postgres runs as another user, who cannot enter `/root`); else `$XDG_DATA_HOME/ferry`,
/// else `~/.local/share/ferry`.
pub fn state_dir() -> anyhow::Result<PathBuf> {
    if let Ok(dir) = std::env::var("FERRY_STATE_DIR") {
        return Ok(dir.into());
    }
    if rustix::process::getuid().is_root() {
        return Ok(PathBuf::from("/var/lib/ferry"));
    }
    if let Ok(dir) = std::env::var("XDG_DATA_HOME") {
        return Ok(Path::new(&dir).join("ferry"));
    }
    let home = std::env::var("HOME").context("set FERRY_STATE_DIR or HOME")?;
    Ok(Path::new(&home).join(".local/share/ferry"))
}
