//! [`WorldError`]: why the world refused a change. The API edge turns it
//! into Twilio's error JSON (`api/error.rs`).

/// Why a change was refused. The API edge turns it into Twilio's error JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WorldError {
    #[error("{kind} {id} was not found")]
    NotFound { kind: &'static str, id: String },
    #[error("{message}")]
    Invalid {
        param: &'static str,
        message: String,
    },
    /// The resource is not in a state for this action (accepting twice,
    /// ending a chat that is not assigned…).
    #[error("{message}")]
    State {
        param: &'static str,
        message: String,
    },
    #[error("{message}")]
    Conflict { code: u32, message: String },
    /// A request Twilio refuses with a code of its own (400): a sixth
    /// webhook, a conversation created closed…
    #[error("{message}")]
    Refused { code: u32, message: String },
}

impl WorldError {
    pub fn not_found(kind: &'static str, id: &str) -> Self {
        Self::NotFound {
            kind,
            id: id.to_owned(),
        }
    }

    pub fn invalid(param: &'static str, why: &str) -> Self {
        Self::Invalid {
            param,
            message: format!("Invalid parameter {param}: {why}"),
        }
    }

    pub fn state(param: &'static str, why: &str) -> Self {
        Self::State {
            param,
            message: format!("Invalid parameter {param}: {why}"),
        }
    }

    pub fn conflict(code: u32, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn refused(code: u32, message: impl Into<String>) -> Self {
        Self::Refused {
            code,
            message: message.into(),
        }
    }
}
