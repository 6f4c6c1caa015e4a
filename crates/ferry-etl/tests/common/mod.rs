//! Shared helpers: a fresh Postgres and a source folder per test.
#![allow(dead_code, clippy::unwrap_used)]

use ferry_etl::{LocalSource, Options, Report, Source, sync};
use ferry_testkit::pg::TestDb;

pub struct Env {
    pub db: TestDb,
    pub client: tokio_postgres::Client,
    pub root: tempfile::TempDir,
}

pub async fn start() -> Env {
    let db = ferry_testkit::pg::start().await;
    let mut client = db.client().await;
    ferry_pg::migrate(&mut client).await.unwrap();
    Env {
        db,
        client,
        root: tempfile::tempdir().unwrap(),
    }
}

impl Env {
    pub fn write(&self, path: &str, body: impl AsRef<[u8]>) {
        let path = self.root.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }

    pub fn source(&self) -> Source {
        Source::Local(LocalSource::new(self.root.path()))
    }

    pub async fn sync(&mut self) -> Report {
        let source = self.source();
        sync(&mut self.client, &source, &Options::default())
            .await
            .unwrap()
    }

    /// Rows of a table as text, ordered by file and row.
    pub async fn rows(&self, table: &str, columns: &str) -> Vec<Vec<Option<String>>> {
        let (schema, name) = table.split_once('.').unwrap();
        let sql = format!(
            "SELECT {columns} FROM \"{schema}\".\"{name}\" ORDER BY
                 (SELECT item_id FROM ferry.onedrive_ingest i WHERE i.id = _ferry_ingest),
                 _ferry_row"
        );
        self.client
            .query(&sql, &[])
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| r.get::<_, Option<String>>(i))
                    .collect()
            })
            .collect()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        self.client.query_one(sql, &[]).await.unwrap().get(0)
    }
}

pub fn table_of(report: &Report, path: &str) -> String {
    report
        .files
        .iter()
        .find(|f| f.path == path)
        .and_then(|f| f.target_table.clone())
        .unwrap_or_else(|| panic!("{path} not in {report:#?}"))
}

pub fn quoted(table: &str) -> String {
    let (schema, name) = table.split_once('.').unwrap();
    format!("\"{schema}\".\"{name}\"")
}
