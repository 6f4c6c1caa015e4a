//! `ferry sync`: one run of the sync engine from a source into the database.

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use ferry_etl::{LocalSource, Options, Report};

use crate::config::state_dir;

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Where the files come from.
    #[arg(long, value_enum, default_value = "local")]
    pub source: SourceKind,
    /// The folder holding `datasets/` (for `--source local`).
    #[arg(long, env = "FERRY_SYNC_ROOT")]
    pub root: Option<std::path::PathBuf>,
    /// Only this dataset.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Print the run's report as JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SourceKind {
    Local,
}

pub async fn run(args: SyncArgs) -> anyhow::Result<()> {
    let root = args
        .root
        .context("--root (or FERRY_SYNC_ROOT) names the folder holding datasets/")?;
    anyhow::ensure!(root.is_dir(), "{} is not a folder", root.display());
    let source = LocalSource::new(&root);
    let mut client = crate::db::connect_migrated().await?;
    let options = Options {
        dataset: args.dataset,
        manifest_dir: Some(state_dir()?.join("staging").join("manifests")),
        ..Options::default()
    };
    let report = ferry_etl::sync_local(&mut client, &source, &options).await?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_summary(&report);
    }
    if report.status == "failed" {
        anyhow::bail!("the sync failed: {} file(s) failed", report.files_failed);
    }
    Ok(())
}

/// One screen: the counts, then each file that did something.
fn print_summary(r: &Report) {
    println!(
        "run {} {}: {} file(s) seen, {} loaded, {} skipped, {} failed; {} row(s) loaded, {} rejected, {:.1} MB in {:.1} s",
        r.run_id,
        r.status,
        r.files_seen,
        r.files_loaded,
        r.files_skipped,
        r.files_failed,
        r.rows_loaded,
        r.rows_rejected,
        r.bytes as f64 / 1e6,
        r.duration_ms as f64 / 1000.0
    );
    for f in &r.files {
        let target = f.target_table.as_deref().unwrap_or("-");
        match &f.error {
            Some(e) => println!("  {:<8} {}  ({e})", f.status, f.path),
            None => println!(
                "  {:<8} {} -> {target}: {} row(s), {} rejected",
                f.status, f.path, f.rows_loaded, f.rows_rejected
            ),
        }
    }
}
