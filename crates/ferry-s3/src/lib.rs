//! ferry's S3 gateway: the S3 API (through s3s) over any ferry-store backend, with SigV4 and
//! SigV2 auth, multipart uploads, checksums, conditional requests, TLS and metrics.

mod auth;
mod checksum;
mod conditions;
mod error;
mod gateway;
mod metrics;
mod server;

pub use auth::{AccessKey, AuthError, KeyStore, read_credentials_file};
pub use gateway::multipart::MIN_PART_SIZE;
pub use gateway::{Gateway, Uploads};
pub use server::{ServerError, ServerOptions, TlsFiles, serve};
