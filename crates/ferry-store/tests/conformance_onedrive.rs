//! The store conformance suite against the OneDrive backend, over the Graph emulator: on a
//! business drive and on a personal one, and with its metadata in Postgres.

#![allow(clippy::unwrap_used)]

use ferry_graph_emulator::DriveType;
use ferry_store::OneDriveBackend;
use ferry_store::onedrive::backend::{DEFAULT_FRESHNESS, MetaStore};
use ferry_testkit::graph::{app_client, start_emulator};

const ROOT: &str = "/DynamicCapital/ai-training";

async fn conforms_on(drive_type: DriveType) {
    let dir = tempfile::tempdir().unwrap();
    let emu = start_emulator(&dir.path().join("emulator"), |c| {
        c.default_drive_type = drive_type;
    })
    .await;
    let backend = OneDriveBackend::open(app_client(&emu), ROOT, &dir.path().join("state")).unwrap();
    ferry_store::conformance::run(&backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onedrive_backend_conforms_on_a_business_drive() {
    conforms_on(DriveType::Business).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onedrive_backend_conforms_on_a_personal_drive() {
    conforms_on(DriveType::Personal).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onedrive_backend_conforms_with_its_metadata_in_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let emu = start_emulator(&dir.path().join("emulator"), |_| {}).await;
    let db = ferry_testkit::pg::start().await;
    let meta = MetaStore::postgres(db.settings(), "/drives/conformance")
        .await
        .unwrap();
    let state = dir.path().join("state");
    let backend =
        OneDriveBackend::open_with(app_client(&emu), ROOT, &state, DEFAULT_FRESHNESS, meta)
            .unwrap();
    ferry_store::conformance::run(&backend).await;
}
