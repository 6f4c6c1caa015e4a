//! Device authorization: `POST /{tenant}/oauth2/v2.0/devicecode`, and the emulator-only
//! approval that stands in for the user entering the code in a browser.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::client_auth::{self, Form as Params};
use super::errors::AadError;
use super::store::{DeviceRecord, DeviceStatus, Grant};
use super::tokens::split_scopes;
use crate::state::{AppState, Shared};
use crate::util::{now_secs, random_bytes, random_token};

pub async fn devicecode(
    State(shared): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    form: Result<Form<Params>, FormRejection>,
) -> Response {
    match issue(&shared, &tenant, &headers, form) {
        Ok(body) => axum::Json(body).into_response(),
        Err(e) => e.into_response(),
    }
}

fn issue(
    shared: &AppState,
    tenant: &str,
    headers: &HeaderMap,
    form: Result<Form<Params>, FormRejection>,
) -> Result<serde_json::Value, AadError> {
    client_auth::check_tenant(shared, tenant)?;
    let Form(form) = form.map_err(|_| AadError::missing("client_id"))?;
    let client_id = form
        .get("client_id")
        .ok_or_else(|| AadError::missing("client_id"))?;
    let app = client_auth::find_app(shared, tenant, client_id)?;
    let scope = form
        .get("scope")
        .ok_or_else(|| AadError::missing("scope"))?;
    let user_code = new_user_code();
    let device_code = format!("DAQABAAEAAAD{}", random_token() + &random_token());
    let lifetime = shared.config.device_code_lifetime.as_secs() as i64;
    let status = if shared.config.auto_approve_device_codes {
        DeviceStatus::Approved(default_user(shared))
    } else {
        DeviceStatus::Pending
    };
    shared.identity.lock().devices.insert(
        device_code.clone(),
        DeviceRecord {
            user_code: user_code.clone(),
            grant: Grant {
                tenant: app.tenant.clone(),
                client_id: app.client_id.clone(),
                user_id: None,
                scopes: split_scopes(scope),
                nonce: None,
            },
            expires_at: now_secs() + lifetime,
            last_poll: None,
            status,
        },
    );
    let uri = format!(
        "{}/_emulator/device",
        crate::state::base_url(shared, headers)
    );
    Ok(json!({
        "user_code": user_code,
        "device_code": device_code,
        "verification_uri": uri,
        "expires_in": lifetime,
        "interval": shared.config.device_code_interval.as_secs(),
        "message": format!("To sign in, use a web browser to open the page {uri} and enter the code {user_code} to authenticate."),
    }))
}

/// Nine characters from an alphabet without look-alikes, as Azure AD's codes look.
fn new_user_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    random_bytes::<9>()
        .iter()
        .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
        .collect()
}

pub fn default_user(shared: &Shared) -> String {
    shared
        .config
        .users
        .first()
        .map(|u| u.id.clone())
        .unwrap_or_default()
}

/// Resolves a user by id or user principal name (case-insensitive).
pub fn find_user<'a>(shared: &'a Shared, key: &str) -> Option<&'a crate::config::User> {
    shared
        .config
        .users
        .iter()
        .find(|u| u.id.eq_ignore_ascii_case(key) || u.user_principal_name.eq_ignore_ascii_case(key))
}

#[derive(Debug)]
pub enum DecisionError {
    UnknownCode,
    UnknownUser,
    NotPending,
}

/// Approves (or declines) a pending device code as `user` (default: the first user).
pub fn decide(
    shared: &Shared,
    user_code: &str,
    user: Option<&str>,
    approve: bool,
) -> Result<(), DecisionError> {
    let user_id = match user {
        Some(u) => find_user(shared, u)
            .ok_or(DecisionError::UnknownUser)?
            .id
            .clone(),
        None => default_user(shared),
    };
    let mut store = shared.identity.lock();
    let record = store
        .device_by_user_code(user_code)
        .ok_or(DecisionError::UnknownCode)?;
    if record.status != DeviceStatus::Pending {
        return Err(DecisionError::NotPending);
    }
    record.status = if approve {
        DeviceStatus::Approved(user_id)
    } else {
        DeviceStatus::Declined
    };
    Ok(())
}
