//! Postgres plumbing for ferry: where the database is ([`Settings`]), its schema
//! ([`migrate()`]), and the managed local cluster used when none is configured
//! ([`Cluster`]).

pub mod cluster;
mod connect;
mod error;
pub mod migrate;

pub use cluster::{Cluster, Options as ClusterOptions, Status as ClusterStatus};
pub use connect::{Settings, Verify, connect_config};
pub use error::{Error, Result};
pub use migrate::{MIGRATIONS, Migration, migrate};
