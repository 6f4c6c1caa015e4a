//! A local Microsoft identity platform + Microsoft Graph OneDrive emulator.
//!
//! One port serves the identity endpoints (`/{tenant}/oauth2/v2.0/...`, so the authority
//! is the emulator's URL), Graph (`/v1.0/...`) over a folder of real files, and
//! emulator-only control endpoints under `/_emulator/...`. See README.md.

mod config;
mod config_file;
mod control;
mod emulator;
mod error;
mod faults;
mod graph;
mod identity;
mod quickxor;
mod server;
mod state;
mod store;
mod util;

pub use config::{
    App, DEFAULT_CLIENT_ID, DEFAULT_TENANT, DriveConfig, DriveType, EmulatorConfig, User,
    random_token_lifetime,
};
pub use emulator::Emulator;
pub use error::Error;
pub use faults::{Faults, FaultsHandle, RateLimit};
pub use quickxor::QuickXor;
pub use server::serve;
