//! What S3 keeps about an object and OneDrive does not: its MD5 entity tag, content type
//! and user metadata. By default in an embedded database file (redb) in the gateway's state
//! folder; with [`MetaStore::postgres`], in the table `ferry.s3_object_meta`, so that several
//! gateway replicas over one drive agree.
//!
//! A record is kept under the drive item's id with the item's content version (its cTag).
//! A rename keeps both, so the record follows the file; a file edited in OneDrive behind
//! the gateway's back gets a new cTag, no longer matches its record, and is served with a
//! fresh entity tag instead of a stale one.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

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
pub enum MetaStore {
    Embedded { db: redb::Database, name: String },
    Postgres(Box<Postgres>),
}

/// Records in Postgres, over one connection that is opened again when it breaks.
#[derive(Debug)]
pub struct Postgres {
    settings: ferry_pg::Settings,
    /// Which drive the records belong to, so gateways over several drives can share a table.
    scope: String,
    client: tokio::sync::Mutex<Option<Arc<tokio_postgres::Client>>>,
}

impl MetaStore {
    /// The embedded store at `path`, created (in a 0700 folder) if it is missing.
    pub fn embedded(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        if let Some(dir) = path.parent() {
            use std::os::unix::fs::DirBuilderExt as _;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(Error::io("create", dir))?;
        }
        let db = redb::Database::create(path).map_err(|e| failed(&name, e))?;
        // The table exists from the start, so reads never meet a missing one.
        let tx = db.begin_write().map_err(|e| failed(&name, e))?;
        tx.open_table(OBJECTS).map_err(|e| failed(&name, e))?;
        tx.commit().map_err(|e| failed(&name, e))?;
        Ok(Self::Embedded { db, name })
    }

    /// The shared store in the database `settings` name, for the drive `scope`; brings the
    /// database's schema up to date.
    pub async fn postgres(settings: ferry_pg::Settings, scope: &str) -> Result<Self> {
        let store = Postgres {
            settings,
            scope: scope.to_owned(),
            client: tokio::sync::Mutex::new(None),
        };
        let mut client = store.settings.connect().await.map_err(pg)?;
        ferry_pg::migrate(&mut client).await.map_err(pg)?;
        *store.client.lock().await = Some(Arc::new(client));
        Ok(Self::Postgres(Box::new(store)))
    }

    /// The record of `item_id` if it was made for `version` (else the file changed since).
    pub async fn get(&self, item_id: &str, version: &str) -> Result<Option<Record>> {
        Ok(self.get_many(&[(item_id, version)]).await?.remove(0))
    }

    /// [`get`](Self::get) for many items at once (a listing page): one answer per item, in
    /// order.
    pub async fn get_many(&self, items: &[(&str, &str)]) -> Result<Vec<Option<Record>>> {
        let found: HashMap<String, Record> = match self {
            Self::Embedded { db, name } => {
                let tx = db.begin_read().map_err(|e| failed(name, e))?;
                let table = tx.open_table(OBJECTS).map_err(|e| failed(name, e))?;
                let mut found = HashMap::new();
                for (id, _) in items {
                    if let Some(raw) = table.get(*id).map_err(|e| failed(name, e))? {
                        let record: Record =
                            serde_json::from_slice(raw.value()).map_err(|e| failed(name, e))?;
                        found.insert((*id).to_owned(), record);
                    }
                }
                found
            }
            Self::Postgres(pg) => pg.get_many(items).await?,
        };
        Ok(items
            .iter()
            .map(|(id, version)| found.get(*id).filter(|r| r.version == *version).cloned())
            .collect())
    }

    /// Records (or replaces) what is known of `item_id`; durable when this returns.
    pub async fn put(&self, item_id: &str, record: &Record) -> Result<()> {
        match self {
            Self::Embedded { db, name } => {
                let body = serde_json::to_vec(record).map_err(|e| failed(name, e))?;
                let tx = db.begin_write().map_err(|e| failed(name, e))?;
                tx.open_table(OBJECTS)
                    .map_err(|e| failed(name, e))?
                    .insert(item_id, body.as_slice())
                    .map_err(|e| failed(name, e))?;
                tx.commit().map_err(|e| failed(name, e))
            }
            Self::Postgres(pg) => pg.put(item_id, record).await,
        }
    }

    /// Forgets `item_id` (deleted through the gateway).
    pub async fn remove(&self, item_id: &str) -> Result<()> {
        match self {
            Self::Embedded { db, name } => {
                let tx = db.begin_write().map_err(|e| failed(name, e))?;
                tx.open_table(OBJECTS)
                    .map_err(|e| failed(name, e))?
                    .remove(item_id)
                    .map_err(|e| failed(name, e))?;
                tx.commit().map_err(|e| failed(name, e))
            }
            Self::Postgres(pg) => pg.remove(item_id).await,
        }
    }
}

impl Postgres {
    /// The open connection, or a new one if it broke.
    async fn client(&self) -> Result<Arc<tokio_postgres::Client>> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        let client = Arc::new(self.settings.connect().await.map_err(pg)?);
        *slot = Some(client.clone());
        Ok(client)
    }

    /// Waits for a statement at most [`QUERY_TIMEOUT`]; a failed or silent connection is
    /// dropped, so the next statement opens a new one (after a failover, say) instead of
    /// hanging on a half-open socket.
    async fn settle<T>(
        &self,
        statement: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T> {
        let outcome = match tokio::time::timeout(QUERY_TIMEOUT, statement).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => pg(e),
            Err(_) => pg(format!("no answer within {QUERY_TIMEOUT:?}")),
        };
        *self.client.lock().await = None;
        Err(outcome)
    }

    async fn get_many(&self, items: &[(&str, &str)]) -> Result<HashMap<String, Record>> {
        let ids: Vec<&str> = items.iter().map(|(id, _)| *id).collect();
        let client = self.client().await?;
        let rows = self
            .settle(client.query(
                "SELECT item_id, version, etag, attrs FROM ferry.s3_object_meta
                 WHERE scope = $1 AND item_id = ANY($2)",
                &[&self.scope, &ids],
            ))
            .await?;
        rows.iter()
            .map(|row| {
                let attrs: serde_json::Value = row.get(3);
                let record = Record {
                    version: row.get(1),
                    etag: row.get(2),
                    attrs: serde_json::from_value(attrs).map_err(|e| failed(POSTGRES, e))?,
                };
                Ok((row.get(0), record))
            })
            .collect()
    }

    async fn put(&self, item_id: &str, record: &Record) -> Result<()> {
        let attrs = serde_json::to_value(&record.attrs).map_err(|e| failed(POSTGRES, e))?;
        let client = self.client().await?;
        self.settle(client.execute(
            "INSERT INTO ferry.s3_object_meta (scope, item_id, version, etag, attrs)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (scope, item_id) DO UPDATE
             SET version = EXCLUDED.version, etag = EXCLUDED.etag, attrs = EXCLUDED.attrs,
                 updated_at = now()",
            &[&self.scope, &item_id, &record.version, &record.etag, &attrs],
        ))
        .await?;
        Ok(())
    }

    async fn remove(&self, item_id: &str) -> Result<()> {
        let client = self.client().await?;
        self.settle(client.execute(
            "DELETE FROM ferry.s3_object_meta WHERE scope = $1 AND item_id = $2",
            &[&self.scope, &item_id],
        ))
        .await?;
        Ok(())
    }
}

const POSTGRES: &str = "in Postgres (ferry.s3_object_meta)";
/// How long one statement may take before its connection is given up.
const QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn failed(store: &str, e: impl std::fmt::Display) -> Error {
    Error::MetaStore {
        store: store.to_owned(),
        message: e.to_string(),
    }
}

fn pg(e: impl std::fmt::Display) -> Error {
    failed(POSTGRES, e)
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

    /// Records kept through `reopen`, per item and version.
    async fn check_records(store: MetaStore, reopen: impl AsyncFn() -> MetaStore) {
        assert_eq!(store.get("item", "c1").await.unwrap(), None);
        store.put("item", &record("c1", "abc")).await.unwrap();
        store.put("other", &record("c1", "def")).await.unwrap();
        drop(store);

        let store = reopen().await;
        assert_eq!(
            store.get("item", "c1").await.unwrap(),
            Some(record("c1", "abc"))
        );
        assert_eq!(
            store.get("item", "c2").await.unwrap(),
            None,
            "edited behind our back"
        );
        store.put("item", &record("c2", "ghi")).await.unwrap();
        assert_eq!(store.get("item", "c2").await.unwrap().unwrap().etag, "ghi");
        let many = store
            .get_many(&[
                ("other", "c1"),
                ("missing", "c1"),
                ("item", "c1"),
                ("item", "c2"),
            ])
            .await
            .unwrap();
        let etags: Vec<Option<&str>> = many
            .iter()
            .map(|r| r.as_ref().map(|r| r.etag.as_str()))
            .collect();
        assert_eq!(etags, [Some("def"), None, None, Some("ghi")]);
        store.remove("item").await.unwrap();
        assert_eq!(store.get("item", "c2").await.unwrap(), None);
        assert!(store.get("other", "c1").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn embedded_records_survive_a_reopen_and_a_new_version_misses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/meta.redb");
        let store = MetaStore::embedded(&path).unwrap();
        check_records(store, async || MetaStore::embedded(&path).unwrap()).await;
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[tokio::test]
    async fn postgres_records_are_shared_by_replicas_of_one_drive_only() {
        let db = ferry_testkit::pg::start().await;
        let open = async |scope: &str| MetaStore::postgres(db.settings(), scope).await.unwrap();
        let store = open("/drives/a").await;
        check_records(store, async || open("/drives/a").await).await;

        // Two replicas: what one writes the other reads; another drive sees none of it.
        let (one, two, other) = (
            open("/drives/a").await,
            open("/drives/a").await,
            open("/drives/b").await,
        );
        one.put("shared", &record("c1", "jkl")).await.unwrap();
        assert_eq!(two.get("shared", "c1").await.unwrap().unwrap().etag, "jkl");
        assert_eq!(other.get("shared", "c1").await.unwrap(), None);

        // A dropped connection is opened again.
        db.client()
            .await
            .batch_execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE pid <> pg_backend_pid() AND datname = current_database()",
            )
            .await
            .unwrap();
        // Once the server has closed the sessions, the next statement fails and the one
        // after it runs on a new connection.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let mut again = None;
        for _ in 0..50 {
            match two.get("shared", "c1").await {
                Ok(found) => {
                    again = found;
                    break;
                }
                // The first query may still meet the dying connection.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        }
        assert_eq!(again.unwrap().etag, "jkl");
    }

    #[tokio::test]
    async fn a_second_process_cannot_open_it_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        let _first = MetaStore::embedded(&path).unwrap();
        let err = MetaStore::embedded(&path).unwrap_err().to_string();
        assert!(err.contains("meta.redb"), "{err}");
    }
}
