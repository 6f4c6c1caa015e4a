//! Graph's error envelope: `{"error":{"code","message","innerError":{"date",
//! "request-id","client-request-id"}}}`. The context layer fills in the request ids.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::ops::OpError;

#[derive(Debug, Clone)]
pub struct GraphError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub headers: Vec<(HeaderName, String)>,
}

impl GraphError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        GraphError {
            status,
            code: code.to_string(),
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers
            .push((HeaderName::from_static(name), value.into()));
        self
    }

    pub fn item_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "itemNotFound",
            "The resource could not be found.",
        )
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalidRequest", message)
    }

    pub fn denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "accessDenied", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "generalException",
            message,
        )
    }

    /// The body, with the request ids known to the caller.
    pub fn body(&self, request_id: &str, client_request_id: &str) -> serde_json::Value {
        json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": {
                    "date": crate::util::iso_now_precise(),
                    "request-id": request_id,
                    "client-request-id": client_request_id,
                }
            }
        })
    }
}

impl From<OpError> for GraphError {
    fn from(e: OpError) -> Self {
        match e {
            OpError::NotFound(m) => Self::new(StatusCode::NOT_FOUND, "itemNotFound", m),
            OpError::Conflict(m) => Self::new(StatusCode::CONFLICT, "nameAlreadyExists", m),
            OpError::Invalid(m) => Self::invalid(m),
            OpError::Denied(m) => Self::denied(m),
            OpError::Quota => Self::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "quotaLimitReached",
                "Insufficient Space Available",
            ),
            OpError::Io(e) => {
                tracing::error!(error = %e, "drive io error");
                Self::internal("An unspecified error has occurred.")
            }
        }
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let id = crate::util::new_guid();
        let mut resp = (self.status, axum::Json(self.body(&id, &id))).into_response();
        for (name, value) in &self.headers {
            if let Ok(v) = HeaderValue::from_str(value) {
                resp.headers_mut().insert(name.clone(), v);
            }
        }
        resp.extensions_mut().insert(self);
        resp
    }
}
