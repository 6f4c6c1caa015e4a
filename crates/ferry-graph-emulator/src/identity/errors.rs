//! Microsoft identity platform error responses:
//! `{error, error_description: "AADSTSnnnn: ...", error_codes, timestamp, trace_id,
//! correlation_id, error_uri}` with 400, or 401 for `invalid_client`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone)]
pub struct AadError {
    pub error: &'static str,
    pub code: u32,
    pub message: String,
    /// Echoed `client-request-id`, used as the correlation id.
    pub correlation_id: Option<String>,
}

impl AadError {
    pub fn new(error: &'static str, code: u32, message: impl Into<String>) -> Self {
        AadError {
            error,
            code,
            message: message.into(),
            correlation_id: None,
        }
    }

    pub fn missing(param: &str) -> Self {
        Self::new(
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{param}'."),
        )
    }

    pub fn status(&self) -> StatusCode {
        if self.error == "invalid_client" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        }
    }
}

impl IntoResponse for AadError {
    fn into_response(self) -> Response {
        let trace_id = crate::util::new_guid();
        let status = self.status();
        let correlation_id = self.correlation_id.unwrap_or_else(crate::util::new_guid);
        let now = time::OffsetDateTime::now_utc();
        let timestamp = format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second()
        );
        let description = format!(
            "AADSTS{}: {} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {timestamp}",
            self.code, self.message
        );
        tracing::debug!(error = self.error, code = self.code, "identity error");
        let body = serde_json::json!({
            "error": self.error,
            "error_description": description,
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        });
        (status, axum::Json(body)).into_response()
    }
}
