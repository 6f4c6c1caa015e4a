//! OneDrive as storage: how S3 keys become drive paths ([`keys`]).

pub mod keys;
