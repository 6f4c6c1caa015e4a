//! Command-line interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::S3Settings;

#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version,
    about = "Training data between OneDrive or a folder, S3 clients and Postgres"
)]
pub struct Cli {
    /// Configuration file (TOML); settings from flags and FERRY_* variables win over it.
    #[arg(long, global = true, env = "FERRY_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve an API over the drive.
    #[command(subcommand)]
    Serve(Serve),
    /// Start the embedded default: the S3 gateway over a local folder with sample data.
    Quickstart(QuickstartArgs),
    /// Work with a OneDrive through Microsoft Graph.
    Onedrive(crate::onedrive::OnedriveArgs),
    /// Run the local Microsoft identity + Graph (OneDrive) emulator.
    Emulator(crate::emulator::EmulatorArgs),
    /// The database: the managed local cluster, migrations, psql.
    Db(crate::db::DbArgs),
    /// Load new and changed dataset files into Postgres (one run).
    Sync(crate::sync::SyncArgs),
    /// Create the drive layout (datasets/, model-checkpoints/, etl-staging/, reports/, each
    /// with a README) in a local or OneDrive folder; what is there already is kept.
    Init(crate::sync::RootArgs),
}

#[derive(Debug, Subcommand)]
pub enum Serve {
    /// S3 API over a local folder, or a OneDrive folder with --onedrive: buckets are its
    /// top-level folders.
    S3(S3Args),
}

/// Settings of `ferry serve s3`. Secrets are never flags: the secret access key comes from
/// FERRY_S3_SECRET_ACCESS_KEY, FERRY_S3_SECRET_ACCESS_KEY_FILE or the credentials file.
#[derive(Debug, Args, Default)]
pub struct S3Args {
    /// Folder to serve; each top-level folder is a bucket.
    #[arg(long, env = "FERRY_S3_ROOT", conflicts_with = "onedrive")]
    pub root: Option<PathBuf>,
    /// Serve a OneDrive folder through Microsoft Graph instead (the drive and credentials
    /// from the FERRY_GRAPH_* settings); its child folders are the buckets.
    #[arg(long, env = "FERRY_S3_ONEDRIVE")]
    pub onedrive: bool,
    /// The drive folder served with --onedrive [default: /DynamicCapital/ai-training].
    #[arg(long, env = "FERRY_S3_DRIVE_ROOT")]
    pub drive_root: Option<String>,
    /// With --onedrive: how long listings may trail changes made in OneDrive itself
    /// (writes through the gateway show at once) [default: 5s].
    #[arg(long, env = "FERRY_S3_FRESHNESS", value_parser = humantime::parse_duration)]
    pub freshness: Option<std::time::Duration>,
    /// With --onedrive: where S3's own metadata (MD5 ETags, content types, user metadata)
    /// lives: an embedded file in the state dir, or Postgres (DATABASE_URL / PG*, else the
    /// managed cluster) so that several gateway replicas agree [default: embedded].
    #[arg(long, env = "FERRY_S3_METADATA", value_enum)]
    pub metadata: Option<crate::config::Metadata>,
    /// Address to listen on [default: 127.0.0.1:9000].
    #[arg(long, env = "FERRY_S3_ADDR")]
    pub addr: Option<String>,
    /// Region clients sign for [default: us-east-1].
    #[arg(long, env = "FERRY_S3_REGION")]
    pub region: Option<String>,
    /// Also accept virtual-host style requests for BUCKET.DOMAIN.
    #[arg(long, env = "FERRY_S3_DOMAIN")]
    pub domain: Option<String>,
    /// Access key id (its secret comes from FERRY_S3_SECRET_ACCESS_KEY or its _FILE form).
    #[arg(long, env = "FERRY_S3_ACCESS_KEY_ID")]
    pub access_key_id: Option<String>,
    /// File of ACCESS_KEY_ID:SECRET lines, mode 0600; re-read on SIGHUP.
    #[arg(long, env = "FERRY_S3_CREDENTIALS_FILE")]
    pub credentials_file: Option<PathBuf>,
    /// TLS certificate chain (PEM); serves HTTPS with --tls-key.
    #[arg(long, env = "FERRY_S3_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "FERRY_S3_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Where multipart parts wait [default: ROOT/.ferry/uploads; with --onedrive,
    /// STATE_DIR/s3-onedrive/uploads].
    #[arg(long, env = "FERRY_S3_UPLOADS_DIR")]
    pub uploads_dir: Option<PathBuf>,
    /// Remove multipart uploads left unfinished this long [default: 24h].
    #[arg(long, env = "FERRY_S3_UPLOAD_MAX_AGE", value_parser = humantime::parse_duration)]
    pub upload_max_age: Option<std::time::Duration>,
    /// Fsync every object and its folder before answering [default: true]. `false` trades
    /// the last seconds of acknowledged writes in a crash for speed, like most file servers.
    #[arg(long, env = "FERRY_S3_FSYNC", value_name = "BOOL")]
    pub fsync: Option<bool>,
    /// How long requests in flight may finish after SIGTERM [default: 30s].
    #[arg(long, env = "FERRY_S3_SHUTDOWN_GRACE", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Option<std::time::Duration>,
}

#[derive(Debug, Args)]
pub struct QuickstartArgs {
    #[command(flatten)]
    pub s3: S3Args,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let file = crate::config::File::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve(Serve::S3(args)) => {
            let settings = S3Settings::resolve(args, &file)?;
            crate::serve::run(settings, &file, |_| {}).await
        }
        Command::Quickstart(args) => crate::quickstart::run(args.s3, &file).await,
        Command::Onedrive(args) => crate::onedrive::run(args, &file).await,
        Command::Emulator(args) => crate::emulator::run(args).await,
        Command::Db(args) => crate::db::run(args).await,
        Command::Sync(args) => crate::sync::run(args, &file).await,
        Command::Init(args) => crate::init::run(args, &file).await,
    }
}
