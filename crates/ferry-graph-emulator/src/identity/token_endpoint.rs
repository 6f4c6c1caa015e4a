//! `POST /{tenant}/oauth2/v2.0/token`: client credentials, refresh token, device code and
//! authorization code (+PKCE) grants.

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use sha2::Digest as _;

use super::client_auth::{self, Form as Params};
use super::errors::AadError;
use super::store::{DeviceStatus, Grant};
use super::tokens;
use crate::state::AppState;
use crate::util::{b64url, now_secs};

const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

pub async fn token(
    State(shared): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    form: Result<Form<Params>, FormRejection>,
) -> Response {
    let correlation = headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match handle(&shared, &tenant, &headers, form) {
        Ok(body) => {
            let mut resp = Json(body).into_response();
            // Token responses must not be cached (RFC 6749 §5.1).
            resp.headers_mut().insert(
                "cache-control",
                axum::http::HeaderValue::from_static("no-store, no-cache"),
            );
            resp.headers_mut()
                .insert("pragma", axum::http::HeaderValue::from_static("no-cache"));
            resp
        }
        Err(mut e) => {
            e.correlation_id = correlation;
            e.into_response()
        }
    }
}

fn handle(
    shared: &AppState,
    tenant: &str,
    headers: &HeaderMap,
    form: Result<Form<Params>, FormRejection>,
) -> Result<serde_json::Value, AadError> {
    client_auth::check_tenant(shared, tenant)?;
    let Form(form) = form.map_err(|_| AadError::missing("grant_type"))?;
    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| AadError::missing("grant_type"))?;
    let client_id =
        client_auth::client_id(&form, headers).ok_or_else(|| AadError::missing("client_id"))?;
    let app = client_auth::find_app(shared, tenant, &client_id)?;
    let base = crate::state::base_url(shared, headers);
    let mut token_urls = Vec::new();
    for b in [base.clone(), shared.listen_url.clone()] {
        for t in [tenant, app.tenant.as_str()] {
            token_urls.push(format!("{b}/{t}/oauth2/v2.0/token"));
        }
    }
    // The tenant the tokens are for: generic authorities resolve to the app's home tenant.
    let tid = app.tenant.clone();
    tracing::debug!(%grant_type, %client_id, "token request");
    match grant_type.as_str() {
        "client_credentials" => {
            client_auth::authenticate(shared, app, &form, headers, &token_urls, true)?;
            let scope = form
                .get("scope")
                .ok_or_else(|| AadError::missing("scope"))?;
            let scopes = tokens::split_scopes(scope);
            let valid = scopes.len() == 1
                && [tokens::GRAPH_RESOURCE, tokens::GRAPH_APP_ID]
                    .iter()
                    .any(|r| scopes[0].trim_end_matches('/') == format!("{r}/.default"));
            if !valid {
                return Err(AadError::new(
                    "invalid_scope",
                    1002012,
                    format!(
                        "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
                    ),
                ));
            }
            Ok(tokens::app_token_response(shared, &tid, &app.client_id))
        }
        "refresh_token" => {
            client_auth::authenticate(shared, app, &form, headers, &token_urls, false)?;
            let rt = form
                .get("refresh_token")
                .ok_or_else(|| AadError::missing("refresh_token"))?;
            let mut grant = redeem_refresh(shared, rt, &app.client_id)?;
            if let Some(scope) = form.get("scope") {
                grant.scopes = tokens::split_scopes(scope);
            }
            Ok(delegated(shared, &grant, &base, &form))
        }
        DEVICE_CODE_GRANT => {
            client_auth::authenticate(shared, app, &form, headers, &token_urls, false)?;
            let code = form
                .get("device_code")
                .or_else(|| form.get("code"))
                .ok_or_else(|| AadError::missing("device_code"))?;
            let grant = redeem_device(shared, code, &app.client_id)?;
            Ok(delegated(shared, &grant, &base, &form))
        }
        "authorization_code" => {
            client_auth::authenticate(shared, app, &form, headers, &token_urls, false)?;
            let code = form.get("code").ok_or_else(|| AadError::missing("code"))?;
            let grant = redeem_code(shared, code, &app.client_id, &form)?;
            Ok(delegated(shared, &grant, &base, &form))
        }
        other => Err(AadError::new(
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{other}'."),
        )),
    }
}

fn delegated(shared: &AppState, grant: &Grant, base: &str, form: &Params) -> serde_json::Value {
    let client_info = form.get("client_info").map(String::as_str) == Some("1");
    tokens::delegated_response(shared, grant, base, client_info)
}

fn invalid_grant(code: u32, message: &str) -> AadError {
    AadError::new("invalid_grant", code, message)
}

fn redeem_refresh(shared: &AppState, token: &str, client_id: &str) -> Result<Grant, AadError> {
    let now = now_secs();
    let mut store = shared.identity.lock();
    store.prune(now);
    let Some(record) = store.refresh.get_mut(token) else {
        return Err(invalid_grant(
            9002313,
            "Invalid request. Request is malformed or invalid.",
        ));
    };
    if record.redeemed {
        return Err(invalid_grant(
            70000,
            "Provided grant is invalid or malformed. The refresh token was already redeemed; use the newest refresh token.",
        ));
    }
    if record.expires_at <= now {
        return Err(invalid_grant(
            700082,
            "The refresh token has expired due to inactivity. The token was inactive for longer than its allowed lifetime.",
        ));
    }
    if !record.grant.client_id.eq_ignore_ascii_case(client_id) {
        return Err(invalid_grant(
            70000,
            "Provided grant is invalid or malformed. The refresh token was issued to a different client.",
        ));
    }
    record.redeemed = true;
    Ok(record.grant.clone())
}

fn redeem_device(shared: &AppState, code: &str, client_id: &str) -> Result<Grant, AadError> {
    let now = now_secs();
    let interval = shared.config.device_code_interval;
    let mut store = shared.identity.lock();
    let Some(record) = store.devices.get_mut(code) else {
        return Err(invalid_grant(
            70000,
            "Provided grant is invalid or malformed. The device code is not valid.",
        ));
    };
    if !record.grant.client_id.eq_ignore_ascii_case(client_id) {
        return Err(invalid_grant(
            70000,
            "Provided grant is invalid or malformed. The device code was issued to a different client.",
        ));
    }
    if record.expires_at <= now {
        return Err(AadError::new(
            "expired_token",
            70020,
            "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
        ));
    }
    let too_fast = record.last_poll.is_some_and(|t| t.elapsed() < interval);
    record.last_poll = Some(std::time::Instant::now());
    match record.status.clone() {
        DeviceStatus::Pending if too_fast => Err(AadError::new(
            "slow_down",
            70016,
            "OAuth 2.0 device flow error. Polling too fast; wait at least the interval between requests.",
        )),
        DeviceStatus::Pending => Err(AadError::new(
            "authorization_pending",
            70016,
            "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
        )),
        DeviceStatus::Declined => Err(AadError::new(
            "authorization_declined",
            70018,
            "The user declined the authorization request.",
        )),
        DeviceStatus::Redeemed => Err(invalid_grant(
            70000,
            "Provided grant is invalid or malformed. The device code was already redeemed.",
        )),
        DeviceStatus::Approved(user) => {
            record.status = DeviceStatus::Redeemed;
            let mut grant = record.grant.clone();
            grant.user_id = Some(user);
            Ok(grant)
        }
    }
}

fn redeem_code(
    shared: &AppState,
    code: &str,
    client_id: &str,
    form: &Params,
) -> Result<Grant, AadError> {
    let now = now_secs();
    let mut store = shared.identity.lock();
    let Some(record) = store.codes.get_mut(code) else {
        return Err(invalid_grant(
            9002313,
            "Invalid request. Request is malformed or invalid. The authorization code is not valid.",
        ));
    };
    if record.redeemed {
        return Err(invalid_grant(
            54005,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
        ));
    }
    if record.expires_at <= now {
        return Err(invalid_grant(
            70008,
            "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
        ));
    }
    if !record.grant.client_id.eq_ignore_ascii_case(client_id) {
        return Err(invalid_grant(
            70000,
            "Provided grant is invalid or malformed. The authorization code was issued to a different client.",
        ));
    }
    if form.get("redirect_uri") != Some(&record.redirect_uri) {
        return Err(invalid_grant(
            70000,
            "Provided grant is invalid or malformed. The redirect_uri does not match the one used in the authorization request.",
        ));
    }
    if let Some((challenge, method)) = &record.challenge {
        let verifier = form.get("code_verifier").map(String::as_str).unwrap_or("");
        let computed = if method.eq_ignore_ascii_case("S256") {
            b64url(&sha2::Sha256::digest(verifier.as_bytes()))
        } else {
            verifier.to_string()
        };
        if verifier.is_empty() || computed != *challenge {
            return Err(invalid_grant(
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            ));
        }
    }
    record.redeemed = true;
    Ok(record.grant.clone())
}
