//! In-memory records for the identity flows: refresh tokens, device codes, authorization
//! codes and seen assertion ids. They do not survive a restart (clients sign in again).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

/// Who a delegated grant is for; carried from one token to the next.
#[derive(Debug, Clone)]
pub struct Grant {
    pub tenant: String,
    pub client_id: String,
    pub user_id: Option<String>,
    /// Requested scopes as sent (space-separated in the request).
    pub scopes: Vec<String>,
    pub nonce: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RefreshRecord {
    pub grant: Grant,
    /// Unix seconds after which the token expired from inactivity.
    pub expires_at: i64,
    pub redeemed: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DeviceStatus {
    Pending,
    Approved(String),
    Declined,
    Redeemed,
}

#[derive(Debug, Clone)]
pub struct DeviceRecord {
    pub user_code: String,
    pub grant: Grant,
    pub expires_at: i64,
    pub last_poll: Option<Instant>,
    pub status: DeviceStatus,
}

#[derive(Debug, Clone)]
pub struct CodeRecord {
    pub grant: Grant,
    pub redirect_uri: String,
    pub challenge: Option<(String, String)>,
    pub expires_at: i64,
    pub redeemed: bool,
}

#[derive(Debug, Default)]
pub struct Inner {
    pub refresh: HashMap<String, RefreshRecord>,
    pub devices: HashMap<String, DeviceRecord>,
    pub codes: HashMap<String, CodeRecord>,
    /// Assertion `jti`s already used, with their `exp`.
    pub jtis: HashMap<String, i64>,
}

#[derive(Debug, Default)]
pub struct Store {
    inner: Mutex<Inner>,
}

impl Store {
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    /// Forgets records that can no longer be used, so long runs stay bounded.
    pub fn prune(&mut self, now: i64) {
        // Kept a while past expiry (and after redemption) to report why they fail.
        self.refresh
            .retain(|_, r| r.expires_at + 7 * 24 * 3600 > now);
        self.devices.retain(|_, d| d.expires_at + 3600 > now);
        self.codes.retain(|_, c| c.expires_at + 3600 > now);
        self.jtis.retain(|_, exp| *exp + 600 > now);
    }

    pub fn device_by_user_code(&mut self, user_code: &str) -> Option<&mut DeviceRecord> {
        let wanted = user_code.trim().to_ascii_uppercase();
        self.devices.values_mut().find(|d| d.user_code == wanted)
    }
}
