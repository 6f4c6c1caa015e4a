//! `ferry db`: the database ferry writes to. A configured one (`DATABASE_URL`, `PG*`), or
//! else the managed local cluster under the state dir, which these commands start and stop.

use anyhow::Context as _;
use clap::{Args, Subcommand};
use ferry_pg::{Cluster, ClusterOptions, ClusterStatus, Settings};
use serde_json::json;

use crate::config::state_dir;

#[derive(Debug, Args)]
pub struct DbArgs {
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: DbCommand,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create (first time) and start the managed cluster; prints its URL.
    Start,
    /// Stop the managed cluster.
    Stop,
    /// Is the managed cluster running, and where.
    Status,
    /// The managed cluster's URL (the password is in the file `status` shows).
    Url,
    /// Apply ferry's migrations to the database (configured, or the managed cluster).
    Migrate,
    /// Run psql against the database, password passed in the environment.
    Psql {
        /// Arguments for psql.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn cluster() -> anyhow::Result<Cluster> {
    Ok(Cluster::new(&state_dir()?))
}

/// The database to use: the configured one, else the managed cluster (started if needed).
pub async fn settings() -> anyhow::Result<Settings> {
    if let Some(settings) = Settings::from_env()? {
        return Ok(settings);
    }
    let cluster = cluster()?;
    let port = cluster.start(ClusterOptions::default()).await?;
    Ok(Settings::from_config(cluster.config(port)?))
}

/// Connects to the database and brings its schema up to date.
pub async fn connect_migrated() -> anyhow::Result<tokio_postgres::Client> {
    let settings = settings().await?;
    let mut client = settings
        .connect()
        .await
        .context("cannot connect to the database")?;
    ferry_pg::migrate(&mut client).await?;
    Ok(client)
}

pub async fn run(args: DbArgs) -> anyhow::Result<()> {
    let cluster = cluster()?;
    match args.command {
        DbCommand::Start => {
            if Settings::from_env()?.is_some() {
                eprintln!(
                    "ferry: note: DATABASE_URL / PG* is set, so ferry uses that database, not this cluster"
                );
            }
            let port = cluster.start(ClusterOptions::default()).await?;
            print_running(&cluster, port, args.json);
        }
        DbCommand::Stop => {
            let stopped = cluster.stop().await?;
            if args.json {
                println!("{}", json!({"stopped": stopped}));
            } else if stopped {
                println!("stopped");
            } else {
                println!("not running");
            }
        }
        DbCommand::Status => match cluster.status().await? {
            ClusterStatus::Running { port } => print_running(&cluster, port, args.json),
            other => {
                let state = if other == ClusterStatus::Absent {
                    "absent"
                } else {
                    "stopped"
                };
                if args.json {
                    println!("{}", json!({"status": state, "data": cluster.data_dir()}));
                } else {
                    println!("{state} ({})", cluster.data_dir().display());
                }
                // Like pg_ctl status: 3 when not running.
                std::process::exit(3);
            }
        },
        DbCommand::Url => match cluster.status().await? {
            ClusterStatus::Running { port } => println!("{}", cluster.url(port)),
            _ => anyhow::bail!("the managed cluster is not running; run `ferry db start`"),
        },
        DbCommand::Migrate => {
            let mut client = settings()
                .await?
                .connect()
                .await
                .context("cannot connect to the database")?;
            let applied = ferry_pg::migrate(&mut client).await?;
            if args.json {
                println!("{}", json!({"applied": applied}));
            } else if applied.is_empty() {
                println!("up to date");
            } else {
                println!("applied {applied:?}");
            }
        }
        DbCommand::Psql { args: psql_args } => psql(psql_args).await?,
    }
    Ok(())
}

fn print_running(cluster: &Cluster, port: u16, json: bool) {
    if json {
        println!(
            "{}",
            json!({
                "status": "running",
                "url": cluster.url(port),
                "port": port,
                "password_file": cluster.password_file(),
                "data": cluster.data_dir(),
                "log": cluster.log_file(),
            })
        );
    } else {
        println!("running: {}", cluster.url(port));
        println!("password file: {}", cluster.password_file().display());
        println!("data: {}", cluster.data_dir().display());
    }
}

async fn psql(args: Vec<String>) -> anyhow::Result<()> {
    let settings = settings().await?;
    let c = &settings.config;
    let mut cmd = tokio::process::Command::new("psql");
    if let Some(tokio_postgres::config::Host::Tcp(host)) = c.get_hosts().first() {
        cmd.env("PGHOST", host);
    }
    if let Some(port) = c.get_ports().first() {
        cmd.env("PGPORT", port.to_string());
    }
    if let Some(user) = c.get_user() {
        cmd.env("PGUSER", user);
    }
    if let Some(db) = c.get_dbname() {
        cmd.env("PGDATABASE", db);
    }
    if let Some(password) = c.get_password() {
        cmd.env("PGPASSWORD", String::from_utf8_lossy(password).as_ref());
    }
    let status = cmd
        .args(args)
        .status()
        .await
        .context("cannot run psql (Debian: apt-get install postgresql-client)")?;
    std::process::exit(status.code().unwrap_or(1));
}
