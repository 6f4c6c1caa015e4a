//! `GET .../root/delta`: full enumeration, then changes since an opaque token; pages
//! with `@odata.nextLink`, ends with `@odata.deltaLink`. Unknown or too old tokens get
//! 410 `resyncRequired` with a `Location` to start over.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::error::GraphError;
use super::write::ItemAddr;
use super::{Ctx, resolve};
use crate::store::tree::{Tombstone, Tree};
use crate::util::{b64url, b64url_decode};

const DEFAULT_PAGE: usize = 200;
const MAX_PAGE: usize = 1000;
/// Paging cursors kept: at most this many, holding at most this many entries in all
/// (the oldest go first; a client paging with an evicted one gets 410 and starts over).
const MAX_CURSORS: usize = 1000;
const MAX_CURSOR_ENTRIES: usize = 1_000_000;

#[derive(Debug, Clone)]
enum Entry {
    Item(String),
    Deleted(Box<Tombstone>),
}

/// A snapshot of the ids one delta round returns, so paging is stable while the drive
/// keeps changing (later changes show up in the next round).
#[derive(Debug)]
struct Cursor {
    drive: String,
    entries: Vec<Entry>,
    epoch: String,
    to_seq: u64,
}

/// Cursors by id, ids oldest first for eviction, and the entries they hold.
type CursorTable = (
    HashMap<String, std::sync::Arc<Cursor>>,
    VecDeque<String>,
    usize,
);

#[derive(Debug, Default)]
pub struct Cursors {
    inner: Mutex<CursorTable>,
}

impl Cursors {
    fn put(&self, c: std::sync::Arc<Cursor>) -> String {
        let id = crate::util::random_token();
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.2 += c.entries.len();
        g.0.insert(id.clone(), c);
        g.1.push_back(id.clone());
        while g.1.len() > MAX_CURSORS || (g.2 > MAX_CURSOR_ENTRIES && g.1.len() > 1) {
            let Some(old) = g.1.pop_front() else { break };
            if let Some(c) = g.0.remove(&old) {
                g.2 -= c.entries.len();
            }
        }
        id
    }

    fn get(&self, id: &str) -> Option<std::sync::Arc<Cursor>> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .get(id)
            .cloned()
    }
}

enum Token {
    Start,
    Latest,
    Since(String, u64),
    Page(String, usize),
}

fn parse_token(t: Option<&String>) -> Option<Token> {
    let Some(t) = t else {
        return Some(Token::Start);
    };
    if t == "latest" {
        return Some(Token::Latest);
    }
    let raw = String::from_utf8(b64url_decode(t)?).ok()?;
    let mut parts = raw.splitn(3, '.');
    match (parts.next()?, parts.next()?, parts.next()?) {
        ("d", epoch, seq) => Some(Token::Since(epoch.to_string(), seq.parse().ok()?)),
        ("p", cursor, off) => Some(Token::Page(cursor.to_string(), off.parse().ok()?)),
        _ => None,
    }
}

fn resync(ctx: &Ctx, code: &str) -> GraphError {
    let message = match code {
        "resyncChangesUploadDifferences" => {
            "Resync required. Upload any local items that the service did not return, and upload any files that differ from the server's version (keeping both copies if you're not sure which one is more up-to-date)."
        }
        _ => {
            "Resync required. Replace any local items with the server's version (including deletes) if you're sure that the service was up to date with your local changes when you last sync'd. Upload any local changes that the server doesn't know about."
        }
    };
    let location = format!("{}{}", ctx.base, ctx.raw_path);
    GraphError::new(StatusCode::GONE, code, message).with_header("location", location)
}

/// Changed items since `from` (all items when 0): deletions first, then items with
/// parents before children.
fn changes(tree: &Tree, from: u64) -> Vec<Entry> {
    let mut out: Vec<Entry> = tree
        .tombstones
        .iter()
        .filter(|t| t.seq > from && t.last_change.is_none_or(|c| c > from))
        .filter(|t| !tree.nodes.contains_key(&t.id))
        .map(|t| Entry::Deleted(Box::new(t.clone())))
        .collect();
    for id in tree.subtree(&tree.root) {
        if tree.get(&id).is_some_and(|n| from == 0 || n.seq > from) {
            out.push(Entry::Item(id));
        }
    }
    out
}

pub async fn delta(ctx: &Ctx, it: ItemAddr) -> Result<Response, GraphError> {
    if let Some(code) = ctx.shared.faults.take_delta_resync() {
        return Err(resync(ctx, &code));
    }
    let top = match ctx.query.get("$top") {
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| GraphError::invalid(format!("Invalid value '{t}' for $top.")))?
            .min(MAX_PAGE),
        None => DEFAULT_PAGE,
    };
    let token = parse_token(ctx.query.get("token")).ok_or_else(|| resync(ctx, "resyncRequired"))?;
    let spec = ctx.view_spec(&it.drive, it.prefix.clone(), true);
    let select = ctx.query.get("$select").cloned();
    let drive_id = it.drive.id.clone();
    let cursor_in = match &token {
        Token::Page(c, _) => Some(
            ctx.shared
                .cursors
                .get(c)
                .filter(|c| c.drive == drive_id)
                .ok_or_else(|| resync(ctx, "resyncRequired"))?,
        ),
        _ => None,
    };
    let ItemAddr {
        drive, base, path, ..
    } = it;
    let outcome = drive
        .run(move |d, t| {
            let id = resolve::item(t, &base, &path)?;
            if id != t.root {
                return Err(Some(GraphError::invalid(
                    "Delta is only supported on the root folder of a drive.",
                )));
            }
            let (cursor, offset) = match (token, cursor_in) {
                (Token::Page(_, off), Some(c)) => {
                    if c.epoch != t.epoch {
                        return Err(None);
                    }
                    (c, off)
                }
                (Token::Latest, _) => (
                    std::sync::Arc::new(Cursor {
                        drive: d.id.clone(),
                        entries: Vec::new(),
                        epoch: t.epoch.clone(),
                        to_seq: t.seq,
                    }),
                    0,
                ),
                (Token::Since(epoch, seq), _) => {
                    if epoch != t.epoch || seq < t.min_seq || seq > t.seq {
                        return Err(None);
                    }
                    (
                        std::sync::Arc::new(Cursor {
                            drive: d.id.clone(),
                            entries: changes(t, seq),
                            epoch: epoch.clone(),
                            to_seq: t.seq,
                        }),
                        0,
                    )
                }
                _ => (
                    std::sync::Arc::new(Cursor {
                        drive: d.id.clone(),
                        entries: changes(t, 0),
                        epoch: t.epoch.clone(),
                        to_seq: t.seq,
                    }),
                    0,
                ),
            };
            let view = spec.view(d);
            let page: Vec<Value> = cursor
                .entries
                .iter()
                .skip(offset)
                .take(top)
                .map(|e| match e {
                    Entry::Item(id) => super::json::item(&view, t, id)
                        .map(|v| super::json::select(v, select.as_deref()))
                        .unwrap_or_else(|| json!({"id": id, "deleted": {"state": "deleted"}})),
                    Entry::Deleted(ts) => super::json::tombstone(&view, ts),
                })
                .collect();
            Ok((page, cursor, offset))
        })
        .await;
    let (page, cursor, offset) = match outcome {
        Ok(v) => v,
        Err(Some(e)) => return Err(e),
        Err(None) => return Err(resync(ctx, "resyncRequired")),
    };
    let mut body = json!({"value": page});
    if cursor.entries.len() > offset + top {
        let cid = match ctx
            .query
            .get("token")
            .and_then(|t| match parse_token(Some(t)) {
                Some(Token::Page(c, _)) => Some(c),
                _ => None,
            }) {
            Some(c) => c,
            None => ctx.shared.cursors.put(cursor.clone()),
        };
        let token = b64url(format!("p.{cid}.{}", offset + top).as_bytes());
        body["@odata.nextLink"] = json!(ctx.next_link(&[("token", token)], &["token"]));
    } else {
        let token = b64url(format!("d.{}.{}", cursor.epoch, cursor.to_seq).as_bytes());
        body["@odata.deltaLink"] = json!(ctx.next_link(&[("token", token)], &["token"]));
    }
    Ok(Json(body).into_response())
}
