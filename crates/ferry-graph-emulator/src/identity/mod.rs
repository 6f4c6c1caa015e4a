//! The Microsoft identity platform (v2.0 endpoints) side of the emulator.

pub mod authorize;
pub mod cert;
pub mod client_auth;
pub mod device;
pub mod errors;
pub mod jwt;
pub mod store;
pub mod token_endpoint;
pub mod tokens;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use serde_json::json;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token_endpoint::token))
        .route("/{tenant}/oauth2/v2.0/devicecode", post(device::devicecode))
        .route("/{tenant}/oauth2/v2.0/authorize", get(authorize::authorize))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(openid_configuration),
        )
}

/// OpenID discovery, for clients that look endpoints up from the authority.
async fn openid_configuration(
    State(shared): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if let Err(e) = client_auth::check_tenant(&shared, &tenant) {
        return e.into_response();
    }
    let base = crate::state::base_url(&shared, &headers);
    axum::Json(json!({
        "issuer": format!("{base}/{tenant}/v2.0"),
        "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
        "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
        "device_authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/devicecode"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "response_types_supported": ["code"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "tenant_region_scope": null,
    }))
    .into_response()
}
