//! OneDrive as storage: how S3 keys become drive paths ([`keys`]), the delta-maintained
//! index listings are served from ([`index`]), and what S3 keeps that OneDrive does not
//! ([`meta`]).

pub mod backend;
pub mod index;
pub mod keys;
pub mod meta;
