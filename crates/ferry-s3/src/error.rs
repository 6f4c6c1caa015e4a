//! The one place where storage errors become S3 errors (status code + S3 code + message).

use ferry_store::Error;
use s3s::{S3Error, S3ErrorCode};

/// Maps a storage error to the S3 error a client expects. Server-side failures are logged
/// here with their full cause and reach the client without local paths.
pub(crate) fn to_s3(err: Error) -> S3Error {
    let (code, message) = match &err {
        Error::NoSuchBucket { .. } => (S3ErrorCode::NoSuchBucket, err.to_string()),
        Error::BucketExists { .. } => (S3ErrorCode::BucketAlreadyOwnedByYou, err.to_string()),
        Error::BucketNotEmpty { .. } => (S3ErrorCode::BucketNotEmpty, err.to_string()),
        Error::InvalidBucketName { .. } => (S3ErrorCode::InvalidBucketName, err.to_string()),
        Error::NoSuchKey { .. } => (S3ErrorCode::NoSuchKey, err.to_string()),
        Error::InvalidKey { .. } => (S3ErrorCode::InvalidArgument, err.to_string()),
        Error::KeyTooLong { .. } => (S3ErrorCode::KeyTooLongError, err.to_string()),
        Error::RangeNotSatisfiable { .. } => (S3ErrorCode::InvalidRange, err.to_string()),
        Error::PreconditionFailed { .. } => (S3ErrorCode::PreconditionFailed, err.to_string()),
        Error::BadDigest { .. } => (S3ErrorCode::BadDigest, err.to_string()),
        Error::SlowDown { retry_after } => {
            tracing::warn!(error = %error_chain(&err), "answering SlowDown");
            let mut e = S3Error::with_message(
                S3ErrorCode::SlowDown,
                "the storage service behind the gateway is throttling; retry after a pause",
            );
            e.set_status_code(http::StatusCode::SERVICE_UNAVAILABLE);
            let seconds = retry_after.map_or(1, |d| d.as_secs().max(1));
            let mut headers = http::HeaderMap::new();
            headers.insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
            e.set_headers(headers);
            return e;
        }
        Error::SignIn(_) => {
            tracing::error!(error = %error_chain(&err), "OneDrive refuses the sign-in");
            let mut e = S3Error::with_message(
                S3ErrorCode::ServiceUnavailable,
                "the gateway cannot sign in to OneDrive; its log and /health say why",
            );
            e.set_status_code(http::StatusCode::SERVICE_UNAVAILABLE);
            return e;
        }
        _ if err.is_storage_full() => {
            tracing::error!(error = %error_chain(&err), "storage full");
            let mut e = S3Error::with_message(
                S3ErrorCode::Custom("XFerryStorageFull".into()),
                "the gateway's storage is full; nothing was stored",
            );
            e.set_status_code(http::StatusCode::INSUFFICIENT_STORAGE);
            return e;
        }
        _ => {
            tracing::error!(error = %error_chain(&err), "storage failure");
            (
                S3ErrorCode::InternalError,
                "the gateway could not complete the request; its log has the cause".to_owned(),
            )
        }
    };
    S3Error::with_message(code, message)
}

/// `err: cause: cause` on one line.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_is_slow_down_with_retry_after() {
        let e = to_s3(Error::SlowDown {
            retry_after: Some(std::time::Duration::from_secs(7)),
        });
        assert_eq!(e.code(), &S3ErrorCode::SlowDown);
        assert_eq!(e.status_code(), Some(http::StatusCode::SERVICE_UNAVAILABLE));
        let retry = e.headers().and_then(|h| h.get(http::header::RETRY_AFTER));
        assert_eq!(retry.and_then(|v| v.to_str().ok()), Some("7"));
    }
}
