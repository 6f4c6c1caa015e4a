//! The tracing subscriber: human-readable on a terminal, JSON lines otherwise.
//! `FERRY_LOG` (or `RUST_LOG`) sets the filter, `FERRY_LOG_FORMAT=text|json` the format.

use tracing_subscriber::EnvFilter;

pub fn init(terminal: bool) {
    let filter = std::env::var("FERRY_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        // s3s logs every refused request as an error; our access log already has them.
        // tokio-postgres logs the server's NOTICEs at info.
        .unwrap_or_else(|_| "info,s3s=off,tokio_postgres=warn".into());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match std::env::var("FERRY_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") => false,
        _ => !terminal,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.compact().init();
    }
}
