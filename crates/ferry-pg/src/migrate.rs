//! Versioned migrations, embedded in the binary and applied in order, all pending ones in
//! one transaction under an advisory lock, so concurrent `ferry db migrate` runs (or
//! several workers starting at once) apply each migration exactly once. Each applied
//! migration is recorded with a checksum; an applied migration whose text changed is an
//! error, never silently skipped. Nothing here needs superuser rights (Supabase's
//! `postgres` role is not one).

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, oldest first. Append only.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "operational_tables",
        sql: include_str!("../migrations/0001_operational_tables.sql"),
    },
    Migration {
        version: 2,
        name: "sync_queue",
        sql: include_str!("../migrations/0002_sync_queue.sql"),
    },
    Migration {
        version: 3,
        name: "alerts",
        sql: include_str!("../migrations/0003_alerts.sql"),
    },
    Migration {
        version: 4,
        name: "source_state",
        sql: include_str!("../migrations/0004_source_state.sql"),
    },
    Migration {
        version: 5,
        name: "replaced_versions",
        sql: include_str!("../migrations/0005_replaced_versions.sql"),
    },
    Migration {
        version: 6,
        name: "s3_object_meta",
        sql: include_str!("../migrations/0006_s3_object_meta.sql"),
    },
];

/// `pg_advisory_xact_lock` key for migrations: "ferrymig" as an integer.
const LOCK_KEY: i64 = 0x6665_7272_796d_6967;

fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

/// Applies what is pending; returns the versions applied now.
pub async fn migrate(client: &mut tokio_postgres::Client) -> Result<Vec<u32>> {
    migrate_with(client, MIGRATIONS).await
}

pub async fn migrate_with(
    client: &mut tokio_postgres::Client,
    migrations: &[Migration],
) -> Result<Vec<u32>> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await?;
    tx.batch_execute(
        "SET LOCAL client_min_messages = warning;
         CREATE SCHEMA IF NOT EXISTS ferry;
         CREATE TABLE IF NOT EXISTS ferry.schema_migrations (
             version    integer PRIMARY KEY,
             name       text NOT NULL,
             checksum   text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         );
         ALTER TABLE ferry.schema_migrations ENABLE ROW LEVEL SECURITY;",
    )
    .await?;
    let rows = tx
        .query("SELECT version, checksum FROM ferry.schema_migrations", &[])
        .await?;
    let applied: std::collections::HashMap<i32, String> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    if let Some(newest) = applied.keys().max()
        && *newest as u32 > migrations.last().map_or(0, |m| m.version)
    {
        return Err(Error::Config(format!(
            "the database has migration {newest}, newer than this ferry knows; upgrade ferry"
        )));
    }
    let mut done = Vec::new();
    for m in migrations {
        let sum = checksum(m.sql);
        match applied.get(&(m.version as i32)) {
            Some(existing) if *existing == sum => continue,
            Some(_) => {
                return Err(Error::Migration {
                    version: m.version,
                    name: m.name,
                    message: "already applied with different text; migrations are append-only"
                        .into(),
                });
            }
            None => {}
        }
        tx.batch_execute(m.sql)
            .await
            .map_err(|e| Error::Migration {
                version: m.version,
                name: m.name,
                message: Error::Db(e).to_string(),
            })?;
        tx.execute(
            "INSERT INTO ferry.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            &[&(m.version as i32), &m.name, &sum],
        )
        .await?;
        done.push(m.version);
    }
    tx.commit().await?;
    if !done.is_empty() {
        tracing::info!(applied = ?done, "database migrated");
    }
    Ok(done)
}
