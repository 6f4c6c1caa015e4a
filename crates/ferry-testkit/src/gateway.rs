//! `ferry serve s3` on a random loopback port over a temporary folder.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::{Service, wait_until};

const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings for a gateway to start.
#[derive(Debug)]
pub struct GatewayBuilder {
    bin: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    root: Option<PathBuf>,
    /// Serve a OneDrive folder through this Graph emulator instead of a local folder.
    onedrive: Option<ferry_graph::GraphConfig>,
}

/// A running gateway and the folder it serves.
#[derive(Debug)]
pub struct Gateway {
    pub service: Service,
    /// `http://127.0.0.1:PORT` (or https).
    pub endpoint: String,
    pub addr: String,
    pub root: PathBuf,
    pub access_key: String,
    pub secret_key: String,
    /// How it was started, for a restart.
    builder: GatewayBuilder,
    // Dropped after the service, so the process never outlives its folder.
    dir: tempfile::TempDir,
}

const ACCESS_KEY: &str = "ferry-test";
const SECRET_KEY: &str = "ferry-test-secret";

impl GatewayBuilder {
    /// A gateway run from the `ferry` binary at `bin` (tests pass `env!("CARGO_BIN_EXE_ferry")`).
    pub fn new(bin: impl Into<PathBuf>) -> Self {
        Self {
            bin: bin.into(),
            args: Vec::new(),
            env: Vec::new(),
            root: None,
            onedrive: None,
        }
    }

    /// Serve `/DynamicCapital/ai-training` of the emulator's default user's drive (as the
    /// emulator's confidential app) instead of a folder.
    pub fn onedrive(self, emu: &ferry_graph_emulator::Emulator) -> Self {
        self.onedrive_as(crate::graph::app_config(emu))
    }

    /// Serve `/DynamicCapital/ai-training` of the drive `graph` selects, signed in as it says
    /// (a client secret, or a delegated sign-in's token cache).
    pub fn onedrive_as(mut self, graph: ferry_graph::GraphConfig) -> Self {
        self.onedrive = Some(graph);
        self
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn env(mut self, name: &str, value: impl Into<String>) -> Self {
        self.env.push((name.to_owned(), value.into()));
        self
    }

    /// Serve this folder instead of a fresh temporary one.
    pub fn root(mut self, root: &Path) -> Self {
        self.root = Some(root.to_owned());
        self
    }

    pub fn start(self) -> Gateway {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = self.root.clone().unwrap_or_else(|| dir.path().join("root"));
        let mut gateway = Gateway {
            service: Service::spawn(
                "ferry serve s3",
                self.command(dir.path(), &root, "127.0.0.1:0"),
                &dir.path().join("ferry.log"),
            ),
            endpoint: String::new(),
            addr: String::new(),
            root,
            access_key: ACCESS_KEY.to_owned(),
            secret_key: SECRET_KEY.to_owned(),
            builder: self,
            dir,
        };
        gateway.endpoint = wait_for_endpoint(&mut gateway.service);
        gateway.addr = gateway
            .endpoint
            .split("://")
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        gateway
    }

    /// The `ferry serve s3` command, with its state under `dir`.
    fn command(&self, dir: &Path, root: &Path, addr: &str) -> Command {
        let mut command = Command::new(&self.bin);
        command.args(["serve", "s3", "--addr", addr]);
        let mut graph_env: Vec<(&str, String)> = Vec::new();
        match &self.onedrive {
            Some(graph) => {
                command.arg("--onedrive");
                graph_env = vec![
                    ("FERRY_STATE_DIR", dir.join("state").display().to_string()),
                    ("FERRY_GRAPH_AUTHORITY", graph.authority.clone()),
                    ("FERRY_GRAPH_URL", graph.graph_url.clone()),
                    ("FERRY_GRAPH_TENANT", graph.tenant.clone()),
                    ("FERRY_GRAPH_CLIENT_ID", graph.client_id.clone()),
                    ("FERRY_GRAPH_DRIVE", graph.drive.setting()),
                ];
                if let ferry_graph::Credential::Secret(s) = &graph.credential {
                    graph_env.push(("FERRY_GRAPH_CLIENT_SECRET", s.expose().to_owned()));
                }
                if let Some(cache) = &graph.token_cache {
                    graph_env.push(("FERRY_GRAPH_TOKEN_CACHE", cache.display().to_string()));
                }
            }
            None => {
                command.arg("--root").arg(root);
            }
        }
        command
            .args(&self.args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("FERRY_LOG_FORMAT", "json")
            .env("FERRY_S3_ACCESS_KEY_ID", ACCESS_KEY)
            .env("FERRY_S3_SECRET_ACCESS_KEY", SECRET_KEY)
            .envs(graph_env)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.clone())));
        command
    }
}

/// Waits until a gateway process logs that it listens (JSON logs), and returns its endpoint.
pub fn wait_for_endpoint(service: &mut Service) -> String {
    wait_until("the gateway to listen", START_TIMEOUT, || {
        if !service.is_running() {
            panic!("the gateway exited during start:\n{}", service.log());
        }
        listening_endpoint(&service.log())
    })
}

/// The endpoint from the gateway's "listening" log line.
fn listening_endpoint(log: &str) -> Option<String> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find_map(|v| v.get("endpoint")?.as_str().map(str::to_owned))
}

impl Gateway {
    /// Starts a gateway with default settings.
    pub fn start(bin: impl Into<PathBuf>) -> Self {
        GatewayBuilder::new(bin).start()
    }

    /// Kills the gateway (SIGKILL, as a crash or an OOM kill would) and starts it again on the
    /// same address, folder and state.
    pub fn restart(&mut self) {
        self.service.signal(9);
        self.service.wait(START_TIMEOUT);
        let command = self
            .builder
            .command(self.dir.path(), &self.root, &self.addr);
        let log = self.dir.path().join("ferry-restarted.log");
        self.service = Service::spawn("ferry serve s3", command, &log);
        wait_for_endpoint(&mut self.service);
    }

    /// A plain-HTTP GET of `path` without credentials: `(status, body)`.
    pub fn get_unsigned(&self, path: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(&self.addr).expect("connect to gateway");
        stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .expect("send request");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read response");
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }
}
