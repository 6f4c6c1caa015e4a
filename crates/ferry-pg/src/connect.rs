//! Where the database is and how to reach it: `DATABASE_URL` (or `DATABASE_URL_FILE`), else
//! the libpq `PG*` variables, else nothing (and ferry uses its managed cluster).
//!
//! TLS follows libpq's `sslmode`: `disable`; `prefer` (the default) and `require` encrypt
//! without checking the certificate, as libpq does; `verify-ca` and `verify-full` check it
//! against `sslrootcert` (Supabase publishes its CA certificate for this).

use std::path::PathBuf;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject as _;
use tokio_postgres::config::SslMode;

use crate::error::{Error, Result};

/// Connection settings. `Debug` never shows the password.
#[derive(Clone)]
pub struct Settings {
    pub config: tokio_postgres::Config,
    pub verify: Verify,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("host", &self.config.get_hosts())
            .field("port", &self.config.get_ports())
            .field("user", &self.config.get_user())
            .field("dbname", &self.config.get_dbname())
            .field(
                "password",
                &self.config.get_password().map(|_| "<redacted>"),
            )
            .field("verify", &self.verify)
            .finish()
    }
}

/// Whether and how the server's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verify {
    /// Encrypt if asked, trust any certificate (`prefer`, `require`).
    Nothing,
    /// Check the chain against these roots (`verify-ca`), and the host name (`verify-full`).
    Ca { root_cert: PathBuf, host_name: bool },
}

impl Settings {
    pub fn from_config(config: tokio_postgres::Config) -> Self {
        Self {
            config,
            verify: Verify::Nothing,
        }
    }

    /// From the environment; None when neither `DATABASE_URL(_FILE)` nor `PGHOST` /
    /// `PGDATABASE` is set.
    pub fn from_env() -> Result<Option<Self>> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let url = match (var("DATABASE_URL"), var("DATABASE_URL_FILE")) {
            (Some(url), _) => Some(url),
            (None, Some(file)) => Some(
                ferry_private::read(std::path::Path::new(&file))?
                    .trim()
                    .to_owned(),
            ),
            (None, None) => None,
        };
        if let Some(url) = url {
            return Self::parse(&url).map(Some);
        }
        if var("PGHOST").is_none() && var("PGDATABASE").is_none() {
            return Ok(None);
        }
        let mut text = String::new();
        for (var_name, key) in [
            ("PGHOST", "host"),
            ("PGPORT", "port"),
            ("PGUSER", "user"),
            ("PGDATABASE", "dbname"),
            ("PGSSLMODE", "sslmode"),
            ("PGSSLROOTCERT", "sslrootcert"),
            ("PGAPPNAME", "application_name"),
        ] {
            if let Some(value) = var(var_name) {
                text.push_str(&format!("{key}='{}' ", value.replace('\'', "\\'")));
            }
        }
        let mut settings = Self::parse(&text)?;
        let password = match (var("PGPASSWORD"), var("PGPASSWORD_FILE")) {
            (Some(p), _) => Some(p),
            (None, Some(file)) => Some(
                ferry_private::read(std::path::Path::new(&file))?
                    .trim()
                    .to_owned(),
            ),
            (None, None) => None,
        };
        if let Some(password) = password {
            settings.config.password(password);
        }
        Ok(Some(settings))
    }

    /// A `postgresql://` URL or a libpq `key=value` string. `sslmode` and `sslrootcert` are
    /// read here (tokio-postgres knows only part of them).
    pub fn parse(text: &str) -> Result<Self> {
        let (rest, mode, root_cert) = take_tls_params(text);
        let mut config = tokio_postgres::Config::from_str(&rest)
            .map_err(|e| Error::Config(format!("cannot parse the connection string: {e}")))?;
        let mode = mode.unwrap_or_else(|| "prefer".into());
        let verify = match mode.as_str() {
            "disable" => {
                config.ssl_mode(SslMode::Disable);
                Verify::Nothing
            }
            "allow" | "prefer" => {
                config.ssl_mode(SslMode::Prefer);
                Verify::Nothing
            }
            "require" if root_cert.is_none() => {
                config.ssl_mode(SslMode::Require);
                Verify::Nothing
            }
            // libpq: require with a root certificate behaves like verify-ca.
            "require" | "verify-ca" | "verify-full" => {
                config.ssl_mode(SslMode::Require);
                let root_cert = root_cert.ok_or_else(|| {
                    Error::Config(format!(
                        "sslmode={mode} needs sslrootcert (the server's CA certificate file)"
                    ))
                })?;
                Verify::Ca {
                    root_cert: root_cert.into(),
                    host_name: mode == "verify-full",
                }
            }
            other => return Err(Error::Config(format!("unknown sslmode '{other}'"))),
        };
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(15));
        }
        if config.get_application_name().is_none() {
            config.application_name("ferry");
        }
        let settings = Self { config, verify };
        settings.refuse_transaction_pooler()?;
        Ok(settings)
    }

    /// ferry holds a session-level advisory lock for a whole sync run; a transaction-mode
    /// pooler (Supabase's port 6543, PgBouncer) would hand the session to someone else.
    fn refuse_transaction_pooler(&self) -> Result<()> {
        if self.config.get_ports().contains(&6543) {
            return Err(Error::Config(
                "port 6543 is Supabase's transaction pooler, which cannot keep ferry's session \
                 (advisory locks, COPY); use the direct connection or the session pooler \
                 (port 5432)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Opens a connection; its driver runs on a background task.
    pub async fn connect(&self) -> Result<tokio_postgres::Client> {
        match self.config.get_ssl_mode() {
            SslMode::Disable => {
                let (client, conn) = self.config.connect(tokio_postgres::NoTls).await?;
                spawn_connection(conn);
                Ok(client)
            }
            _ => {
                let tls = tokio_postgres_rustls::MakeRustlsConnect::new(self.tls_config()?);
                let (client, conn) = self.config.connect(tls).await?;
                spawn_connection(conn);
                Ok(client)
            }
        }
    }

    fn tls_config(&self) -> Result<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(format!("TLS: {e}")))?;
        let config = match &self.verify {
            Verify::Nothing => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth(),
            Verify::Ca {
                root_cert,
                host_name,
            } => {
                let pem = std::fs::read(root_cert).map_err(Error::io("read", root_cert))?;
                let mut roots = rustls::RootCertStore::empty();
                for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
                    let cert =
                        cert.map_err(|e| Error::Config(format!("{}: {e}", root_cert.display())))?;
                    roots
                        .add(cert)
                        .map_err(|e| Error::Config(format!("{}: {e}", root_cert.display())))?;
                }
                let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .map_err(|e| Error::Config(format!("TLS: {e}")))?;
                let verifier: Arc<dyn rustls::client::danger::ServerCertVerifier> = if *host_name {
                    verifier
                } else {
                    Arc::new(ChainOnly(verifier))
                };
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(verifier)
                    .with_no_client_auth()
            }
        };
        Ok(config)
    }
}

/// A connection to `config` without TLS (the managed cluster, on loopback).
pub async fn connect_config(config: &tokio_postgres::Config) -> Result<tokio_postgres::Client> {
    let mut config = config.clone();
    config.ssl_mode(SslMode::Disable);
    Settings::from_config(config).connect().await
}

fn spawn_connection<S, T>(conn: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "database connection closed");
        }
    });
}

/// Splits `sslmode` and `sslrootcert` out of a URL's query or a key=value string.
fn take_tls_params(text: &str) -> (String, Option<String>, Option<String>) {
    let (mut mode, mut root) = (None, None);
    let mut take = |key: &str, value: &str| match key {
        "sslmode" => {
            mode = Some(value.to_owned());
            true
        }
        "sslrootcert" => {
            root = Some(value.to_owned());
            true
        }
        _ => false,
    };
    let rest = if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        match text.split_once('?') {
            Some((base, query)) => {
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|pair| {
                        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                        !take(k, &percent_decode(v))
                    })
                    .collect();
                if kept.is_empty() {
                    base.to_owned()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
            None => text.to_owned(),
        }
    } else {
        text.split_whitespace()
            .filter(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                !take(k.trim(), v.trim().trim_matches('\''))
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    (rest, mode, root)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        if bytes[i] == b'%'
            && let Some(Ok(b)) = hex.map(|h| u8::from_str_radix(h, 16))
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// libpq's `require`: encrypted, but any certificate is accepted.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// libpq's `verify-ca`: the chain must lead to the root, whatever the host name.
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &rustls_pki_types::CertificateDer<'_>,
        intermediates: &[rustls_pki_types::CertificateDer<'_>],
        server_name: &rustls_pki_types::ServerName<'_>,
        ocsp: &[u8],
        now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_are_read_like_libpq() {
        let s =
            Settings::parse("postgresql://u:p%40ss@db.example.com:5432/postgres?sslmode=require")
                .unwrap();
        assert_eq!(s.config.get_ssl_mode(), SslMode::Require);
        assert_eq!(s.verify, Verify::Nothing);
        assert_eq!(s.config.get_password(), Some(&b"p@ss"[..]));
        assert!(
            !format!("{s:?}").contains("p@ss"),
            "Debug hides the password"
        );

        let s = Settings::parse(
            "postgresql://u@h/db?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.crt&application_name=x",
        )
        .unwrap();
        assert_eq!(
            s.verify,
            Verify::Ca {
                root_cert: "/etc/ca.crt".into(),
                host_name: true
            }
        );
        assert_eq!(s.config.get_application_name(), Some("x"));

        let s = Settings::parse("host=h dbname=d sslmode=disable").unwrap();
        assert_eq!(s.config.get_ssl_mode(), SslMode::Disable);
        assert_eq!(
            Settings::parse("postgresql://u@h/db")
                .unwrap()
                .config
                .get_ssl_mode(),
            SslMode::Prefer
        );

        let err = Settings::parse("postgresql://u@h/db?sslmode=verify-ca").unwrap_err();
        assert!(err.to_string().contains("sslrootcert"), "{err}");
        let err = Settings::parse("postgresql://u@pooler.supabase.com:6543/postgres").unwrap_err();
        assert!(err.to_string().contains("session pooler"), "{err}");
    }
}
