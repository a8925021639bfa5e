//! The operator's error type. Every variant names the object and, where one exists, the field,
//! so it reads well as an Event message.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),
    #[error("{kind} {name}: {message}")]
    Child {
        kind: &'static str,
        name: String,
        message: String,
    },
    #[error("finalizer: {0}")]
    Finalizer(String),
    #[error("serialising {0}: {1}")]
    Serde(&'static str, serde_json::Error),
    #[error("IngressControllerSet has no {0}")]
    MissingField(&'static str),
}

impl Error {
    /// A short CamelCase reason for Events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "ApiError",
            Error::Child { .. } => "ChildError",
            Error::Finalizer(_) => "FinalizerError",
            Error::Serde(..) => "SerializationError",
            Error::MissingField(_) => "InvalidObject",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
