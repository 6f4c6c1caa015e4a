//! Integration tests: the real `ferry serve s3` process, driven by the AWS SDK for Rust.

#![allow(clippy::unwrap_used)]

mod common;
mod lifecycle;
mod multipart;
mod objects;
mod onedrive;
mod quickstart;
mod restart;
