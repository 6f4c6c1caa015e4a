//! Microsoft identity and Graph drive client for ferry.
//!
//! - [`auth`]: app-only and delegated tokens, refresh ahead of expiry, MSAL-layout cache,
//!   device-code sign-in.
//! - [`quickxor`]: OneDrive's content hash; [`names`]: OneDrive's name rules.
//! - Requests retry throttling (`Retry-After` for the whole client), server errors and dropped
//!   connections within a budget; errors are classified by Graph's codes.

pub mod auth;
mod client;
mod config;
mod delta;
mod error;
mod http;
pub mod model;
pub mod names;
pub mod quickxor;
mod resume;
mod secret;
mod stream_upload;
mod transfer;

pub use auth::{Account, Authenticator, DeviceCode, TokenCache};
pub use client::{GraphClient, ProgressFn};
pub use config::{
    Credential, DEFAULT_AUTHORITY, DEFAULT_GRAPH_URL, DriveSelector, GraphConfig, RetryPolicy,
};
pub use delta::{Change, Delta, DeltaTree, scoped};
pub use error::{Error, Result};
pub use names::{NameError, check_name, check_path};
pub use quickxor::{QuickXorHash, quick_xor_hash};
pub use secret::Secret;
pub use stream_upload::StreamingUpload;
pub use transfer::{Conflict, FRAGMENT_UNIT, PendingUpload, SIMPLE_UPLOAD_MAX};
