//! Bearer-token checks for Graph requests, and drive access rules.

use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use super::error::GraphError;
use crate::state::Shared;

/// Who is calling: a user (delegated) or an app (app-only).
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: Option<String>,
    pub app_id: String,
    pub permissions: Vec<String>,
}

impl Caller {
    fn has_any(&self, wanted: &[&str]) -> bool {
        self.permissions
            .iter()
            .any(|p| wanted.iter().any(|w| p.eq_ignore_ascii_case(w)))
    }

    pub fn check_read(&self) -> Result<(), GraphError> {
        if self.has_any(&[
            "Files.Read",
            "Files.Read.All",
            "Files.ReadWrite",
            "Files.ReadWrite.All",
            "Sites.Read.All",
            "Sites.ReadWrite.All",
            "Files.ReadWrite.AppFolder",
        ]) {
            return Ok(());
        }
        Err(GraphError::denied(
            "Access denied. The token does not grant a permission to read files.",
        ))
    }

    pub fn check_write(&self) -> Result<(), GraphError> {
        if self.has_any(&[
            "Files.ReadWrite",
            "Files.ReadWrite.All",
            "Sites.ReadWrite.All",
            "Files.ReadWrite.AppFolder",
        ]) {
            return Ok(());
        }
        Err(GraphError::denied(
            "Access denied. The token does not grant a permission to write files.",
        ))
    }
}

fn unauthenticated(
    shared: &Shared,
    headers: &HeaderMap,
    message: &str,
    invalid: bool,
) -> GraphError {
    let base = crate::state::base_url(shared, headers);
    let mut challenge = format!(
        "Bearer realm=\"\", authorization_uri=\"{base}/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\""
    );
    if invalid {
        challenge.push_str(&format!(
            ", error=\"invalid_token\", error_description=\"{message}\""
        ));
    }
    GraphError::new(
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        message,
    )
    .with_header("www-authenticate", challenge)
}

pub fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<Caller, GraphError> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(unauthenticated(
            shared,
            headers,
            "Access token is empty.",
            false,
        ));
    };
    if !token.contains('.') {
        return Err(unauthenticated(
            shared,
            headers,
            "IDX14100: JWT is not well formed, there are no dots (.).",
            true,
        ));
    }
    let Some(claims) = crate::identity::jwt::verify_hs256(&shared.signing_key, token) else {
        return Err(unauthenticated(
            shared,
            headers,
            "Invalid token signature.",
            true,
        ));
    };
    let str_claim = |k: &str| {
        claims
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    if str_claim("aud") != crate::identity::tokens::GRAPH_RESOURCE {
        return Err(unauthenticated(
            shared,
            headers,
            "Access token validation failure. Invalid audience.",
            true,
        ));
    }
    let now = crate::util::now_secs();
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    let iat = claims.get("iat").and_then(Value::as_i64).unwrap_or(0);
    let early = shared
        .faults
        .token_expiry()
        .is_some_and(|secs| iat + secs as i64 <= now);
    if exp <= now || early {
        return Err(unauthenticated(
            shared,
            headers,
            "Lifetime validation failed, the token is expired.",
            true,
        ));
    }
    let delegated = str_claim("idtyp") == "user";
    let permissions: Vec<String> = if delegated {
        str_claim("scp")
            .split_whitespace()
            .map(str::to_string)
            .collect()
    } else {
        claims
            .get("roles")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(Caller {
        user_id: delegated.then(|| str_claim("oid")),
        app_id: str_claim("appid"),
        permissions,
    })
}
