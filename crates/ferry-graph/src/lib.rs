//! Microsoft identity and Graph drive client for ferry.

pub mod names;
pub mod quickxor;

pub use names::{NameError, check_name, check_path};
pub use quickxor::{QuickXorHash, quick_xor_hash};
