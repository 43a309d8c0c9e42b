//! The task service's one error type, and the one place it becomes a ttrpc status.

use ttrpc::Code;

/// What a task method can fail with. The variant picks the ttrpc code containerd sees
/// (containerd turns NOT_FOUND into errdefs.ErrNotFound, and so on).
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// No such container or exec.
    #[error("{0} not found")]
    NotFound(String),
    /// The id is taken.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The request is malformed.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The process is not in a state that allows the call.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The runtime does not do this.
    #[error("{0} is not supported by io.containerd.lcow.v1")]
    Unimplemented(&'static str),
    /// The VM, the agent or the host failed; the message has the whole cause chain.
    #[error("{0}")]
    Internal(String),
}

impl ShimError {
    /// An internal error from anything with a cause chain, prefixed by `what` failed.
    pub fn internal(what: &str, err: &(dyn std::error::Error + 'static)) -> Self {
        Self::Internal(format!("{what}: {}", chain(err)))
    }

    /// An error from an agent call, keeping the agent's code where it maps to ours.
    pub fn agent(what: &str, err: &ttrpc::Error) -> Self {
        if let ttrpc::Error::RpcStatus(s) = err {
            let message = format!("{what}: {}", s.message());
            return match s.code() {
                Code::NOT_FOUND => Self::NotFound(message),
                Code::ALREADY_EXISTS => Self::AlreadyExists(message),
                Code::INVALID_ARGUMENT => Self::InvalidArgument(message),
                Code::FAILED_PRECONDITION => Self::FailedPrecondition(message),
                _ => Self::Internal(message),
            };
        }
        Self::Internal(format!(
            "{what}: {}",
            lcow_protocol::client::rpc_message(err)
        ))
    }
}

impl From<ShimError> for ttrpc::Error {
    fn from(e: ShimError) -> Self {
        let code = match &e {
            ShimError::NotFound(_) => Code::NOT_FOUND,
            ShimError::AlreadyExists(_) => Code::ALREADY_EXISTS,
            ShimError::InvalidArgument(_) => Code::INVALID_ARGUMENT,
            ShimError::FailedPrecondition(_) => Code::FAILED_PRECONDITION,
            ShimError::Unimplemented(_) => Code::UNIMPLEMENTED,
            ShimError::Internal(_) => Code::INTERNAL,
        };
        ttrpc::Error::RpcStatus(ttrpc::get_status(code, e.to_string()))
    }
}

/// `err` and its causes, joined by `: `.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message
}

/// The result of a task method before it crosses to ttrpc.
pub type Result<T> = std::result::Result<T, ShimError>;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_error_maps_to_ttrpc_code() {
        let e: ttrpc::Error = ShimError::NotFound("container c1".into()).into();
        match e {
            ttrpc::Error::RpcStatus(s) => {
                assert_eq!(s.code(), Code::NOT_FOUND);
                assert_eq!(s.message(), "container c1 not found");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn test_agent_error_keeps_code() {
        let e =
            ttrpc::Error::RpcStatus(ttrpc::get_status(Code::FAILED_PRECONDITION, "not running"));
        assert!(matches!(
            ShimError::agent("kill", &e),
            ShimError::FailedPrecondition(m) if m == "kill: not running"
        ));
    }
}
