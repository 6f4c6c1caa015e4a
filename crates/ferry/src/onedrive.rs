//! `ferry onedrive`: sign in and work with a OneDrive (or the emulator) from the shell.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ferry_graph::model::DriveItem;
use ferry_graph::{
    Conflict, Credential, DeltaTree, DriveSelector, GraphClient, GraphConfig, Secret,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::config::{File, secret_from_env, state_dir};

#[derive(Debug, Args)]
pub struct OnedriveArgs {
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: OnedriveCommand,
}

#[derive(Debug, Subcommand)]
pub enum OnedriveCommand {
    /// Sign in with a device code (or `--browser`); the refresh token is kept in the token
    /// cache (0600).
    Login {
        /// Sign in through a browser on this machine (authorization code with PKCE).
        #[arg(long)]
        browser: bool,
    },
    /// Forget this application's tokens.
    Logout,
    /// Who is signed in, and which drive ferry uses.
    Whoami,
    /// List a folder (the drive's root by default).
    Ls { path: Option<String> },
    /// Download a file; its quickXorHash is checked before it is kept.
    Get {
        remote: String,
        local: Option<PathBuf>,
    },
    /// Upload a file (resumable above 4 MiB).
    Put {
        local: PathBuf,
        remote: String,
        /// Fail instead of replacing an existing file.
        #[arg(long)]
        no_replace: bool,
    },
    /// Create a folder and any missing parents.
    Mkdir { path: String },
    /// Delete a file or folder.
    Rm { path: String },
    /// Move or rename; a destination ending in `/` is a folder to move into.
    Mv { from: String, to: String },
    /// What changed since a cursor (everything without one); prints the next cursor.
    Delta {
        #[arg(long)]
        cursor: Option<String>,
    },
    /// The drive's quota.
    Quota,
}

/// Graph settings: `FERRY_GRAPH_*` variables over the `[graph]` table of the config file.
pub fn graph_config(file: &File) -> anyhow::Result<GraphConfig> {
    let f = &file.graph;
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let client_id = var("FERRY_GRAPH_CLIENT_ID")
        .or_else(|| f.client_id.clone())
        .context(
            "set FERRY_GRAPH_CLIENT_ID (the Azure AD application's client id) or [graph] client_id",
        )?;
    let tenant = var("FERRY_GRAPH_TENANT")
        .or_else(|| f.tenant.clone())
        .unwrap_or_else(|| "common".into());
    let mut config = GraphConfig::new(tenant, client_id);
    if let Some(authority) = var("FERRY_GRAPH_AUTHORITY").or_else(|| f.authority.clone()) {
        config.authority = authority;
    }
    if let Some(url) = var("FERRY_GRAPH_URL").or_else(|| f.graph_url.clone()) {
        config.graph_url = url;
    }
    if let Some(drive) = var("FERRY_GRAPH_DRIVE").or_else(|| f.drive.clone()) {
        config.drive = DriveSelector::parse(&drive);
    }
    let cert = var("FERRY_GRAPH_CERTIFICATE_FILE").or_else(|| f.certificate_file.clone());
    config.credential = if let Some(secret) = secret_from_env("FERRY_GRAPH_CLIENT_SECRET")? {
        Credential::Secret(Secret::new(secret))
    } else if let Some(cert) = cert {
        let key_path = var("FERRY_GRAPH_CERTIFICATE_KEY_FILE")
            .or_else(|| f.certificate_key_file.clone())
            .context(
                "a certificate needs FERRY_GRAPH_CERTIFICATE_KEY_FILE (its PKCS#8 key, mode 0600)",
            )?;
        Credential::Certificate {
            cert_pem: std::fs::read_to_string(&cert)
                .with_context(|| format!("cannot read certificate {cert}"))?,
            key_pem: Secret::new(ferry_private::read(Path::new(&key_path))?),
        }
    } else {
        Credential::None
    };
    config.token_cache = Some(
        match var("FERRY_GRAPH_TOKEN_CACHE").or_else(|| f.token_cache.clone()) {
            Some(path) => path.into(),
            None => state_dir()?.join("graph-token-cache.json"),
        },
    );
    // Interrupted large uploads resume when run again (the records hold pre-authenticated
    // upload URLs: 0600, like the token cache).
    config.upload_sessions = Some(state_dir()?.join("upload-sessions"));
    Ok(config)
}

/// A client that draws a progress bar of `total` bytes on a terminal (and nothing otherwise);
/// the bar is finished when dropped.
fn with_bar(graph: &GraphClient, total: u64, json: bool) -> (GraphClient, Option<ProgressBar>) {
    if json || !std::io::stderr().is_terminal() {
        return (graph.clone(), None);
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{bytes:>10}/{total_bytes:10} {wide_bar} {binary_bytes_per_sec:>12} {eta:>4}",
    ) {
        bar.set_style(style);
    }
    let tick = bar.clone();
    let graph = graph.with_progress(Arc::new(move |n| tick.inc(n)));
    (graph, Some(bar))
}

fn item_json(item: &DriveItem) -> serde_json::Value {
    json!({
        "id": item.id, "name": item.name, "size": item.size,
        "folder": item.is_folder(), "deleted": item.is_deleted(),
        "lastModifiedDateTime": item.last_modified_date_time,
        "quickXorHash": item.quick_xor_hash(), "eTag": item.e_tag,
    })
}

fn print(json_mode: bool, value: serde_json::Value, text: impl FnOnce() -> String) {
    if json_mode {
        println!("{value}");
    } else {
        println!("{}", text());
    }
}

/// A delta as JSON, written item by item: a full enumeration can hold 100,000s of items,
/// and building the whole document first would hold each of them twice more.
fn print_delta_json(delta: &ferry_graph::Delta) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    out.write_all(b"{\"items\":[")?;
    for (i, item) in delta.items.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        serde_json::to_writer(&mut out, &item_json(item))?;
    }
    write!(
        out,
        "],\"deltaLink\":{},\"resynced\":{}}}",
        serde_json::to_string(&delta.delta_link)?,
        delta.resynced
    )?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// `a/b/c` → (`a/b`, `c`).
fn split_parent(path: &str) -> (&str, &str) {
    path.trim_matches('/')
        .rsplit_once('/')
        .unwrap_or(("", path.trim_matches('/')))
}

pub async fn run(args: OnedriveArgs, file: &File) -> anyhow::Result<()> {
    let graph = GraphClient::new(&graph_config(file)?)?;
    let js = args.json;
    match args.command {
        OnedriveCommand::Login { browser } => {
            let account = if browser {
                graph
                    .auth()
                    .browser_login(|url| {
                        eprintln!("Sign in at:\n{url}");
                        // Best effort: a desktop opens it; elsewhere the URL above is enough.
                        let _ = std::process::Command::new("xdg-open")
                            .arg(url)
                            .stdout(std::process::Stdio::null())
                            .stderr(std::process::Stdio::null())
                            .spawn();
                    })
                    .await?
            } else {
                let code = graph.auth().start_device_login().await?;
                eprintln!("{}", code.message);
                eprintln!("code: {}", code.user_code);
                graph.auth().complete_device_login(&code).await?
            };
            print(
                js,
                json!({"username": account.username, "homeAccountId": account.home_account_id}),
                || format!("signed in as {}", account.username),
            );
        }
        OnedriveCommand::Logout => {
            if let Some(cache) = graph.auth().cache() {
                cache.clear()?;
            }
            print(js, json!({"signedOut": true}), || "signed out".into());
        }
        OnedriveCommand::Whoami => {
            let account = match graph.auth().cache() {
                Some(cache) => cache.account()?,
                None => None,
            };
            let drive = graph.drive().await?;
            let user = account.as_ref().map(|a| a.username.clone());
            print(
                js,
                json!({"username": user, "driveId": drive.id, "driveType": drive.drive_type}),
                || {
                    format!(
                        "{} on drive {} ({})",
                        user.clone()
                            .unwrap_or_else(|| "application (no user)".into()),
                        drive.id,
                        drive.drive_type.clone().unwrap_or_default()
                    )
                },
            );
        }
        OnedriveCommand::Ls { path } => {
            let item = graph.item_by_path(path.as_deref().unwrap_or("")).await?;
            let items = if item.is_folder() {
                graph.children(&item.id).await?
            } else {
                vec![item]
            };
            print(
                js,
                json!(items.iter().map(item_json).collect::<Vec<_>>()),
                || {
                    items
                        .iter()
                        .map(|i| {
                            let kind = if i.is_folder() { "d" } else { "-" };
                            let when = i.last_modified_date_time.clone().unwrap_or_default();
                            format!("{kind} {:>12} {when:<20} {}", i.size.unwrap_or(0), i.name)
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                },
            );
        }
        OnedriveCommand::Get { remote, local } => {
            let item = graph.item_by_path(&remote).await?;
            if item.is_folder() {
                bail!("{remote} is a folder; `ferry onedrive get` downloads files");
            }
            let dest = local.unwrap_or_else(|| PathBuf::from(&item.name));
            let (graph, bar) = with_bar(&graph, item.size.unwrap_or(0), js);
            let bytes = graph.download_file(&item, &dest).await?;
            bar.inspect(ProgressBar::finish_and_clear);
            print(js, json!({"path": dest, "bytes": bytes}), || {
                format!(
                    "{remote} -> {} ({bytes} bytes, hash verified)",
                    dest.display()
                )
            });
        }
        OnedriveCommand::Put {
            local,
            remote,
            no_replace,
        } => {
            let conflict = if no_replace {
                Conflict::Fail
            } else {
                Conflict::Replace
            };
            let item = graph.upload_file(&local, &remote, conflict).await?;
            print(js, item_json(&item), || {
                format!(
                    "{} -> {remote} ({} bytes)",
                    local.display(),
                    item.size.unwrap_or(0)
                )
            });
        }
        OnedriveCommand::Mkdir { path } => {
            let item = graph.create_folders(&path).await?;
            print(js, item_json(&item), || format!("{path}/"));
        }
        OnedriveCommand::Rm { path } => {
            let item = graph.item_by_path(&path).await?;
            graph.delete(&item.id).await?;
            print(js, json!({"deleted": path}), || format!("deleted {path}"));
        }
        OnedriveCommand::Mv { from, to } => {
            let item = graph.item_by_path(&from).await?;
            let (parent_path, name) = if to.ends_with('/') {
                (to.trim_matches('/'), item.name.as_str())
            } else {
                split_parent(&to)
            };
            let parent = graph.create_folders(parent_path).await;
            let parent_id = match parent {
                Ok(p) => p.id,
                // The root is not created; it is looked up.
                Err(_) if parent_path.is_empty() => graph.item_by_path("").await?.id,
                Err(e) => return Err(e.into()),
            };
            let moved = graph
                .move_item(&item.id, Some(&parent_id), Some(name))
                .await?;
            print(js, item_json(&moved), || format!("{from} -> {to}"));
        }
        OnedriveCommand::Delta { cursor } => {
            let delta = graph.delta(cursor.as_deref()).await?;
            if js {
                print_delta_json(&delta)?;
            } else {
                let mut tree = DeltaTree::new();
                tree.apply(&delta.items);
                for item in &delta.items {
                    let what = if item.is_deleted() {
                        "deleted"
                    } else {
                        "changed"
                    };
                    let path = tree.path(&item.id).unwrap_or_else(|| item.name.clone());
                    println!("{what} {path}");
                }
                println!("next cursor: {}", delta.delta_link);
            }
        }
        OnedriveCommand::Quota => {
            let quota = graph.drive().await?.quota.unwrap_or_default();
            print(
                js,
                json!({"total": quota.total, "used": quota.used, "remaining": quota.remaining, "state": quota.state}),
                || {
                    format!(
                        "used {} of {} bytes ({} left, {})",
                        quota.used.unwrap_or(0),
                        quota.total.unwrap_or(0),
                        quota.remaining.unwrap_or(0),
                        quota.state.clone().unwrap_or_default()
                    )
                },
            );
        }
    }
    Ok(())
}
