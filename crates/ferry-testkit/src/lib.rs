//! Test support: start real services as processes on 127.0.0.1 with random ports and temporary
//! folders, print their logs when a test fails, and always clean up.

mod gateway;
pub mod graph;
pub mod pg;
mod process;

pub use gateway::{Gateway, GatewayBuilder, wait_for_endpoint};
pub use process::{Service, wait_until};
