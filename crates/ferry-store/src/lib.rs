//! Storage for ferry: the [`Backend`] trait, its conveniences ([`BackendExt`]), the
//! local-folder backend ([`LocalBackend`]) and the [`conformance`] suite every backend passes.

mod backend;
pub mod conformance;
mod error;
mod ext;
mod local;
mod names;
pub mod onedrive;

pub use backend::{
    Backend, BucketInfo, ByteStream, Capabilities, CommitOptions, GetResult, ListEntry,
    ListOptions, ListPage, ObjectAttrs, ObjectMeta, ObjectWriter, PutOptions, RangeRequest,
    WriteCondition,
};
pub use error::{Error, Result};
pub use ext::BackendExt;
pub use local::LocalBackend;
pub use names::{MAX_KEY_LEN, check_bucket_name, check_key};
pub use onedrive::backend::OneDriveBackend;
