//! Finding the drive a request addresses (with access checks) and items by id or path.

use std::sync::Arc;

use axum::http::StatusCode;

use super::auth::Caller;
use super::error::GraphError;
use super::route::{Base, DriveSel};
use crate::state::Shared;
use crate::store::{Drive, Tree};

pub fn me_required() -> GraphError {
    GraphError::new(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        "/me request is only valid with delegated authentication flow.",
    )
}

pub fn user_id<'a>(shared: &'a Shared, key: &str) -> Option<&'a crate::config::User> {
    crate::identity::device::find_user(shared, key)
}

pub fn drive_for(
    shared: &Shared,
    caller: &Caller,
    sel: &DriveSel,
) -> Result<Arc<Drive>, GraphError> {
    let not_found = || {
        GraphError::new(
            StatusCode::NOT_FOUND,
            "itemNotFound",
            "The requested drive was not found.",
        )
    };
    let drive = match sel {
        DriveSel::Me => {
            let uid = caller.user_id.as_deref().ok_or_else(me_required)?;
            shared.drives.for_user(uid).ok_or_else(not_found)?
        }
        DriveSel::Id(id) => shared.drives.get(id).ok_or_else(not_found)?,
        DriveSel::User(u) => {
            let user = user_id(shared, u).ok_or_else(|| {
                GraphError::new(
                    StatusCode::NOT_FOUND,
                    "ResourceNotFound",
                    format!("User '{u}' was not found."),
                )
            })?;
            shared.drives.for_user(&user.id).ok_or_else(not_found)?
        }
        DriveSel::Site(s) => shared.drives.for_site(s).ok_or_else(not_found)?,
    };
    check_access(caller, &drive)?;
    Ok(drive)
}

/// Users reach their own drive and site libraries; apps reach every drive.
pub fn check_access(caller: &Caller, drive: &Drive) -> Result<(), GraphError> {
    match (&caller.user_id, &drive.owner) {
        (Some(u), Some(owner)) if !u.eq_ignore_ascii_case(owner) => {
            Err(GraphError::denied("Access denied"))
        }
        _ => Ok(()),
    }
}

fn base_id(tree: &Tree, base: &Base) -> Result<String, GraphError> {
    match base {
        Base::Root => Ok(tree.root.clone()),
        Base::Id(id) if id.eq_ignore_ascii_case("root") => Ok(tree.root.clone()),
        Base::Id(id) => tree
            .nodes
            .get(id)
            .map(|n| n.id.clone())
            .or_else(|| {
                tree.nodes
                    .keys()
                    .find(|k| k.eq_ignore_ascii_case(id))
                    .cloned()
            })
            .ok_or_else(GraphError::item_not_found),
    }
}

/// The id of an existing item.
pub fn item(tree: &Tree, base: &Base, path: &[String]) -> Result<String, GraphError> {
    let mut cur = base_id(tree, base)?;
    for seg in path {
        cur = tree
            .child_by_name(&cur, seg)
            .map(|n| n.id.clone())
            .ok_or_else(GraphError::item_not_found)?;
    }
    Ok(cur)
}

/// For creating by path: the existing parent folder and the new leaf name.
pub fn parent_and_name(
    tree: &Tree,
    base: &Base,
    path: &[String],
) -> Result<(String, String), GraphError> {
    let Some((leaf, dirs)) = path.split_last() else {
        return Err(GraphError::invalid("A file name is required in the path."));
    };
    let parent = item(tree, base, dirs)?;
    Ok((parent, leaf.clone()))
}
