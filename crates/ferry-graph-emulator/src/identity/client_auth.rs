//! Tenant and application lookup, and client authentication with a secret (post or
//! basic) or a certificate-signed client assertion.

use std::collections::HashMap;

use axum::http::HeaderMap;
use serde_json::Value;

use super::cert::Certificate;
use super::errors::AadError;
use super::jwt::Parts;
use crate::config::App;
use crate::state::Shared;

pub type Form = HashMap<String, String>;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

pub fn is_generic_tenant(t: &str) -> bool {
    matches!(
        t.to_ascii_lowercase().as_str(),
        "common" | "organizations" | "consumers"
    )
}

/// Fails with AADSTS90002 unless the tenant in the URL is known or generic.
pub fn check_tenant(shared: &Shared, tenant: &str) -> Result<(), AadError> {
    if is_generic_tenant(tenant)
        || shared
            .config
            .apps
            .iter()
            .any(|a| a.tenant.eq_ignore_ascii_case(tenant))
    {
        return Ok(());
    }
    Err(AadError::new(
        "invalid_request",
        90002,
        format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
        ),
    ))
}

/// The app registration for `client_id` in the URL's tenant (any tenant for generic ones).
pub fn find_app<'a>(
    shared: &'a Shared,
    tenant: &str,
    client_id: &str,
) -> Result<&'a App, AadError> {
    shared
        .config
        .apps
        .iter()
        .find(|a| {
            a.client_id.eq_ignore_ascii_case(client_id)
                && (is_generic_tenant(tenant) || a.tenant.eq_ignore_ascii_case(tenant))
        })
        .ok_or_else(|| {
            AadError::new(
                "unauthorized_client",
                700016,
                format!(
                    "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
                ),
            )
        })
}

/// The client id from the form or from HTTP Basic credentials.
pub fn client_id(form: &Form, headers: &HeaderMap) -> Option<String> {
    form.get("client_id")
        .cloned()
        .or_else(|| basic_credentials(headers).map(|(id, _)| id))
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = String::from_utf8(crate::util::b64_decode(encoded.trim())?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let dec = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .ok()
            .map(|c| c.into_owned())
    };
    Some((dec(id)?, dec(secret)?))
}

/// Authenticates the client. Returns whether credentials were presented and valid;
/// `required` makes their absence an error (confidential-client grants).
pub fn authenticate(
    shared: &Shared,
    app: &App,
    form: &Form,
    headers: &HeaderMap,
    token_urls: &[String],
    required: bool,
) -> Result<bool, AadError> {
    let secret = form
        .get("client_secret")
        .cloned()
        .or_else(|| basic_credentials(headers).map(|(_, s)| s));
    if let Some(secret) = secret {
        return match &app.client_secret {
            Some(expected) if ring_eq(expected, &secret) => Ok(true),
            _ => Err(AadError::new(
                "invalid_client",
                7000215,
                format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                    app.client_id
                ),
            )),
        };
    }
    if let Some(assertion) = form.get("client_assertion") {
        if form.get("client_assertion_type").map(String::as_str) != Some(ASSERTION_TYPE) {
            return Err(AadError::new(
                "invalid_request",
                90014,
                "The request body must contain a valid 'client_assertion_type' parameter.",
            ));
        }
        check_assertion(shared, app, assertion, token_urls)?;
        return Ok(true);
    }
    if required {
        return Err(AadError::new(
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ));
    }
    Ok(false)
}

/// Compares digests rather than the secrets, so timing reveals nothing useful.
fn ring_eq(a: &str, b: &str) -> bool {
    use sha2::Digest as _;
    sha2::Sha256::digest(a.as_bytes()) == sha2::Sha256::digest(b.as_bytes())
}

fn invalid_assertion(code: u32, message: impl Into<String>) -> AadError {
    AadError::new("invalid_client", code, message)
}

fn check_assertion(
    shared: &Shared,
    app: &App,
    assertion: &str,
    token_urls: &[String],
) -> Result<(), AadError> {
    let parts = Parts::split(assertion)
        .ok_or_else(|| invalid_assertion(50027, "JWT token is invalid or malformed."))?;
    let cert = app
        .certificate_pem
        .as_deref()
        .and_then(|pem| Certificate::from_pem(pem).ok());
    let x5t = parts.header.get("x5t").and_then(Value::as_str);
    let x5t256 = parts.header.get("x5t#S256").and_then(Value::as_str);
    let key_found = cert.as_ref().is_some_and(|c| {
        (x5t.is_some() || x5t256.is_some())
            && x5t.is_none_or(|t| t == c.x5t)
            && x5t256.is_none_or(|t| t == c.x5t_s256)
    });
    let Some(cert) = cert.filter(|_| key_found) else {
        return Err(invalid_assertion(
            700027,
            format!(
                "Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '{}']",
                x5t.or(x5t256).unwrap_or("")
            ),
        ));
    };
    if !parts.verify_rsa(&cert.public_key) {
        return Err(invalid_assertion(
            700027,
            "Client assertion failed signature validation.",
        ));
    }
    let claim = |k: &str| parts.claims.get(k).and_then(Value::as_str);
    if claim("iss") != Some(app.client_id.as_str()) || claim("sub") != Some(app.client_id.as_str())
    {
        return Err(invalid_assertion(
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials .",
        ));
    }
    let aud_ok = match parts.claims.get("aud") {
        Some(Value::String(a)) => token_urls.iter().any(|u| u == a),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .any(|a| token_urls.iter().any(|u| u == a)),
        _ => false,
    };
    if !aud_ok {
        return Err(invalid_assertion(
            700016,
            "Client assertion audience claim does not match the token endpoint.",
        ));
    }
    let now = crate::util::now_secs();
    let exp = parts.claims.get("exp").and_then(Value::as_i64);
    let nbf = parts.claims.get("nbf").and_then(Value::as_i64);
    // Azure AD allows a few minutes of clock skew.
    const SKEW: i64 = 300;
    let in_range = exp.is_some_and(|e| e + SKEW > now) && nbf.is_none_or(|n| n - SKEW <= now);
    if !in_range {
        return Err(invalid_assertion(
            700024,
            "Client assertion is not within its valid time range.",
        ));
    }
    let Some(jti) = claim("jti") else {
        return Err(invalid_assertion(
            50027,
            "JWT token is invalid or malformed. The 'jti' claim is required.",
        ));
    };
    let mut store = shared.identity.lock();
    if store.jtis.contains_key(jti) {
        return Err(invalid_assertion(
            7000273,
            "The client assertion has already been used (duplicate 'jti').",
        ));
    }
    store.jtis.insert(jti.to_string(), exp.unwrap_or(now));
    Ok(())
}
