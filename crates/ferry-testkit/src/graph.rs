//! The Graph emulator as tests use it: one confidential app (secret), one public app (device
//! code), the emulator's default user, device codes pollable at once.

use std::path::Path;
use std::time::Duration;

use ferry_graph::{Credential, DriveSelector, GraphClient, GraphConfig, Secret};
use ferry_graph_emulator::{App, Emulator, EmulatorConfig};

pub const TENANT: &str = "11111111-2222-3333-4444-555555555555";
/// A confidential client with [`APP_SECRET`].
pub const APP: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
pub const APP_SECRET: &str = "s3cret~value";
/// A public client, for device-code sign-in.
pub const PUBLIC_APP: &str = "99999999-bbbb-cccc-dddd-eeeeeeeeeeee";
/// The emulator's default user, owner of the default drive.
pub const USER: &str = "00000000-0000-0000-0000-0000000000a1";

/// Settings for [`APP`] (client credentials) on [`USER`]'s drive in `emu`.
pub fn app_config(emu: &Emulator) -> GraphConfig {
    let mut config = GraphConfig::new(TENANT, APP);
    config.authority = emu.authority();
    config.graph_url = emu.graph_url();
    config.credential = Credential::Secret(Secret::new(APP_SECRET));
    config.drive = DriveSelector::User(USER.into());
    config
}

/// A client of [`USER`]'s drive in `emu`, signed in as [`APP`].
pub fn app_client(emu: &Emulator) -> GraphClient {
    GraphClient::new(&app_config(emu)).expect("the emulator's settings are valid")
}

/// Signs [`USER`] in to [`PUBLIC_APP`] with a device code (approved at once) and returns the
/// delegated settings for their drive, with the tokens in `token_cache`.
pub async fn signed_in_user(emu: &Emulator, token_cache: &Path) -> GraphConfig {
    let mut config = GraphConfig::new(TENANT, PUBLIC_APP);
    config.authority = emu.authority();
    config.graph_url = emu.graph_url();
    config.token_cache = Some(token_cache.to_owned());
    let client = GraphClient::new(&config).expect("the emulator's settings are valid");
    let code = client
        .auth()
        .start_device_login()
        .await
        .expect("device code");
    assert!(emu.approve_device_code(&code.user_code));
    client
        .auth()
        .complete_device_login(&code)
        .await
        .expect("device sign-in");
    config
}

/// Starts an emulator keeping its drives under `dir/drives`; `adjust` changes the config first.
pub async fn start_emulator(dir: &Path, adjust: impl FnOnce(&mut EmulatorConfig)) -> Emulator {
    let mut config = EmulatorConfig::new(dir.join("drives"));
    let mut app = App::new(TENANT, APP);
    app.client_secret = Some(APP_SECRET.into());
    config.apps.push(app);
    config.apps.push(App::new(TENANT, PUBLIC_APP));
    config.device_code_interval = Duration::ZERO;
    config.token_lifetime = Duration::from_secs(3600);
    adjust(&mut config);
    Emulator::start(config).await
}
