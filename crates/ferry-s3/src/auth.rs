//! Who may call the gateway: access keys from the environment and from a 0600 credentials
//! file (reloaded on SIGHUP), checked by s3s with constant-time signature comparison.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::{S3Result, s3_error};

/// Problems with credentials; none of them carries a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    #[error("credentials file: {0}")]
    File(#[from] ferry_private::ReadError),
    #[error("credentials file {path}, line {line}: expected ACCESS_KEY_ID:SECRET_ACCESS_KEY")]
    Syntax { path: PathBuf, line: usize },
    #[error(
        "no access keys configured: set FERRY_S3_ACCESS_KEY_ID and FERRY_S3_SECRET_ACCESS_KEY (or their _FILE forms) or a credentials file"
    )]
    NoKeys,
}

/// One access key and its secret.
#[derive(Clone)]
pub struct AccessKey {
    pub id: String,
    pub secret: SecretKey,
}

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Parses a credentials file: one `ACCESS_KEY_ID:SECRET_ACCESS_KEY` per line, `#` comments.
pub fn read_credentials_file(path: &Path) -> Result<Vec<AccessKey>, AuthError> {
    let text = ferry_private::read(path)?;
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (id, secret) = line
            .split_once(':')
            .filter(|(id, secret)| !id.trim().is_empty() && !secret.trim().is_empty())
            .ok_or_else(|| AuthError::Syntax {
                path: path.to_owned(),
                line: i + 1,
            })?;
        keys.push(AccessKey {
            id: id.trim().to_owned(),
            secret: SecretKey::from(secret.trim()),
        });
    }
    Ok(keys)
}

/// The keys the gateway accepts.
pub struct KeyStore {
    fixed: Vec<AccessKey>,
    file: Option<PathBuf>,
    keys: RwLock<HashMap<String, SecretKey>>,
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyStore")
            .field("file", &self.file)
            .field("keys", &self.access_key_ids())
            .finish()
    }
}

impl KeyStore {
    /// Keys from configuration plus, optionally, a credentials file read now and on reload.
    pub fn new(fixed: Vec<AccessKey>, file: Option<PathBuf>) -> Result<Self, AuthError> {
        let store = Self {
            fixed,
            file,
            keys: RwLock::new(HashMap::new()),
        };
        store.reload()?;
        Ok(store)
    }

    /// Re-reads the credentials file. On error the previous keys stay in force.
    pub fn reload(&self) -> Result<usize, AuthError> {
        let mut keys: HashMap<String, SecretKey> = self
            .fixed
            .iter()
            .map(|k| (k.id.clone(), k.secret.clone()))
            .collect();
        if let Some(file) = &self.file {
            for key in read_credentials_file(file)? {
                keys.insert(key.id, key.secret);
            }
        }
        if keys.is_empty() {
            return Err(AuthError::NoKeys);
        }
        let count = keys.len();
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
        Ok(count)
    }

    /// The configured access key ids (not secrets), sorted.
    pub fn access_key_ids(&self) -> Vec<String> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        let mut ids: Vec<String> = keys.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// The credentials file, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }
}

/// The s3s view of a shared [`KeyStore`].
#[derive(Debug)]
pub(crate) struct KeyAuth(pub std::sync::Arc<KeyStore>);

#[async_trait::async_trait]
impl S3Auth for KeyAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        let keys = self.0.keys.read().unwrap_or_else(|p| p.into_inner());
        keys.get(access_key)
            .cloned()
            .ok_or_else(|| s3_error!(InvalidAccessKeyId, "the access key id is not known"))
    }
}

/// Lets signed requests through, refuses anonymous ones, and notes the operation name for
/// the access log and metrics.
#[derive(Debug)]
pub(crate) struct AccessGate;

#[async_trait::async_trait]
impl S3Access for AccessGate {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        crate::server::note_operation(cx.s3_op().name());
        if cx.credentials().is_some() {
            Ok(())
        } else {
            Err(s3_error!(
                AccessDenied,
                "the request is not signed; sign it with an access key"
            ))
        }
    }
}
