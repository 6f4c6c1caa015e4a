//! The HTTP side: accept loop, optional TLS, `/health` and `/metrics`, access log, graceful
//! shutdown, credential reload on SIGHUP and the sweep of abandoned uploads.

use std::cell::RefCell;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_store::Backend;
use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use s3s::host::{S3Host, VirtualHost};
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{Body, S3Result};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

use crate::auth::{AccessGate, KeyAuth, KeyStore};
use crate::gateway::{Gateway, Uploads};
use crate::metrics::Metrics;

/// What the request handler learns about a request, for the access log and metrics.
#[derive(Debug, Clone, Copy)]
struct Notes {
    operation: &'static str,
    /// Body bytes actually received, when the operation streamed a body.
    body_bytes: Option<u64>,
}

tokio::task_local! {
    static NOTES: RefCell<Notes>;
}

/// Records the S3 operation of the request being answered.
pub(crate) fn note_operation(name: &str) {
    // s3s names are static strings; map to our own static copy to keep the cell `'static`.
    let name = OPERATION_NAMES
        .iter()
        .find(|n| **n == name)
        .copied()
        .unwrap_or("Other");
    let _ = NOTES.try_with(|n| n.borrow_mut().operation = name);
}

/// Records how many body bytes arrived (which can be fewer than announced).
pub(crate) fn note_body_bytes(bytes: u64) {
    let _ = NOTES.try_with(|n| n.borrow_mut().body_bytes = Some(bytes));
}

const OPERATION_NAMES: &[&str] = &[
    "AbortMultipartUpload",
    "CompleteMultipartUpload",
    "CopyObject",
    "CreateBucket",
    "CreateMultipartUpload",
    "DeleteBucket",
    "DeleteObject",
    "DeleteObjects",
    "GetBucketLocation",
    "GetBucketVersioning",
    "GetObject",
    "HeadBucket",
    "HeadObject",
    "ListBuckets",
    "ListMultipartUploads",
    "ListObjectVersions",
    "ListObjects",
    "ListObjectsV2",
    "ListParts",
    "PutObject",
    "UploadPart",
    "UploadPartCopy",
];

/// Certificate and key files for HTTPS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The region clients sign for and buckets report.
    pub region: String,
    /// Serve virtual-host style requests (`bucket.DOMAIN`) besides path style.
    pub domain: Option<String>,
    pub tls: Option<TlsFiles>,
    /// How long in-flight requests may take to finish after a shutdown request.
    pub shutdown_grace: Duration,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error("cannot load TLS {what} from {path}")]
    Tls {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("invalid --domain {0:?}: expected a host name such as s3.example.com")]
    Domain(String),
}

/// Path style always; virtual-host style for `bucket.<domain>`.
#[derive(Debug)]
struct Hosts {
    domain: String,
}

impl S3Host for Hosts {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
        match name
            .strip_suffix(self.domain.as_str())
            .and_then(|b| b.strip_suffix('.'))
        {
            Some(bucket) if !bucket.is_empty() => {
                Ok(VirtualHost::new(self.domain.as_str()).with_bucket(bucket))
            }
            _ => Ok(VirtualHost::new(name)),
        }
    }
}

struct State {
    service: S3Service,
    metrics: Arc<Metrics>,
    backend: Arc<dyn Backend>,
}

fn tls_acceptor(files: &TlsFiles) -> Result<TlsAcceptor, ServerError> {
    let tls_err = |what, path: &PathBuf| {
        let path = path.clone();
        move |e: Box<dyn std::error::Error + Send + Sync>| ServerError::Tls {
            what,
            path,
            source: e,
        }
    };
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| tls_err("certificate", &files.cert)(Box::new(e)))?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| tls_err("private key", &files.key)(Box::new(e)))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("settings", &files.cert)(Box::new(e)))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| tls_err("certificate and key", &files.cert)(Box::new(e)))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves the gateway on `listener` until `shutdown` resolves, then lets in-flight requests
/// finish (up to the grace period).
pub async fn serve(
    listener: TcpListener,
    gateway: Gateway,
    backend: Arc<dyn Backend>,
    uploads: Uploads,
    keys: Arc<KeyStore>,
    opts: ServerOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let tls = opts.tls.as_ref().map(tls_acceptor).transpose()?;
    let mut builder = S3ServiceBuilder::new(gateway);
    builder.set_auth(KeyAuth(keys.clone()));
    builder.set_access(AccessGate);
    if let Some(domain) = &opts.domain {
        if domain.is_empty() || domain.contains(['/', ':']) {
            return Err(ServerError::Domain(domain.clone()));
        }
        builder.set_host(Hosts {
            domain: domain.clone(),
        });
    }
    let state = Arc::new(State {
        service: builder.build(),
        metrics: Arc::new(Metrics::default()),
        backend,
    });
    let background = [
        tokio::spawn(reload_on_sighup(keys)),
        tokio::spawn(sweep_uploads(uploads)),
    ];

    let graceful = GracefulShutdown::new();
    let conn_builder = ConnBuilder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let svc = service_fn(move |req| handle(state.clone(), req, peer));
        match &tls {
            None => {
                let conn = conn_builder.serve_connection(TokioIo::new(stream), svc);
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let conn_builder = conn_builder.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let stream = match acceptor.accept(stream).await {
                        Ok(stream) => stream,
                        Err(e) => {
                            tracing::debug!(error = %e, %peer, "TLS handshake failed");
                            return;
                        }
                    };
                    let conn = conn_builder.serve_connection(TokioIo::new(stream), svc);
                    let _ = watcher.watch(conn.into_owned()).await;
                });
            }
        }
    }
    drop(listener);
    tracing::info!("shutting down: waiting for requests in flight");
    if tokio::time::timeout(opts.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after the grace period; stopping anyway");
    }
    for task in background {
        task.abort();
    }
    Ok(())
}

/// A request with no signature in its headers or query.
fn is_anonymous(req: &Request<Incoming>) -> bool {
    let signed_query = req.uri().query().is_some_and(|q| {
        q.split('&')
            .any(|p| p.starts_with("X-Amz-Signature=") || p.starts_with("Signature="))
    });
    !signed_query && !req.headers().contains_key(header::AUTHORIZATION)
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut res = Response::new(Body::from(Bytes::from(body)));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    res
}

fn header_u64(headers: &http::HeaderMap, name: &str) -> u64 {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Response<Body>, Infallible> {
    // Unsigned GETs of these two paths are ours; signed ones reach buckets of those names.
    if req.method() == Method::GET && is_anonymous(&req) {
        match req.uri().path() {
            "/health" => return Ok(health(&state).await),
            "/metrics" => {
                let body = state.metrics.render();
                return Ok(text(StatusCode::OK, "text/plain; version=0.0.4", body));
            }
            _ => {}
        }
    }
    let started = Instant::now();
    state.metrics.start();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let announced = header_u64(req.headers(), header::CONTENT_LENGTH.as_str());
    let req = req.map(Body::from);
    let start = Notes {
        operation: "Unknown",
        body_bytes: None,
    };
    let (result, notes) = NOTES
        .scope(RefCell::new(start), async {
            let result = state.service.call(req).await;
            (result, NOTES.with(|n| *n.borrow()))
        })
        .await;
    let (op, bytes_in) = (notes.operation, notes.body_bytes.unwrap_or(announced));
    let response = result.unwrap_or_else(|e| {
        tracing::error!(error = ?e, "request failed");
        text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            String::new(),
        )
    });
    let keeps_alive = response.headers().contains_key(header::TRANSFER_ENCODING);
    let response = if op == "CompleteMultipartUpload" && keeps_alive {
        response.map(one_xml_declaration)
    } else {
        response
    };
    let status = response.status().as_u16();
    let bytes_out = if method == Method::HEAD {
        0
    } else {
        header_u64(response.headers(), header::CONTENT_LENGTH.as_str())
    };
    let elapsed = started.elapsed();
    state
        .metrics
        .finish(op, status, elapsed, bytes_in, bytes_out);
    tracing::info!(
        target: "ferry::access",
        %peer, %method, path = %path, op, status, bytes_in, bytes_out,
        ms = elapsed.as_secs_f64() * 1000.0,
    );
    Ok(response)
}

/// A slow CompleteMultipartUpload is answered 200 at once with an XML declaration, then
/// whitespace while the object is assembled, then the result. s3s 0.14 gives a late *error*
/// its own declaration, which XML parsers refuse after the first one, so the client could not
/// read the error. This drops every declaration after the first chunk.
fn one_xml_declaration(body: Body) -> Body {
    use futures::StreamExt as _;
    let mut first = true;
    let frames = body.map(move |chunk| {
        let mut chunk = chunk?;
        if !std::mem::take(&mut first)
            && chunk.starts_with(b"<?xml")
            && let Some(end) = chunk.windows(2).position(|w| w == b"?>")
        {
            chunk = chunk.slice(end + 2..);
        }
        Ok::<_, s3s::StdError>(hyper::body::Frame::data(chunk))
    });
    Body::http_body(http_body_util::StreamBody::new(frames))
}

async fn health(state: &State) -> Response<Body> {
    match state.backend.list_buckets().await {
        Ok(buckets) => text(
            StatusCode::OK,
            "application/json",
            format!("{{\"status\":\"ok\",\"buckets\":{}}}\n", buckets.len()),
        ),
        Err(e) => {
            tracing::error!(error = %crate::error::error_chain(&e), "health check failed");
            // OneDrive's answer says what to mend (an expired sign-in, a wrong secret); a
            // local error could name local paths, so it stays in the log.
            let reason = match &e {
                ferry_store::Error::Graph(_)
                | ferry_store::Error::SignIn(_)
                | ferry_store::Error::SlowDown { .. } => e.to_string(),
                _ => "storage not readable".to_owned(),
            };
            let body = serde_json::json!({"status": "unavailable", "reason": reason});
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "application/json",
                format!("{body}\n"),
            )
        }
    }
}

async fn reload_on_sighup(keys: Arc<KeyStore>) {
    let Some(file) = keys.file().map(PathBuf::from) else {
        return;
    };
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    else {
        return;
    };
    while hangups.recv().await.is_some() {
        match keys.reload() {
            Ok(n) => tracing::info!(file = %file.display(), keys = n, "credentials reloaded"),
            Err(e) => tracing::error!(error = %crate::error::error_chain(&e),
                "credentials not reloaded; the previous keys stay in force"),
        }
    }
}

async fn sweep_uploads(uploads: Uploads) {
    let period = (uploads.max_age() / 4).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        uploads.sweep().await;
    }
}
