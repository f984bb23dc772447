//! The domain's errors, in the contract's words (a code for programs, a
//! message for people) and without HTTP: `http::error` alone turns them
//! into answers, choosing the status from the kind.

use crate::ports::{QueueError, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed: it cannot be read as asked.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// The request reads well but asks for what cannot be: a field out of
    /// its bounds, a transform that does not compile.
    #[error("{message}")]
    Invalid {
        code: &'static str,
        message: String,
        /// More, for programs: where a transform failed, say.
        details: Option<serde_json::Value>,
    },
    /// No such thing in the caller's account (another account's included);
    /// the message says what.
    #[error("{0}")]
    NotFound(String),
    /// No valid credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// The thing is in a state that refuses this now.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The caller is known but may not do this: its account is suspended,
    /// or has reached a limit of its plan.
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// Too many requests for the account's limits: retry after this many
    /// seconds.
    #[error("{message}")]
    Limited {
        code: &'static str,
        message: String,
        retry_after: u64,
    },
    /// Nothing is wrong with the request, but the service cannot take it
    /// on now (its transform threads are all busy): retry.
    #[error("{0}")]
    Busy(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// A failure of ours, not the caller's: logged in full, answered vaguely.
    #[error("{context}: {message}")]
    Internal {
        context: &'static str,
        message: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Stored documents decoded as `T`; one that does not decode is a failure
/// of ours (`what` names it in the log).
pub fn decoded<T: serde::de::DeserializeOwned>(
    items: Vec<crate::ports::Item>,
    what: &'static str,
) -> Result<Vec<T>> {
    items
        .into_iter()
        .map(|i| serde_json::from_value(i.body))
        .collect::<Result<_, _>>()
        .map_err(|e| Error::internal(what, e))
}

impl Error {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
            details: None,
        }
    }

    /// A field at fault: "`field`: message", the field named in the
    /// details too, for a form to show the error beside it.
    pub fn invalid_field(code: &'static str, field: &str, message: impl std::fmt::Display) -> Self {
        Self::invalid(code, format!("{field}: {message}"))
            .with_details(serde_json::json!({ "field": field }))
    }

    /// "`what` not found", `what` named as a person would: "trigger",
    /// "dead letter dl_...".
    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("{what} not found"))
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::Unauthorized(message.into())
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn internal(context: &'static str, error: impl std::fmt::Display) -> Self {
        Self::Internal {
            context,
            message: error.to_string(),
        }
    }

    /// Adds details to an `Invalid` error (others have none).
    pub fn with_details(mut self, more: serde_json::Value) -> Self {
        if let Self::Invalid { details, .. } = &mut self {
            *details = Some(more);
        }
        self
    }

    /// The contract's code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. } | Self::Invalid { code, .. } => code,
            Self::Conflict { code, .. } | Self::Forbidden { code, .. } => code,
            Self::Limited { code, .. } => code,
            Self::NotFound(_) => "not_found",
            Self::Unauthorized(_) => "unauthorized",
            Self::Busy(_) => "busy",
            Self::Store(StoreError::Conflict) => "conflict",
            Self::Store(StoreError::InvalidCursor) => "invalid_cursor",
            Self::Store(StoreError::TooLarge(_)) | Self::Queue(QueueError::TooLarge(_)) => {
                "too_large"
            }
            Self::Store(_) | Self::Queue(_) => "storage_unavailable",
            Self::Internal { .. } => "unavailable",
        }
    }
}
