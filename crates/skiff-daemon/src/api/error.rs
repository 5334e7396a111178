//! Errors at the API edge: every service error becomes an [`ApiError`] with one [`ErrorKind`],
//! and [`ErrorKind::status`] is the one table from kinds to Docker's HTTP status codes. The
//! body is Docker's `{"message": "..."}`.

use hyper::StatusCode;
use skiff_engine::ImagesError;

/// What kind of failure, in the terms of Docker's `errdefs` (which fix the status code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A bad parameter or body (`errdefs.InvalidParameter`).
    InvalidParameter,
    /// Credentials refused (`errdefs.Unauthorized`).
    Unauthorized,
    /// Access denied (`errdefs.Forbidden`).
    Forbidden,
    /// The object (or the endpoint) does not exist (`errdefs.NotFound`).
    NotFound,
    /// The request conflicts with the state (`errdefs.Conflict`).
    Conflict,
    /// Known endpoint or option that skiff does not implement (`errdefs.NotImplemented`).
    NotImplemented,
    /// A dependency (registry) is unreachable (`errdefs.Unavailable`).
    Unavailable,
    /// Nothing to do (`errdefs.NotModified`): start of a started container.
    NotModified,
    /// Anything else (`errdefs.System`).
    System,
}

impl ErrorKind {
    /// The single kind → status table.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::InvalidParameter => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::NotModified => StatusCode::NOT_MODIFIED,
            ErrorKind::System => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error answered to a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidParameter, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn system(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::System, message)
    }
    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotImplemented, message)
    }
    /// Docker's answer to an unknown route (and to a known path with the wrong method).
    pub fn page_not_found() -> Self {
        Self::not_found("page not found")
    }

    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// `{"message": "..."}`.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({ "message": self.message }))
            .unwrap_or_else(|_| b"{\"message\":\"internal error\"}".to_vec())
    }
}

/// The kind of a registry client error.
pub fn registry_kind(e: &skiff_registry::Error) -> ErrorKind {
    use skiff_registry::ErrorKind as R;
    match e.kind() {
        R::InvalidInput => ErrorKind::InvalidParameter,
        R::NotFound => ErrorKind::NotFound,
        R::Unauthorized => ErrorKind::Unauthorized,
        R::Denied => ErrorKind::Forbidden,
        R::Unsupported => ErrorKind::InvalidParameter,
        R::Unavailable | R::Corrupt | R::Internal => ErrorKind::System,
    }
}

impl From<ImagesError> for ApiError {
    fn from(e: ImagesError) -> Self {
        let kind = match &e {
            ImagesError::Reference(_) | ImagesError::Invalid(_) => ErrorKind::InvalidParameter,
            ImagesError::Registry { source, .. } => registry_kind(source),
            ImagesError::NotFound(_) => ErrorKind::NotFound,
            ImagesError::Conflict(_) => ErrorKind::Conflict,
            ImagesError::Store { .. } | ImagesError::Layer { .. } => ErrorKind::System,
            #[allow(unreachable_patterns)]
            _ => ErrorKind::System,
        };
        ApiError::new(kind, e.to_string())
    }
}

impl From<skiff_engine::ContainersError> for ApiError {
    fn from(e: skiff_engine::ContainersError) -> Self {
        use skiff_engine::ContainersError as C;
        let e = match e {
            C::Image(i) => return ApiError::from(i),
            other => other,
        };
        let kind = match &e {
            C::Invalid(_) => ErrorKind::InvalidParameter,
            C::NotFound(_) => ErrorKind::NotFound,
            C::Conflict(_) => ErrorKind::Conflict,
            C::NotModified(_) => ErrorKind::NotModified,
            C::NotImplemented(_) => ErrorKind::NotImplemented,
            C::Image(_) => ErrorKind::System,
            C::System(_) => ErrorKind::System,
        };
        ApiError::new(kind, e.to_string())
    }
}

impl From<skiff_registry::ReferenceError> for ApiError {
    fn from(e: skiff_registry::ReferenceError) -> Self {
        ApiError::invalid(e.to_string())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_docker_statuses() {
        assert_eq!(ErrorKind::InvalidParameter.status(), 400);
        assert_eq!(ErrorKind::NotFound.status(), 404);
        assert_eq!(ErrorKind::Conflict.status(), 409);
        assert_eq!(ErrorKind::System.status(), 500);
        let e: ApiError = ImagesError::NotFound("busybox:latest".into()).into();
        assert_eq!(e.status(), 404);
        assert_eq!(
            String::from_utf8(e.body()).unwrap(),
            r#"{"message":"No such image: busybox:latest"}"#
        );
        let e: ApiError = ImagesError::Conflict("conflict: x".into()).into();
        assert_eq!(e.status(), 409);
    }
}
