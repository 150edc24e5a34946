//! The boundary to AWS, as the core sees it: [`CloudError`] with a [`ErrorKind`] to branch on,
//! the retry and rate-limit policies, and how to reach an account ([`Settings`]). The adapter
//! (`crate::aws`) depends on this module, never the other way round; every SDK type stays
//! inside the adapter.

pub mod limit;
pub mod retry;

use std::fmt;

/// What kind of failure an AWS call had; core code branches on this, never on strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The resource does not exist.
    NotFound,
    /// The resource exists already.
    AlreadyExists,
    /// Another change is in progress (Lambda `ResourceConflictException`): wait, then retry.
    Conflict,
    /// Throttled: retry with backoff.
    Throttled,
    /// Something made a moment ago is not usable yet (a new IAM role Lambda cannot assume):
    /// the same call succeeds once it has propagated ([`retry::until_ready`]).
    NotReady,
    /// A 5xx or a network failure: retry with backoff.
    Transient,
    /// The credentials may not do this.
    AccessDenied,
    /// A precondition failed (a RevisionId that moved).
    Precondition,
    /// AWS refused the request as invalid.
    Invalid,
    /// Anything else.
    Other,
}

/// A failed AWS call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct CloudError {
    /// The kind, for decisions.
    pub kind: ErrorKind,
    /// The operation, such as `lambda:GetFunction`.
    pub op: String,
    /// AWS's code and message.
    pub message: String,
}

impl fmt::Display for CloudError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.op, self.message)
    }
}

impl CloudError {
    /// Builds an error.
    #[must_use]
    pub fn new(kind: ErrorKind, op: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind,
            op: op.into(),
            message: message.into(),
        }
    }

    /// True for throttling and transient failures, which a retry may cure.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::Throttled | ErrorKind::Transient)
    }
}

/// How to reach AWS: the standard chain, overridden by flags.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// A named profile (`--profile`, else `AWS_PROFILE`).
    pub profile: Option<String>,
    /// The region (`--region`, else the stack's).
    pub region: Option<String>,
    /// An endpoint for every service (`--endpoint-url`, else `AWS_ENDPOINT_URL`), such as a
    /// local emulator.
    pub endpoint: Option<String>,
}
