//! `GET /{tenant}/oauth2/v2.0/authorize`: signs in the configured user without a prompt
//! and redirects to `redirect_uri` with `code` and `state` (PKCE S256 or plain).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use super::client_auth;
use super::errors::AadError;
use super::store::{CodeRecord, Grant};
use super::tokens::split_scopes;
use crate::state::AppState;
use crate::util::{now_secs, random_token};

const CODE_LIFETIME_SECS: i64 = 600;

pub async fn authorize(
    State(shared): State<AppState>,
    Path(tenant): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    // Errors before the redirect URI is trusted are shown to the "browser" directly.
    if let Err(e) = client_auth::check_tenant(&shared, &tenant) {
        return e.into_response();
    }
    let Some(client_id) = q.get("client_id") else {
        return AadError::missing("client_id").into_response();
    };
    let app = match client_auth::find_app(&shared, &tenant, client_id) {
        Ok(app) => app,
        Err(e) => return e.into_response(),
    };
    let Some(redirect_uri) = q.get("redirect_uri") else {
        return AadError::missing("redirect_uri").into_response();
    };
    if !redirect_allowed(&app.redirect_uris, redirect_uri) {
        return AadError::new(
            "invalid_request",
            50011,
            format!("The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{client_id}'."),
        )
        .into_response();
    }
    let fragment = q.get("response_mode").map(String::as_str) == Some("fragment");
    let state = q.get("state").cloned();
    let back = |params: Vec<(&str, String)>| -> Response {
        let mut all = params;
        if let Some(s) = &state {
            all.push(("state", s.clone()));
        }
        let encoded: Vec<String> = all
            .iter()
            .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, NON_ALPHANUMERIC)))
            .collect();
        let sep = if fragment {
            '#'
        } else if redirect_uri.contains('?') {
            '&'
        } else {
            '?'
        };
        // Azure AD answers the authorize request with a 302.
        let location = format!("{redirect_uri}{sep}{}", encoded.join("&"));
        (
            axum::http::StatusCode::FOUND,
            [(axum::http::header::LOCATION, location)],
        )
            .into_response()
    };
    let fail = |error: &str, desc: &str| {
        back(vec![
            ("error", error.into()),
            ("error_description", desc.into()),
        ])
    };
    if q.get("response_type").map(String::as_str) != Some("code") {
        return fail(
            "unsupported_response_type",
            "AADSTS700054: response_type 'code' is required.",
        );
    }
    let Some(scope) = q.get("scope") else {
        return fail(
            "invalid_request",
            "AADSTS900144: The request body must contain the following parameter: 'scope'.",
        );
    };
    let challenge = match (q.get("code_challenge"), q.get("code_challenge_method")) {
        (Some(c), m) => {
            let method = m.cloned().unwrap_or_else(|| "plain".into());
            if !matches!(method.as_str(), "S256" | "plain") {
                return fail(
                    "invalid_request",
                    "AADSTS50148: The code_challenge_method is not supported.",
                );
            }
            Some((c.clone(), method))
        }
        (None, _) => None,
    };
    let user = q
        .get("login_hint")
        .and_then(|h| super::device::find_user(&shared, h))
        .map(|u| u.id.clone())
        .unwrap_or_else(|| super::device::default_user(&shared));
    let code = format!("0.A{}", random_token() + &random_token());
    shared.identity.lock().codes.insert(
        code.clone(),
        CodeRecord {
            grant: Grant {
                tenant: app.tenant.clone(),
                client_id: app.client_id.clone(),
                user_id: Some(user),
                scopes: split_scopes(scope),
                nonce: q.get("nonce").cloned(),
            },
            redirect_uri: redirect_uri.clone(),
            challenge,
            expires_at: now_secs() + CODE_LIFETIME_SECS,
            redeemed: false,
        },
    );
    back(vec![("code", code)])
}

/// Without configured URIs, any loopback redirect is allowed (like a public client's
/// `http://localhost` registration, whose port Azure AD ignores).
fn redirect_allowed(allowed: &[String], uri: &str) -> bool {
    if allowed.is_empty() {
        return ["http://localhost", "http://127.0.0.1", "http://[::1]"]
            .iter()
            .any(|p| {
                uri.strip_prefix(p)
                    .is_some_and(|r| r.is_empty() || r.starts_with([':', '/']))
            });
    }
    allowed.iter().any(|a| a == uri)
}
