//! The managed cluster and migrations against a real Postgres.

#![allow(clippy::unwrap_used)]

use ferry_pg::{ClusterStatus, MIGRATIONS, Migration, migrate::migrate_with};

#[tokio::test]
async fn a_cluster_starts_migrates_once_stops_and_starts_again_on_its_port() {
    let db = ferry_testkit::pg::start().await;
    assert_eq!(
        db.cluster.status().await.unwrap(),
        ClusterStatus::Running { port: db.port }
    );
    // Loopback only, scram passwords, the role's own database.
    let client = db.client().await;
    let row = client
        .query_one(
            "SELECT current_setting('listen_addresses'), current_setting('password_encryption'), current_database()",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "127.0.0.1");
    assert_eq!(row.get::<_, String>(1), "scram-sha-256");
    assert_eq!(row.get::<_, String>(2), "ferry");
    let mut bad = db.cluster.config(db.port).unwrap();
    bad.password("wrong");
    let err = ferry_pg::connect_config(&bad).await.unwrap_err();
    assert_eq!(err.code(), Some("28P01"), "{err}");

    // Migrations: concurrent runs apply each once.
    let (mut a, mut b) = (db.client().await, db.client().await);
    let (ra, rb) = tokio::join!(ferry_pg::migrate(&mut a), ferry_pg::migrate(&mut b));
    let mut applied = ra.unwrap();
    applied.extend(rb.unwrap());
    let all: Vec<u32> = MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(applied, all);
    assert!(ferry_pg::migrate(&mut a).await.unwrap().is_empty());
    let rls: Vec<(String, bool)> = client
        .query(
            "SELECT c.relname::text, c.relrowsecurity FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'ferry' AND c.relkind = 'r' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let names: Vec<&str> = rls.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "alerts",
            "etl_rejects",
            "etl_runs",
            "onedrive_ingest",
            "s3_object_meta",
            "schema_migrations",
            "sync_cursors",
            "sync_requests"
        ]
    );
    assert!(rls.iter().all(|(_, on)| *on), "RLS on every table: {rls:?}");

    // A changed applied migration is refused; a failing one leaves nothing behind.
    let mut changed = MIGRATIONS.to_vec();
    changed[0].sql = "SELECT 1";
    let err = migrate_with(&mut a, &changed).await.unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    let mut failing = MIGRATIONS.to_vec();
    failing.push(Migration {
        version: all.len() as u32 + 1,
        name: "broken",
        sql: "CREATE TABLE ferry.half_done (x int); SELECT no_such_function();",
    });
    let err = migrate_with(&mut a, &failing).await.unwrap_err();
    assert!(err.to_string().contains("(broken)"), "{err}");
    let half: Option<String> = client
        .query_one("SELECT to_regclass('ferry.half_done')::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(half, None, "the failed migration's table is rolled back");

    // Stop, then start again: same port, data kept.
    drop((client, a, b));
    assert!(db.cluster.stop().await.unwrap());
    assert_eq!(db.cluster.status().await.unwrap(), ClusterStatus::Stopped);
    assert!(!db.cluster.stop().await.unwrap(), "already stopped");
    let port = db
        .cluster
        .start(ferry_pg::ClusterOptions {
            durable: false,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(port, db.port);
    let client = db.client().await;
    let n: i64 = client
        .query_one("SELECT count(*) FROM ferry.schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, MIGRATIONS.len() as i64);
}

#[tokio::test]
async fn a_password_file_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let db = ferry_testkit::pg::start().await;
    let file = db.cluster.password_file();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = db.cluster.config(db.port).unwrap_err();
    assert!(err.to_string().contains("chmod 600"), "{err}");
}
