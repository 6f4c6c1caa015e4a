//! The store conformance suite against the local-folder backend.

use ferry_store::LocalBackend;

#[tokio::test]
async fn local_backend_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let backend = LocalBackend::open(dir.path()).unwrap();
    ferry_store::conformance::run(&backend).await;
}
