//! The Microsoft Graph side: `/v1.0/...` OneDrive endpoints over the drive folders.

pub mod auth;
pub mod context;
pub mod copy;
pub mod delta;
pub mod download;
pub mod error;
pub mod json;
pub mod links;
pub mod read;
pub mod resolve;
pub mod route;
pub mod session;
pub mod upload;
pub mod write;

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use self::auth::Caller;
use self::error::GraphError;
use self::route::Target;
use crate::state::AppState;
use crate::store::Drive;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1.0/{*rest}", any(dispatch))
}

/// Everything a handler needs about the request.
#[derive(Debug)]
pub struct Ctx {
    pub shared: AppState,
    pub caller: Caller,
    /// `http://host:port` as the client addressed us.
    pub base: String,
    pub query: HashMap<String, String>,
    pub headers: HeaderMap,
    /// The request path, still percent-encoded.
    pub raw_path: String,
    pub raw_query: String,
}

/// An owned description of a [`json::View`], movable into blocking drive tasks.
#[derive(Debug, Clone)]
pub struct ViewSpec {
    shared: AppState,
    base: String,
    prefix: String,
    in_delta: bool,
    owner: (String, String),
}

impl ViewSpec {
    pub fn new(
        shared: &AppState,
        drive: &Drive,
        base: String,
        prefix: String,
        in_delta: bool,
    ) -> Self {
        let owner = drive
            .owner
            .as_deref()
            .and_then(|o| resolve::user_id(shared, o))
            .map(|u| (u.id.clone(), u.display_name.clone()))
            .unwrap_or_else(|| (String::new(), "System Account".into()));
        ViewSpec {
            shared: shared.clone(),
            base,
            prefix,
            in_delta,
            owner,
        }
    }

    pub fn view<'a>(&'a self, drive: &'a Drive) -> json::View<'a> {
        json::View {
            base: &self.base,
            drive,
            prefix: self.prefix.clone(),
            in_delta: self.in_delta,
            key: &self.shared.signing_key,
            download_ttl: self.shared.config.download_url_lifetime.as_secs() as i64,
            owner: self.owner.clone(),
        }
    }
}

impl Ctx {
    pub fn view_spec(&self, drive: &Drive, prefix: String, in_delta: bool) -> ViewSpec {
        ViewSpec::new(&self.shared, drive, self.base.clone(), prefix, in_delta)
    }

    /// This request's absolute URL with `set` parameters replaced and `drop` removed.
    pub fn next_link(&self, set: &[(&str, String)], drop: &[&str]) -> String {
        let mut parts: Vec<String> = Vec::new();
        for pair in self.raw_query.split('&').filter(|p| !p.is_empty()) {
            let key = decode_component(pair.split('=').next().unwrap_or(""));
            if drop.contains(&key.as_str()) || set.iter().any(|(k, _)| *k == key) {
                continue;
            }
            parts.push(pair.to_string());
        }
        for (k, v) in set {
            parts.push(format!("{k}={}", utf8_percent_encode(v, NON_ALPHANUMERIC)));
        }
        format!("{}{}?{}", self.base, self.raw_path, parts.join("&"))
    }
}

fn decode_component(s: &str) -> String {
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

pub fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode_component(k), decode_component(v)),
            None => (decode_component(p), String::new()),
        })
        .collect()
}

async fn dispatch(State(shared): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    match handle(shared, parts.method, parts.uri, parts.headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn handle(
    shared: AppState,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, GraphError> {
    let caller = auth::authenticate(&shared, &headers)?;
    let target = route::parse(uri.path())?;
    tracing::debug!(app = %caller.app_id, user = ?caller.user_id, %method, path = %uri.path(), "graph request");
    let ctx = Ctx {
        base: crate::state::base_url(&shared, &headers),
        query: parse_query(uri.query().unwrap_or("")),
        raw_query: uri.query().unwrap_or("").to_string(),
        raw_path: uri.path().to_string(),
        shared,
        caller,
        headers,
    };
    let unsupported = || {
        GraphError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalidRequest",
            format!("The method {method} is not supported on this resource."),
        )
    };
    match target {
        Target::Me | Target::User(_) if method == Method::GET => {
            let user = match target {
                Target::User(u) => resolve::user_id(&ctx.shared, &u).ok_or_else(|| GraphError::new(StatusCode::NOT_FOUND, "Request_ResourceNotFound", format!("Resource '{u}' does not exist or one of its queried reference-property objects are not present.")))?,
                _ => {
                    let uid = ctx.caller.user_id.clone().ok_or_else(resolve::me_required)?;
                    resolve::user_id(&ctx.shared, &uid).ok_or_else(GraphError::item_not_found)?
                }
            };
            Ok(read::user_json(&ctx, user))
        }
        Target::Drives(owner) if method == Method::GET => {
            ctx.caller.check_read()?;
            read::drives(&ctx, owner).await
        }
        Target::Drive(sel) if method == Method::GET => {
            ctx.caller.check_read()?;
            let drive = resolve::drive_for(&ctx.shared, &ctx.caller, &sel)?;
            let prefix = sel.path_prefix(&drive.id);
            Ok(read::drive(&ctx, drive, prefix).await)
        }
        Target::Item {
            drive: sel,
            base,
            path,
            action,
        } => {
            let drive = resolve::drive_for(&ctx.shared, &ctx.caller, &sel)?;
            let prefix = sel.path_prefix(&drive.id);
            let writes = !matches!(method, Method::GET | Method::HEAD);
            if writes {
                ctx.caller.check_write()?;
            } else {
                ctx.caller.check_read()?;
            }
            let it = write::ItemAddr {
                drive,
                prefix,
                base,
                path,
            };
            match (method.clone(), action.as_deref()) {
                (Method::GET, None) => {
                    read::item(&ctx, it.drive, it.prefix, it.base, it.path).await
                }
                (Method::GET, Some("children")) => {
                    read::children(&ctx, it.drive, it.prefix, it.base, it.path).await
                }
                (Method::GET, Some("content")) => download::redirect(&ctx, it).await,
                (Method::GET, Some("delta")) => delta::delta(&ctx, it).await,
                (Method::PATCH, None) => write::update(&ctx, it, body).await,
                (Method::DELETE, None) => write::delete(&ctx, it).await,
                (Method::POST, Some("children")) => write::create(&ctx, it, body).await,
                (Method::PUT, Some("content")) => upload::simple(&ctx, it, body).await,
                (Method::POST, Some("createUploadSession")) => {
                    session::create(&ctx, it, body).await
                }
                (Method::POST, Some("copy")) => copy::start(&ctx, it, body).await,
                (_, Some(a))
                    if ![
                        "children",
                        "content",
                        "delta",
                        "createUploadSession",
                        "copy",
                    ]
                    .contains(&a) =>
                {
                    Err(GraphError::new(
                        StatusCode::BAD_REQUEST,
                        "BadRequest",
                        format!("Resource not found for the segment '{a}'."),
                    ))
                }
                _ => Err(unsupported()),
            }
        }
        _ => Err(unsupported()),
    }
}

/// Reads a JSON request body of bounded size.
pub async fn json_body(body: Body) -> Result<serde_json::Value, GraphError> {
    const LIMIT: usize = 1024 * 1024;
    let bytes = axum::body::to_bytes(body, LIMIT)
        .await
        .map_err(|_| GraphError::invalid("The request body is too large or could not be read."))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::json!({}));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| GraphError::invalid(format!("Invalid JSON body: {e}")))
}
