//! Issuing tokens: access tokens (HS256 JWTs only the emulator's Graph verifies),
//! rotating opaque refresh tokens, and v2.0 id tokens for MSAL-style caches.

use serde_json::{Value, json};

use super::store::{Grant, RefreshRecord};
use crate::state::Shared;
use crate::util::{b64url, now_secs, random_token};

/// The Graph resource, by URI and by app id.
pub const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

const OIDC: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// Permissions granted for `.default` (the app's configured permissions).
const DEFAULT_DELEGATED: [&str; 3] = ["Files.ReadWrite.All", "Sites.ReadWrite.All", "User.Read"];
pub const APP_ROLES: [&str; 2] = ["Files.ReadWrite.All", "Sites.ReadWrite.All"];

pub fn split_scopes(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

/// Graph permission names in a scope list, without the resource prefix; `.default`
/// expands to the configured permissions.
pub fn graph_scopes(scopes: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in scopes {
        if OIDC.contains(&s.to_ascii_lowercase().as_str()) {
            continue;
        }
        let bare = s
            .strip_prefix(GRAPH_RESOURCE)
            .or_else(|| s.strip_prefix(GRAPH_APP_ID))
            .map(|r| r.trim_start_matches('/'))
            .unwrap_or(s);
        if bare == ".default" {
            out.extend(DEFAULT_DELEGATED.iter().map(|d| d.to_string()));
        } else {
            out.push(bare.to_string());
        }
    }
    if out.is_empty() {
        out.push("User.Read".into());
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|s| seen.insert(s.to_ascii_lowercase()));
    out
}

fn has(scopes: &[String], wanted: &str) -> bool {
    scopes.iter().any(|s| s.eq_ignore_ascii_case(wanted))
}

fn lifetime(shared: &Shared) -> i64 {
    shared.config.token_lifetime.as_secs().max(1) as i64
}

/// An app-only token response for the client-credentials grant.
pub fn app_token_response(shared: &Shared, tenant: &str, client_id: &str) -> Value {
    let now = now_secs();
    let exp = now + lifetime(shared);
    let claims = json!({
        "aud": GRAPH_RESOURCE,
        "iss": format!("https://sts.windows.net/{tenant}/"),
        "iat": now, "nbf": now, "exp": exp,
        "appid": client_id,
        "idtyp": "app",
        "oid": service_principal_id(client_id),
        "sub": service_principal_id(client_id),
        "roles": APP_ROLES,
        "tid": tenant,
        "uti": random_token(),
        "ver": "1.0",
    });
    json!({
        "token_type": "Bearer",
        "expires_in": lifetime(shared),
        "ext_expires_in": lifetime(shared),
        "access_token": super::jwt::sign_hs256(&shared.signing_key, &claims),
    })
}

/// A stable object id for an app's service principal.
fn service_principal_id(client_id: &str) -> String {
    use sha2::Digest as _;
    let h = sha2::Sha256::digest(format!("sp:{client_id}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

/// A delegated token response; stores a fresh refresh token when `offline_access` was
/// requested. `tenant` is the tenant id the user belongs to.
pub fn delegated_response(shared: &Shared, grant: &Grant, base: &str, client_info: bool) -> Value {
    let now = now_secs();
    let life = lifetime(shared);
    let user = grant
        .user_id
        .as_deref()
        .and_then(|id| shared.config.users.iter().find(|u| u.id == id));
    let (oid, upn, name) = user
        .map(|u| {
            (
                u.id.clone(),
                u.user_principal_name.clone(),
                u.display_name.clone(),
            )
        })
        .unwrap_or_default();
    let scopes = graph_scopes(&grant.scopes);
    let claims = json!({
        "aud": GRAPH_RESOURCE,
        "iss": format!("https://sts.windows.net/{}/", grant.tenant),
        "iat": now, "nbf": now, "exp": now + life,
        "appid": grant.client_id,
        "idtyp": "user",
        "name": name,
        "oid": oid,
        "sub": oid,
        "scp": scopes.join(" "),
        "tid": grant.tenant,
        "upn": upn,
        "unique_name": upn,
        "uti": random_token(),
        "ver": "1.0",
    });
    let mut granted = scopes.clone();
    for o in ["openid", "profile", "email"] {
        if has(&grant.scopes, "openid") {
            granted.push(o.to_string());
        }
    }
    let mut body = json!({
        "token_type": "Bearer",
        "scope": granted.join(" "),
        "expires_in": life,
        "ext_expires_in": life,
        "access_token": super::jwt::sign_hs256(&shared.signing_key, &claims),
    });
    if has(&grant.scopes, "offline_access") {
        let token = format!("0.{}", random_token() + &random_token());
        let expires_at = now + shared.config.refresh_token_lifetime.as_secs() as i64;
        shared.identity.lock().refresh.insert(
            token.clone(),
            RefreshRecord {
                grant: grant.clone(),
                expires_at,
                redeemed: false,
            },
        );
        body["refresh_token"] = json!(token);
    }
    if has(&grant.scopes, "openid") {
        let mut id_claims = json!({
            "aud": grant.client_id,
            "iss": format!("{base}/{}/v2.0", grant.tenant),
            "iat": now, "nbf": now, "exp": now + life,
            "name": name,
            "oid": oid,
            "preferred_username": upn,
            "sub": b64url(oid.as_bytes()),
            "tid": grant.tenant,
            "uti": random_token(),
            "ver": "2.0",
        });
        if let Some(nonce) = &grant.nonce {
            id_claims["nonce"] = json!(nonce);
        }
        body["id_token"] = json!(super::jwt::sign_hs256(&shared.signing_key, &id_claims));
    }
    if client_info {
        let info = json!({"uid": oid, "utid": grant.tenant});
        body["client_info"] = json!(b64url(info.to_string().as_bytes()));
    }
    body
}
