//! `ferry emulator`: the local Microsoft identity + Graph (OneDrive) emulator, for tests and
//! demos; `ferry emulator approve CODE` signs a device-code login in.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use ferry_graph_emulator::{EmulatorConfig, serve};
use tokio::net::TcpListener;

#[derive(Debug, Args)]
pub struct EmulatorArgs {
    /// Folder holding the emulated drives' files [default: FERRY_EMULATOR_ROOT or
    /// ./ferry-emulator-data].
    #[arg(long, env = "FERRY_EMULATOR_ROOT")]
    pub root: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "FERRY_EMULATOR_ADDR", default_value = "127.0.0.1:8800")]
    pub addr: String,
    /// The emulator's own TOML file (apps, users, drives, faults); see its README.
    #[arg(long, env = "FERRY_EMULATOR_CONFIG")]
    pub emulator_config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<EmulatorCommand>,
}

#[derive(Debug, Subcommand)]
pub enum EmulatorCommand {
    /// Approve a pending device-code sign-in, as the person would in a browser.
    Approve {
        /// The user code shown by `ferry onedrive login`.
        code: String,
        /// The emulator's URL.
        #[arg(
            long,
            env = "FERRY_GRAPH_AUTHORITY",
            default_value = "http://127.0.0.1:8800"
        )]
        url: String,
    },
}

pub async fn run(args: EmulatorArgs) -> anyhow::Result<()> {
    if let Some(EmulatorCommand::Approve { code, url }) = args.command {
        return approve(&url, &code).await;
    }
    let mut config = match &args.emulator_config {
        Some(path) => EmulatorConfig::from_file(path)
            .with_context(|| format!("cannot load {}", path.display()))?,
        None => EmulatorConfig::from_env().context("invalid FERRY_EMULATOR_* settings")?,
    };
    if let Some(root) = args.root {
        config.root = root;
    }
    let listener = TcpListener::bind(&args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let url = format!("http://{}", listener.local_addr()?);
    let app = config.apps.first();
    tracing::info!(endpoint = %url, root = %config.root.display(), "graph emulator listening");
    println!(
        "\nferry's Microsoft identity + Graph emulator at {url}\n\
         drives kept in {root}\n\n\
         Point ferry at it:\n\n\
         export FERRY_GRAPH_AUTHORITY={url}\n\
         export FERRY_GRAPH_URL={url}/v1.0\n\
         export FERRY_GRAPH_TENANT={tenant}\n\
         export FERRY_GRAPH_CLIENT_ID={client}\n\
         ferry onedrive login     # then: ferry emulator approve CODE\n",
        root = config.root.display(),
        tenant = app.map_or("common", |a| a.tenant.as_str()),
        client = app.map_or("", |a| a.client_id.as_str()),
    );
    serve(listener, config, crate::serve::shutdown_signal()?).await?;
    Ok(())
}

async fn approve(url: &str, code: &str) -> anyhow::Result<()> {
    let endpoint = format!("{}/_emulator/device/approve", url.trim_end_matches('/'));
    let response = raw_post_json(&endpoint, &format!("{{\"user_code\":{code:?}}}")).await?;
    match response {
        200 => {
            println!("approved {code}");
            Ok(())
        }
        404 => anyhow::bail!("no pending sign-in has the code {code}"),
        409 => anyhow::bail!("the sign-in with code {code} was already approved or denied"),
        status => anyhow::bail!("the emulator at {url} answered {status}"),
    }
}

/// A tiny HTTP/1.1 POST over a plain TCP connection: the emulator is always local and plain.
async fn raw_post_json(url: &str, body: &str) -> anyhow::Result<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url
        .strip_prefix("http://")
        .context("the emulator URL must start with http://")?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut stream = tokio::net::TcpStream::connect(host)
        .await
        .with_context(|| format!("cannot reach the emulator at {host}"))?;
    let request = format!(
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("the emulator sent no HTTP status")
}
