//! A throwaway Postgres cluster per test: ferry's own managed cluster (the same code users
//! run), in a temp dir, without fsync, stopped when dropped.

use std::os::unix::fs::PermissionsExt as _;

use ferry_pg::{Cluster, ClusterOptions, Settings};

#[derive(Debug)]
pub struct TestDb {
    pub cluster: Cluster,
    pub port: u16,
    /// The state dir holding the cluster (`<dir>/postgres`).
    pub dir: tempfile::TempDir,
}

/// Starts a fresh cluster. Panics if Postgres cannot start (the test cannot run).
pub async fn start() -> TestDb {
    start_with(Vec::new()).await
}

/// Starts a fresh cluster with more server settings (`-c name=value`).
pub async fn start_with(settings: Vec<(String, String)>) -> TestDb {
    let dir = tempfile::Builder::new()
        .prefix("ferry-pg-")
        .tempdir()
        .expect("temp dir");
    // As root, the server runs as another user, who must be able to enter the dir.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711))
        .expect("chmod temp dir");
    let cluster = Cluster::new(dir.path());
    let options = ClusterOptions {
        durable: false,
        settings,
    };
    let port = match cluster.start(options).await {
        Ok(port) => port,
        Err(e) => panic!("starting Postgres for a test: {e}"),
    };
    TestDb { cluster, port, dir }
}

impl TestDb {
    pub fn settings(&self) -> Settings {
        Settings::from_config(self.cluster.config(self.port).expect("cluster config"))
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        self.settings()
            .connect()
            .await
            .expect("connect to the test cluster")
    }

    /// `postgresql://ferry:PASSWORD@127.0.0.1:PORT/ferry`, for child processes' env.
    pub fn url_with_password(&self) -> String {
        let password = std::fs::read_to_string(self.cluster.password_file()).expect("password");
        format!(
            "postgresql://ferry:{}@127.0.0.1:{}/ferry?sslmode=disable",
            password.trim(),
            self.port
        )
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        self.cluster.stop_now();
    }
}
