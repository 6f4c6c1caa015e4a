//! Renders drives and DriveItems exactly as Graph spells them, and applies `$select`.

use serde_json::{Map, Value, json};

use crate::store::tree::{Tombstone, Tree};
use crate::store::{Drive, hashing};
use crate::util::iso;

/// How items are being shown: through which drive path, and whether for delta.
#[derive(Debug)]
pub struct View<'a> {
    pub base: &'a str,
    pub drive: &'a Drive,
    /// `/drive` or `/drives/{id}`, for `parentReference.path`.
    pub prefix: String,
    pub in_delta: bool,
    pub key: &'a ring::hmac::Key,
    pub download_ttl: i64,
    /// (id, displayName) of the drive's owner, for createdBy / lastModifiedBy.
    pub owner: (String, String),
}

pub fn mime_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "log" => "text/plain",
        "md" => "text/markdown",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "json" => "application/json",
        "xml" => "application/xml",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "mp4" => "video/mp4",
        "mp3" => "audio/mpeg",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        _ => "application/octet-stream",
    }
}

fn identity(owner: &(String, String)) -> Value {
    json!({"user": {"id": owner.0, "displayName": owner.1}})
}

/// A DriveItem, or None if the id is unknown.
pub fn item(view: &View, tree: &mut Tree, id: &str) -> Option<Value> {
    let path = tree.disk_path(&view.drive.dir, id);
    let size = tree.size_of(id);
    let child_count = tree.children.get(id).map_or(0, Vec::len);
    let parent_path = tree.get(id)?.parent.clone().map(|p| tree.path_of(&p));
    let hashes = if tree.get(id)?.folder {
        None
    } else {
        hashing::ensure(tree, id, &path)
    };
    let node = tree.get(id)?;
    let mut v = json!({
        "id": node.id,
        "name": node.name,
        "eTag": format!("\"{{{}}},{}\"", node.guid, node.version),
        "cTag": format!("\"c:{{{}}},{}\"", node.guid, node.ctag),
        "size": size,
        "createdDateTime": iso(node.created),
        "lastModifiedDateTime": iso(node.modified),
        "webUrl": format!("{}/_emulator/web/{}/{}", view.base, view.drive.id, node.id),
        "createdBy": identity(&view.owner),
        "lastModifiedBy": identity(&view.owner),
        "fileSystemInfo": {
            "createdDateTime": iso(node.fs_created),
            "lastModifiedDateTime": iso(node.fs_modified),
        },
    });
    let mut parent = json!({"driveId": view.drive.id, "driveType": view.drive.drive_type.as_str()});
    if let (Some(pid), Some(pp)) = (&node.parent, parent_path) {
        parent["id"] = json!(pid);
        if !view.in_delta {
            parent["path"] = json!(format!("{}/root:{pp}", view.prefix));
        }
    }
    v["parentReference"] = parent;
    if node.parent.is_none() {
        v["root"] = json!({});
        v["name"] = json!("root");
    }
    if node.folder {
        v["folder"] = json!({"childCount": child_count});
    } else {
        let mut h = Map::new();
        if let Some(hs) = &hashes {
            h.insert(
                "quickXorHash".into(),
                json!(crate::util::b64(&hs.quick_xor)),
            );
            if view.drive.drive_type == crate::config::DriveType::Personal {
                h.insert("sha1Hash".into(), json!(hex::encode_upper(hs.sha1)));
                h.insert("sha256Hash".into(), json!(hex::encode_upper(hs.sha256)));
            }
        }
        v["file"] = json!({"mimeType": mime_type(&node.name), "hashes": h});
        if !view.in_delta {
            let token = super::links::sign(view.key, &view.drive.id, &node.id, view.download_ttl);
            v["@microsoft.graph.downloadUrl"] =
                json!(format!("{}/_emulator/download/{token}", view.base));
        }
    }
    Some(v)
}

/// A deleted item in delta.
pub fn tombstone(view: &View, t: &Tombstone) -> Value {
    let mut parent = json!({"driveId": view.drive.id, "driveType": view.drive.drive_type.as_str()});
    if let Some(p) = &t.parent {
        parent["id"] = json!(p);
    }
    json!({"id": t.id, "deleted": {"state": "deleted"}, "parentReference": parent})
}

pub fn drive(view: &View, tree: &Tree) -> Value {
    let used = tree.used_bytes();
    let total = view.drive.quota_total;
    let remaining = total.saturating_sub(used);
    // Graph's thresholds: nearing below 10% left, critical below 1%, exceeded at 0.
    let state = if remaining == 0 {
        "exceeded"
    } else if remaining * 100 < total {
        "critical"
    } else if remaining * 10 < total {
        "nearing"
    } else {
        "normal"
    };
    let root_created = tree.get(&tree.root).map_or(0, |r| r.created);
    let name = if view.drive.site.is_some() {
        "Documents"
    } else {
        "OneDrive"
    };
    json!({
        "id": view.drive.id,
        "driveType": view.drive.drive_type.as_str(),
        "name": name,
        "createdDateTime": iso(root_created),
        "lastModifiedDateTime": iso(tree.get(&tree.root).map_or(0, |r| r.modified)),
        "webUrl": format!("{}/_emulator/web/{}", view.base, view.drive.id),
        "owner": identity(&view.owner),
        "quota": {
            "total": total,
            "used": used,
            "remaining": remaining,
            "deleted": 0,
            "state": state,
        },
    })
}

/// Keeps only the `$select`ed properties (comma-separated, case-insensitive).
pub fn select(v: Value, select: Option<&str>) -> Value {
    let (Some(sel), Value::Object(map)) = (select, &v) else {
        return v;
    };
    let wanted: Vec<String> = sel
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    if wanted.is_empty() {
        return v;
    }
    let kept: Map<String, Value> = map
        .iter()
        .filter(|(k, _)| wanted.contains(&k.to_ascii_lowercase()) || k.as_str() == "@odata.etag")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(kept)
}
