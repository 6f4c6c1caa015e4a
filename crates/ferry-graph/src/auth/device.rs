//! The device code flow: a person signs in on another device with a short code.

use std::time::Duration;

use serde::Deserialize;

/// What `/devicecode` answers; show `message` to the person.
#[derive(Debug, Clone, Deserialize)]
pub struct DeviceCode {
    #[serde(skip_serializing)]
    pub(crate) device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    #[serde(deserialize_with = "super::flows::seconds")]
    pub expires_in: u64,
    #[serde(
        default = "default_interval",
        deserialize_with = "super::flows::seconds"
    )]
    pub interval: u64,
    #[serde(default)]
    pub message: String,
}

fn default_interval() -> u64 {
    5
}

impl DeviceCode {
    pub(crate) fn interval(&self) -> Duration {
        Duration::from_secs(self.interval.max(1))
    }
}
