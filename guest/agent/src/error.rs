//! The agent's service error and its one mapping to ttrpc status codes.
//!
//! Every RPC returns [`AgentError`]; [`AgentError::code`] is the only place that decides which
//! ttrpc code the host sees, and [`AgentError::into_ttrpc`] the only place that builds the
//! status. The message carries the whole `source()` chain, so the host can show *why*.

use std::io;

use ttrpc::Code;

use crate::cgroup::CgroupError;
use crate::quote::quote;
use crate::runtime::RuntimeError;

/// Why an RPC failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Hello from a host that speaks another protocol version.
    #[error("protocol version {host} is not supported: this agent speaks version {agent}")]
    ProtocolVersion {
        /// What the host sent.
        host: u32,
        /// What this agent speaks.
        agent: u32,
    },
    /// A container or exec id that is empty, too long or not a safe path component.
    #[error("invalid {what} id {id:?}")]
    InvalidId {
        /// "container" or "exec".
        what: &'static str,
        /// The id, shortened for the message.
        id: String,
    },
    /// The OCI spec, process or resources JSON does not parse.
    #[error("invalid {what} JSON")]
    BadJson {
        /// Which document.
        what: &'static str,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// Any other malformed request field.
    #[error("{0}")]
    BadRequest(String),
    /// No container with this id.
    #[error("container {0} not found")]
    UnknownContainer(String),
    /// No process with this exec id in the container.
    #[error("exec {exec_id:?} not found in container {container_id}")]
    UnknownExec {
        /// The container.
        container_id: String,
        /// The exec.
        exec_id: String,
    },
    /// The container or process is not in a state that allows the call.
    #[error("{0}")]
    WrongState(String),
    /// A declared stdio stream was not connected before the call.
    #[error(
        "the {stream} stream of container {container_id} exec {exec_id:?} is not connected: \
         open it on the stdio port before this call"
    )]
    MissingStream {
        /// The container.
        container_id: String,
        /// The exec (empty for init).
        exec_id: String,
        /// "stdin", "stdout" or "stderr".
        stream: &'static str,
    },
    /// libcontainer refused or failed.
    #[error("{op} failed")]
    Runtime {
        /// The operation ("create container", "exec", ...).
        op: &'static str,
        /// What libcontainer said.
        #[source]
        source: RuntimeError,
    },
    /// Reading or writing the container's cgroup failed.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// A file or system call of the agent itself failed.
    #[error("failed to {op}")]
    Io {
        /// What the agent was doing.
        op: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The caller went away (connection closed or its deadline passed) while the call waited.
    #[error("cancelled: the caller went away")]
    Cancelled,
}

impl AgentError {
    /// An [`AgentError::InvalidId`] quoting at most a short prefix of the untrusted id.
    pub fn invalid_id(what: &'static str, id: &str) -> Self {
        Self::InvalidId {
            what,
            id: quote(id),
        }
    }

    /// An [`AgentError::Io`] for operation `op`.
    pub fn io(op: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            op: op.into(),
            source,
        }
    }

    /// The ttrpc status code the host sees. The one mapping of the agent.
    pub fn code(&self) -> Code {
        match self {
            Self::InvalidId { .. } | Self::BadJson { .. } | Self::BadRequest(_) => {
                Code::INVALID_ARGUMENT
            }
            Self::UnknownContainer(_) | Self::UnknownExec { .. } => Code::NOT_FOUND,
            Self::ProtocolVersion { .. } | Self::WrongState(_) | Self::MissingStream { .. } => {
                Code::FAILED_PRECONDITION
            }
            Self::Runtime { source, .. } => match source {
                RuntimeError::WrongState(_) => Code::FAILED_PRECONDITION,
                RuntimeError::InvalidSpec(_) => Code::INVALID_ARGUMENT,
                RuntimeError::Failed(_) => Code::INTERNAL,
            },
            Self::Cgroup(CgroupError::NoCgroup { .. } | CgroupError::NoController { .. }) => {
                Code::FAILED_PRECONDITION
            }
            Self::Cgroup(CgroupError::BadPath(_)) => Code::INVALID_ARGUMENT,
            Self::Cgroup(_) | Self::Io { .. } => Code::INTERNAL,
            Self::Cancelled => Code::CANCELLED,
        }
    }

    /// The message: this error and its sources, joined by ": ".
    pub fn message(&self) -> String {
        let mut msg = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(err) = source {
            let text = err.to_string();
            // `transparent` wrappers repeat their inner message; say it once.
            if !text.is_empty() && !msg.ends_with(&text) {
                msg.push_str(": ");
                msg.push_str(&text);
            }
            source = err.source();
        }
        msg
    }

    /// The ttrpc error returned to the host.
    pub fn into_ttrpc(self) -> ttrpc::Error {
        ttrpc::Error::RpcStatus(ttrpc::get_status(self.code(), self.message()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn code_of(err: AgentError) -> Code {
        match err.into_ttrpc() {
            ttrpc::Error::RpcStatus(status) => status.code(),
            other => panic!("not a status: {other:?}"),
        }
    }

    #[test]
    fn test_error_code_mapping_covers_each_kind() {
        assert_eq!(
            code_of(AgentError::UnknownContainer("c".into())),
            Code::NOT_FOUND
        );
        assert_eq!(
            code_of(AgentError::UnknownExec {
                container_id: "c".into(),
                exec_id: "e".into()
            }),
            Code::NOT_FOUND
        );
        assert_eq!(
            code_of(AgentError::invalid_id("container", "../x")),
            Code::INVALID_ARGUMENT
        );
        let json = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        assert_eq!(
            code_of(AgentError::BadJson {
                what: "OCI spec",
                source: json
            }),
            Code::INVALID_ARGUMENT
        );
        assert_eq!(
            code_of(AgentError::WrongState("running".into())),
            Code::FAILED_PRECONDITION
        );
        assert_eq!(
            code_of(AgentError::MissingStream {
                container_id: "c".into(),
                exec_id: String::new(),
                stream: "stdout"
            }),
            Code::FAILED_PRECONDITION
        );
        assert_eq!(
            code_of(AgentError::Runtime {
                op: "start",
                source: RuntimeError::WrongState("stopped".into())
            }),
            Code::FAILED_PRECONDITION
        );
        assert_eq!(
            code_of(AgentError::Runtime {
                op: "create",
                source: RuntimeError::Failed("boom".into())
            }),
            Code::INTERNAL
        );
        assert_eq!(
            code_of(AgentError::io("write", io::Error::other("x"))),
            Code::INTERNAL
        );
        assert_eq!(code_of(AgentError::Cancelled), Code::CANCELLED);
    }

    #[test]
    fn test_error_message_includes_source_chain() {
        let err = AgentError::io(
            "write /run/lcow/c1/config.json",
            io::Error::from_raw_os_error(libc::ENOSPC),
        );
        let msg = err.message();
        assert!(
            msg.starts_with("failed to write /run/lcow/c1/config.json: "),
            "{msg}"
        );
        assert!(msg.contains("No space left"), "{msg}");
    }

    #[test]
    fn test_error_invalid_id_quotes_a_bounded_prefix() {
        let long = "x".repeat(10_000);
        let msg = AgentError::invalid_id("container", &long).message();
        assert!(msg.len() < 200, "{} bytes", msg.len());
    }
}
