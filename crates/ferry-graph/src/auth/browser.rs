//! Interactive sign-in in a browser: authorization code with PKCE (S256), answered on a
//! loopback redirect, as Microsoft recommends for desktop and command-line apps.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::error::{Error, IdentityErrorBody, Result};

/// A prepared sign-in: the URL to open, and what the answer must match.
#[derive(Debug)]
pub(crate) struct Pending {
    pub url: String,
    pub redirect_uri: String,
    pub verifier: String,
    state: String,
    listener: TcpListener,
}

fn encode(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

pub(crate) async fn prepare(authorize_url: &str, client_id: &str, scopes: &str) -> Result<Pending> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|source| Error::Io {
            op: "listen for the sign-in redirect on",
            path: "127.0.0.1".into(),
            source,
        })?;
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    let redirect_uri = format!("http://localhost:{port}");
    let verifier = random_token();
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let state = random_token();
    let url = format!(
        "{authorize_url}?client_id={}&response_type=code&redirect_uri={}&response_mode=query\
         &scope={}&state={state}&code_challenge={challenge}&code_challenge_method=S256",
        encode(client_id),
        encode(&redirect_uri),
        encode(scopes),
    );
    Ok(Pending {
        url,
        redirect_uri,
        verifier,
        state,
        listener,
    })
}

/// Waits for the browser to come back to the loopback address; returns the code.
pub(crate) async fn wait_for_code(pending: &Pending) -> Result<String> {
    loop {
        let (mut stream, _) = pending
            .listener
            .accept()
            .await
            .map_err(|source| Error::Io {
                op: "accept the sign-in redirect on",
                path: pending.redirect_uri.clone(),
                source,
            })?;
        let mut buf = vec![0u8; 8192];
        let n = stream.read(&mut buf).await.unwrap_or(0);
        let request = String::from_utf8_lossy(&buf[..n]);
        let target = request.split_whitespace().nth(1).unwrap_or_default();
        let query = target.split_once('?').map(|(_, q)| q).unwrap_or_default();
        let params: Vec<(String, String)> = url_pairs(query);
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        if get("state").is_none() && get("code").is_none() && get("error").is_none() {
            // A favicon or a stray request: not the answer.
            let _ = stream
                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                .await;
            continue;
        }
        let (status, page) = if get("code").is_some() {
            ("200 OK", "Signed in to ferry. You can close this window.")
        } else {
            ("400 Bad Request", "Sign-in failed; see the terminal.")
        };
        let body = format!("<!doctype html><title>ferry</title><p>{page}</p>");
        let _ = stream
            .write_all(
                format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            )
            .await;
        if let Some(error) = get("error") {
            return Err(IdentityErrorBody {
                error,
                error_description: get("error_description").unwrap_or_default(),
                error_codes: Vec::new(),
            }
            .into());
        }
        if get("state").as_deref() != Some(pending.state.as_str()) {
            return Err(Error::protocol(
                "the sign-in answer carries a different state; it was not for this request",
            ));
        }
        return get("code").ok_or_else(|| Error::protocol("the sign-in answer has no code"));
    }
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            Some((decode(k), decode(v)))
        })
        .collect()
}
