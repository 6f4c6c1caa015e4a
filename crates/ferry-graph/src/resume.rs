//! Upload sessions saved on disk, so a large upload cut short — the process killed, the
//! machine restarted, the network gone for longer than the retry budget — continues from
//! where it stopped when it is run again, instead of sending every byte once more.
//!
//! A session is found again by what identifies the upload: the drive, the remote path, the
//! local file's canonical path, size and modification time. A changed file starts over.
//! The upload URL is pre-authenticated (whoever holds it can write the file), so the
//! records are 0600 and never logged.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use time::format_description::well_known::Rfc3339;

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Saved {
    pub upload_url: String,
    /// When the session expires, as Graph said (RFC 3339).
    pub expiration: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Sessions {
    dir: PathBuf,
}

impl Sessions {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The record's name for one upload.
    pub fn key(drive: &str, remote: &str, local: &Path, size: u64, modified: SystemTime) -> String {
        let local = local.canonicalize().unwrap_or_else(|_| local.to_path_buf());
        let nanos = modified
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut h = Sha256::new();
        for part in [
            drive.as_bytes(),
            remote.trim_matches('/').as_bytes(),
            local.as_os_str().as_encoded_bytes(),
            &size.to_le_bytes(),
            &nanos.to_le_bytes(),
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        hex::encode(&h.finalize()[..16])
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// The saved session, unless there is none, it cannot be read or it has expired.
    pub fn load(&self, key: &str) -> Option<Saved> {
        let text = std::fs::read(self.path(key)).ok()?;
        let saved: Saved = serde_json::from_slice(&text).ok()?;
        let expired = saved
            .expiration
            .as_deref()
            .and_then(|e| time::OffsetDateTime::parse(e, &Rfc3339).ok())
            .is_some_and(|e| e <= time::OffsetDateTime::now_utc());
        if expired {
            self.remove(key);
            return None;
        }
        Some(saved)
    }

    /// Saving is best effort: without the record the upload still works, it just cannot
    /// resume after this process ends.
    pub fn save(&self, key: &str, saved: &Saved) {
        let written = serde_json::to_vec(saved)
            .map_err(std::io::Error::other)
            .and_then(|body| ferry_private::write(&self.path(key), &body));
        if let Err(e) = written {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot save the upload session; an interrupted upload will start over");
        }
    }

    pub fn remove(&self, key: &str) {
        let _ = std::fs::remove_file(self.path(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_sessions_round_trip_privately_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let sessions = Sessions::new(dir.path().join("uploads"));
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let key = Sessions::key("/me/drive", "/a/b.bin", Path::new("/x/b.bin"), 10, t);
        assert_ne!(
            key,
            Sessions::key("/me/drive", "/a/b.bin", Path::new("/x/b.bin"), 11, t),
            "a changed size is another upload"
        );
        assert!(sessions.load(&key).is_none());
        let later = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
        sessions.save(
            &key,
            &Saved {
                upload_url: "https://up/1".into(),
                expiration: Some(later.format(&Rfc3339).unwrap()),
            },
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(sessions.path(&key))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(sessions.load(&key).unwrap().upload_url, "https://up/1");
        sessions.save(
            &key,
            &Saved {
                upload_url: "https://up/2".into(),
                expiration: Some("2020-01-01T00:00:00Z".into()),
            },
        );
        assert!(sessions.load(&key).is_none(), "expired");
        assert!(!sessions.path(&key).exists(), "and forgotten");
    }
}
