//! The managed local cluster: a Postgres that ferry creates, starts and stops itself when
//! no database is configured, so the first run needs nothing but the machine's PostgreSQL
//! binaries.
//!
//! Layout under `<state dir>/postgres/`:
//! - `data/` — the cluster (owned by the user Postgres runs as, 0700);
//! - `run/` — its Unix socket and `server.log` (same owner, 0700);
//! - `password` — the `ferry` role's password (0600, owned by the caller);
//! - `cluster.json` — port, server version and the user it runs as;
//! - `lock` — held while starting or stopping, so two commands do not race.
//!
//! Postgres refuses to run as root, so as root the cluster runs as `postgres` (Debian's
//! packages create it), else `nobody`; `FERRY_PG_USER` picks another. It listens on
//! 127.0.0.1 only, on a port picked at first start and kept while free, with
//! scram-sha-256 password authentication for the `ferry` role.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The role and database the managed cluster is created with.
pub const ROLE: &str = "ferry";
pub const DATABASE: &str = "ferry";

#[derive(Debug, Clone)]
pub struct Cluster {
    root: PathBuf,
}

/// What `status` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Never created.
    Absent,
    Stopped,
    Running {
        port: u16,
    },
}

/// Start-up settings. Durable by default; tests trade durability for speed.
#[derive(Debug, Clone)]
pub struct Options {
    pub durable: bool,
    /// More server settings, passed as `-c name=value` (e.g. to preload pg_cron).
    pub settings: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            durable: true,
            settings: Vec::new(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    port: u16,
    version: String,
    run_as: String,
}

/// The unprivileged user the server runs as when ferry runs as root.
#[derive(Debug, Clone)]
struct RunAs {
    name: String,
    uid: u32,
    gid: u32,
}

impl Cluster {
    /// The cluster kept under `state_dir` (in `state_dir/postgres`).
    pub fn new(state_dir: &Path) -> Self {
        Self {
            root: state_dir.join("postgres"),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    fn run_dir(&self) -> PathBuf {
        self.root.join("run")
    }

    fn saved_path(&self) -> PathBuf {
        self.root.join("cluster.json")
    }

    pub fn password_file(&self) -> PathBuf {
        self.root.join("password")
    }

    /// The server log, for when something went wrong.
    pub fn log_file(&self) -> PathBuf {
        self.run_dir().join("server.log")
    }

    fn load(&self) -> Option<Saved> {
        let text = std::fs::read(self.saved_path()).ok()?;
        serde_json::from_slice(&text).ok()
    }

    fn save(&self, saved: &Saved) -> Result<()> {
        let body = serde_json::to_vec_pretty(saved).map_err(std::io::Error::other);
        body.and_then(|b| std::fs::write(self.saved_path(), b))
            .map_err(Error::io("write", self.saved_path()))
    }

    /// The connection URL, without the password (it is in [`Cluster::password_file`]).
    pub fn url(&self, port: u16) -> String {
        format!("postgresql://{ROLE}@127.0.0.1:{port}/{DATABASE}")
    }

    /// Connection settings for the running cluster, password included.
    pub fn config(&self, port: u16) -> Result<tokio_postgres::Config> {
        let password = ferry_private::read(&self.password_file())?;
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(port)
            .user(ROLE)
            .dbname(DATABASE)
            .password(password.trim())
            .application_name("ferry")
            .connect_timeout(Duration::from_secs(10));
        Ok(config)
    }

    pub async fn status(&self) -> Result<Status> {
        let Some(saved) = self.load() else {
            return Ok(Status::Absent);
        };
        if !self.data_dir().join("PG_VERSION").exists() {
            return Ok(Status::Absent);
        }
        let tools = Tools::find()?;
        let run_as = run_as()?;
        let out = tools
            .command("pg_ctl", run_as.as_ref())
            .arg("status")
            .arg("-D")
            .arg(self.data_dir())
            .output()
            .await
            .map_err(Error::io("run", tools.path("pg_ctl")))?;
        Ok(match out.status.code() {
            Some(0) => Status::Running { port: saved.port },
            _ => Status::Stopped,
        })
    }

    /// Creates the cluster if needed and starts it if it is not running; returns its port.
    pub async fn start(&self, options: Options) -> Result<u16> {
        std::fs::create_dir_all(&self.root).map_err(Error::io("create", &self.root))?;
        let _lock = Lock::acquire(&self.root.join("lock")).await?;
        if let Status::Running { port } = self.status().await? {
            return Ok(port);
        }
        let tools = Tools::find()?;
        let run_as = run_as()?;
        if let Some(user) = &run_as {
            check_reachable(&self.root, user)?;
        }
        if !self.data_dir().join("PG_VERSION").exists() {
            self.init(&tools, run_as.as_ref()).await?;
        }
        let saved = self.load();
        let port = match saved.as_ref().map(|s| s.port) {
            Some(port) if port_is_free(port) => port,
            _ => free_port()?,
        };
        self.save(&Saved {
            port,
            version: tools.version.clone(),
            run_as: run_as
                .as_ref()
                .map_or_else(current_user, |u| u.name.clone()),
        })?;
        let mut server_options = format!(
            "-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='{}'",
            self.run_dir().display()
        );
        if !options.durable {
            server_options
                .push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        for (name, value) in &options.settings {
            server_options.push_str(&format!(" -c {name}={value}"));
        }
        let out = tools
            .command("pg_ctl", run_as.as_ref())
            .arg("start")
            .arg("--wait")
            .args(["--timeout", "120", "--silent"])
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_file())
            .arg("-o")
            .arg(server_options)
            .output()
            .await
            .map_err(Error::io("run", tools.path("pg_ctl")))?;
        if !out.status.success() {
            return Err(Error::Cluster(format!(
                "pg_ctl start failed: {}{}",
                String::from_utf8_lossy(&out.stderr).trim(),
                self.log_tail()
            )));
        }
        create_database(self.config(port)?).await?;
        tracing::info!(port, data = %self.data_dir().display(), "managed Postgres running");
        Ok(port)
    }

    /// Stops the cluster (fast shutdown: open transactions roll back). False if it was not
    /// running.
    pub async fn stop(&self) -> Result<bool> {
        if !self.root.exists() {
            return Ok(false);
        }
        let _lock = Lock::acquire(&self.root.join("lock")).await?;
        if !matches!(self.status().await?, Status::Running { .. }) {
            return Ok(false);
        }
        let tools = Tools::find()?;
        let out = tools
            .command("pg_ctl", run_as()?.as_ref())
            .arg("stop")
            .args(["--wait", "--timeout", "120", "--silent", "-m", "fast"])
            .arg("-D")
            .arg(self.data_dir())
            .output()
            .await
            .map_err(Error::io("run", tools.path("pg_ctl")))?;
        if !out.status.success() {
            return Err(Error::Cluster(format!(
                "pg_ctl stop failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(true)
    }

    /// Stops the server at once, without waiting for clients (for test clean-up, where
    /// there is no runtime to wait on). Errors are ignored: it may not be running.
    pub fn stop_now(&self) {
        let Ok(tools) = Tools::find() else { return };
        let Ok(run_as) = run_as() else { return };
        let mut cmd = std::process::Command::new(tools.path("pg_ctl"));
        if let Some(user) = &run_as {
            cmd.uid(user.uid).gid(user.gid).current_dir("/");
        }
        let _ = cmd
            .args(["stop", "--wait", "--silent", "-m", "immediate", "-D"])
            .arg(self.data_dir())
            .stderr(std::process::Stdio::null())
            .status();
    }

    async fn init(&self, tools: &Tools, run_as: Option<&RunAs>) -> Result<()> {
        for dir in [self.data_dir(), self.run_dir()] {
            std::fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(Error::io("chmod", &dir))?;
            if let Some(user) = run_as {
                std::os::unix::fs::chown(&dir, Some(user.uid), Some(user.gid))
                    .map_err(Error::io("chown", &dir))?;
            }
        }
        let password = random_password()?;
        ferry_private::write(&self.password_file(), password.as_bytes())
            .map_err(Error::io("write", self.password_file()))?;
        // initdb reads the password from a file only the server's user can read; it is
        // removed as soon as initdb is done.
        let pwfile = self.run_dir().join("initdb-password");
        ferry_private::write(&pwfile, password.as_bytes()).map_err(Error::io("write", &pwfile))?;
        if let Some(user) = run_as {
            std::os::unix::fs::chown(&pwfile, Some(user.uid), Some(user.gid))
                .map_err(Error::io("chown", &pwfile))?;
        }
        let out = tools
            .command("initdb", run_as)
            .arg("-D")
            .arg(self.data_dir())
            .args(["-U", ROLE, "-E", "UTF8", "--no-locale"])
            .args(["--auth-host=scram-sha-256", "--auth-local=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .await;
        let _ = std::fs::remove_file(&pwfile);
        let out = out.map_err(Error::io("run", tools.path("initdb")))?;
        if !out.status.success() {
            return Err(Error::Cluster(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_file()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(10)..].join("\n");
        if tail.is_empty() {
            String::new()
        } else {
            format!("\nserver log ({}):\n{tail}", self.log_file().display())
        }
    }
}

/// The role's own database, so `psql "$(ferry db url)"` lands somewhere useful.
async fn create_database(mut config: tokio_postgres::Config) -> Result<()> {
    config.dbname("postgres");
    let client = crate::connect::connect_config(&config).await?;
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&DATABASE])
        .await?
        .is_some();
    if !exists {
        client
            .batch_execute(&format!("CREATE DATABASE {DATABASE} OWNER {ROLE}"))
            .await?;
    }
    Ok(())
}

/// The PostgreSQL programs: `FERRY_PG_BINDIR`, else the newest
/// `/usr/lib/postgresql/*/bin`, else the directory of `pg_ctl` on `PATH`.
#[derive(Debug)]
struct Tools {
    bin: PathBuf,
    version: String,
}

impl Tools {
    fn find() -> Result<Self> {
        let bin = match std::env::var_os("FERRY_PG_BINDIR") {
            Some(dir) => PathBuf::from(dir),
            None => newest_debian_bindir()
                .or_else(|| on_path("pg_ctl"))
                .ok_or_else(|| {
                    Error::Cluster(
                        "no PostgreSQL binaries found (looked in /usr/lib/postgresql/*/bin and PATH); \
                         install postgresql (Debian: apt-get install postgresql) or set FERRY_PG_BINDIR"
                            .into(),
                    )
                })?,
        };
        for tool in ["initdb", "pg_ctl", "postgres"] {
            if !bin.join(tool).is_file() {
                return Err(Error::Cluster(format!(
                    "{} is missing; set FERRY_PG_BINDIR to a PostgreSQL bin directory",
                    bin.join(tool).display()
                )));
            }
        }
        let version = std::process::Command::new(bin.join("pg_ctl"))
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        Ok(Self { bin, version })
    }

    fn path(&self, tool: &str) -> PathBuf {
        self.bin.join(tool)
    }

    /// A command for one of the tools, run as `run_as` when given, with a clean locale.
    fn command(&self, tool: &str, run_as: Option<&RunAs>) -> tokio::process::Command {
        let mut cmd = std::process::Command::new(self.path(tool));
        cmd.env("LC_ALL", "C").env_remove("PGPASSWORD");
        if let Some(user) = run_as {
            cmd.uid(user.uid).gid(user.gid).current_dir("/");
        }
        let mut cmd = tokio::process::Command::from(cmd);
        cmd.kill_on_drop(true);
        cmd
    }
}

fn newest_debian_bindir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let major: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((major, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn on_path(tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).find(|dir| dir.join(tool).is_file())
}

fn current_user() -> String {
    std::env::var("USER").unwrap_or_else(|_| rustix::process::getuid().as_raw().to_string())
}

/// None unless we are root; then the user the server runs as.
fn run_as() -> Result<Option<RunAs>> {
    if !rustix::process::getuid().is_root() {
        return Ok(None);
    }
    let wanted = std::env::var("FERRY_PG_USER").ok();
    let passwd =
        std::fs::read_to_string("/etc/passwd").map_err(Error::io("read", "/etc/passwd"))?;
    let lookup = |name: &str| {
        passwd.lines().find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() > 3 && f[0] == name).then(|| RunAs {
                name: name.to_owned(),
                uid: f[2].parse().unwrap_or(0),
                gid: f[3].parse().unwrap_or(0),
            })
        })
    };
    let user = match &wanted {
        Some(name) => lookup(name)
            .ok_or_else(|| Error::Cluster(format!("FERRY_PG_USER={name}: no such user")))?,
        None => lookup("postgres")
            .or_else(|| lookup("nobody"))
            .ok_or_else(|| {
                Error::Cluster(
                    "running as root, and neither a 'postgres' nor a 'nobody' user exists to run \
                 Postgres as; set FERRY_PG_USER"
                        .into(),
                )
            })?,
    };
    if user.uid == 0 {
        return Err(Error::Cluster(format!(
            "Postgres cannot run as root; FERRY_PG_USER={} is root",
            user.name
        )));
    }
    Ok(Some(user))
}

/// The server's user must be able to walk down to its data directory.
fn check_reachable(dir: &Path, user: &RunAs) -> Result<()> {
    for ancestor in dir.ancestors().skip(1) {
        let Ok(md) = std::fs::metadata(ancestor) else {
            continue;
        };
        let mode = md.mode();
        let can = if md.uid() == user.uid {
            mode & 0o100 != 0
        } else if md.gid() == user.gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !can {
            return Err(Error::Cluster(format!(
                "the managed Postgres runs as '{}', which cannot enter {}; run `chmod o+x {}` \
                 or set FERRY_STATE_DIR to a directory it can reach (for example /var/lib/ferry)",
                user.name,
                ancestor.display(),
                ancestor.display()
            )));
        }
    }
    Ok(())
}

fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn free_port() -> Result<u16> {
    let listener =
        std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(Error::io("bind", "127.0.0.1:0"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(Error::io("bind", "127.0.0.1:0"))
}

fn random_password() -> Result<String> {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 24];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::Cluster("no randomness for a password".into()))?;
    Ok(hex::encode(bytes))
}

/// An exclusive lock on a file, released when dropped.
#[derive(Debug)]
struct Lock {
    _file: std::fs::File,
}

impl Lock {
    async fn acquire(path: &Path) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(Error::io("open", path))?;
        loop {
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(Self { _file: file }),
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(Error::io("lock", path)(e.into())),
            }
        }
    }
}
