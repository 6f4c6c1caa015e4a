//! What S3 keeps about an object and OneDrive does not: its MD5 entity tag, content type
//! and user metadata, in an embedded database file (redb).
//!
//! A record is kept under the drive item's id with the item's content version (its cTag).
//! A rename keeps both, so the record follows the file; a file edited in OneDrive behind
//! the gateway's back gets a new cTag, no longer matches its record, and is served with a
//! fresh entity tag instead of a stale one.

use std::path::{Path, PathBuf};

use redb::{ReadableDatabase as _, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::backend::ObjectAttrs;
use crate::error::{Error, Result};

const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");

/// What the gateway recorded about one version of an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The item's cTag when this was recorded.
    pub version: String,
    /// The entity tag without quotes (hex MD5, or `md5-of-md5s-N`).
    pub etag: String,
    pub attrs: ObjectAttrs,
}

#[derive(Debug)]
pub struct MetaStore {
    db: redb::Database,
    path: PathBuf,
}

impl MetaStore {
    /// Opens the store at `path`, creating it (in a 0700 folder) if it is missing.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            use std::os::unix::fs::DirBuilderExt as _;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(Error::io("create", dir))?;
        }
        let db = redb::Database::create(path).map_err(|e| failed(path, e))?;
        let store = Self {
            db,
            path: path.to_owned(),
        };
        // The table exists from the start, so reads never meet a missing one.
        let tx = store.db.begin_write().map_err(|e| failed(path, e))?;
        tx.open_table(OBJECTS).map_err(|e| failed(path, e))?;
        tx.commit().map_err(|e| failed(path, e))?;
        Ok(store)
    }

    /// The record of `item_id` if it was made for `version` (else the file changed since).
    pub fn get(&self, item_id: &str, version: &str) -> Result<Option<Record>> {
        let tx = self.db.begin_read().map_err(|e| failed(&self.path, e))?;
        let table = tx.open_table(OBJECTS).map_err(|e| failed(&self.path, e))?;
        let Some(raw) = table.get(item_id).map_err(|e| failed(&self.path, e))? else {
            return Ok(None);
        };
        let record: Record =
            serde_json::from_slice(raw.value()).map_err(|e| failed(&self.path, e))?;
        Ok((record.version == version).then_some(record))
    }

    /// Records (or replaces) what is known of `item_id`; durable when this returns.
    pub fn put(&self, item_id: &str, record: &Record) -> Result<()> {
        let body = serde_json::to_vec(record).map_err(|e| failed(&self.path, e))?;
        let tx = self.db.begin_write().map_err(|e| failed(&self.path, e))?;
        tx.open_table(OBJECTS)
            .map_err(|e| failed(&self.path, e))?
            .insert(item_id, body.as_slice())
            .map_err(|e| failed(&self.path, e))?;
        tx.commit().map_err(|e| failed(&self.path, e))
    }

    /// Forgets `item_id` (deleted through the gateway).
    pub fn remove(&self, item_id: &str) -> Result<()> {
        let tx = self.db.begin_write().map_err(|e| failed(&self.path, e))?;
        tx.open_table(OBJECTS)
            .map_err(|e| failed(&self.path, e))?
            .remove(item_id)
            .map_err(|e| failed(&self.path, e))?;
        tx.commit().map_err(|e| failed(&self.path, e))
    }
}

fn failed(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::MetaStore {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn record(version: &str, etag: &str) -> Record {
        let mut attrs = ObjectAttrs {
            content_type: Some("text/csv".into()),
            ..ObjectAttrs::default()
        };
        attrs.user_metadata.insert("run".into(), "42".into());
        Record {
            version: version.into(),
            etag: etag.into(),
            attrs,
        }
    }

    #[test]
    fn records_survive_a_reopen_and_a_new_version_misses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/meta.redb");
        let store = MetaStore::open(&path).unwrap();
        assert_eq!(store.get("item", "c1").unwrap(), None);
        store.put("item", &record("c1", "abc")).unwrap();
        store.put("other", &record("c1", "def")).unwrap();
        drop(store);

        let store = MetaStore::open(&path).unwrap();
        assert_eq!(store.get("item", "c1").unwrap(), Some(record("c1", "abc")));
        assert_eq!(
            store.get("item", "c2").unwrap(),
            None,
            "edited behind our back"
        );
        store.put("item", &record("c2", "ghi")).unwrap();
        assert_eq!(store.get("item", "c2").unwrap().unwrap().etag, "ghi");
        store.remove("item").unwrap();
        assert_eq!(store.get("item", "c2").unwrap(), None);
        assert!(store.get("other", "c1").unwrap().is_some());
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn a_second_process_cannot_open_it_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        let _first = MetaStore::open(&path).unwrap();
        let err = MetaStore::open(&path).unwrap_err().to_string();
        assert!(err.contains("meta.redb"), "{err}");
    }
}
