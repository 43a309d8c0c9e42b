//! The host's connection to the guest agent, shared by containerd-shim-lcow-v1 and `lcow-ctl`:
//! hybrid-vsock connect, the ttrpc client, the Hello handshake, and the raw stdio streams of a
//! process (each introduced by a [`StdioHeader`] and acknowledged by one byte).

use std::io;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::agent::{HelloRequest, HelloResponse};
use crate::agent_ttrpc::AgentClient;
use crate::hybrid::{self, HostStream, HybridError};
use crate::stdio::{StdioHeader, StreamKind, ACK_OK};
use crate::sys::client as sys;

/// How long one ordinary call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors of connecting to the agent or opening a stream.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The hybrid-vsock handshake failed or timed out.
    #[error("cannot reach the guest agent")]
    Reach(#[source] HybridError),
    /// The ttrpc client could not be set up on the connection.
    #[error("cannot start a ttrpc client on the agent connection")]
    Ttrpc(#[source] ttrpc::Error),
    /// Hello failed: the agent refused the protocol version or the call broke.
    #[error("the agent refused Hello: {0}")]
    Hello(String),
    /// A stdio stream could not be opened.
    #[error("cannot open the {kind:?} stream")]
    OpenStream {
        /// The stream.
        kind: StreamKind,
        /// The cause.
        #[source]
        source: HybridError,
    },
    /// Sending the header or reading the acknowledgement failed.
    #[error("the {kind:?} stream handshake failed")]
    StreamHandshake {
        /// The stream.
        kind: StreamKind,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The agent answered the header with a refusal.
    #[error("the agent refused the {kind:?} stream (code {code})")]
    StreamRefused {
        /// The stream.
        kind: StreamKind,
        /// The agent's code.
        code: u8,
    },
}

/// A ttrpc context with `timeout` (zero: none).
pub fn ctx(timeout: Duration) -> ttrpc::context::Context {
    if timeout.is_zero() {
        ttrpc::context::Context::default()
    } else {
        ttrpc::context::with_timeout(i64::try_from(timeout.as_nanos()).unwrap_or(i64::MAX))
    }
}

/// The message of a ttrpc error, without the debug noise.
pub fn rpc_message(e: &ttrpc::Error) -> String {
    match e {
        ttrpc::Error::RpcStatus(s) => format!("{:?}: {}", s.code(), s.message()),
        other => other.to_string(),
    }
}

/// A connected, greeted agent.
pub struct Agent {
    /// The VMM's hybrid-vsock socket.
    pub socket: PathBuf,
    /// The ttrpc client (cheap to clone; calls are multiplexed on one connection).
    pub client: AgentClient,
    /// The agent's answer to Hello.
    pub hello: HelloResponse,
    /// From the start of the connection attempt to Hello's answer.
    pub ready_after: Duration,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("socket", &self.socket)
            .finish()
    }
}

impl Agent {
    /// Connects to the agent, waiting up to `wait` for the VM's socket and the agent's
    /// listener to appear, and says Hello as `host` (free text for the agent's log).
    pub fn connect(socket: &Path, wait: Duration, host: &str) -> Result<Self, ClientError> {
        let start = Instant::now();
        loop {
            let left = wait.saturating_sub(start.elapsed());
            let client = AgentClient::new(sys::agent_client(socket, left)?);
            let request = HelloRequest {
                protocol_version: crate::PROTOCOL_VERSION,
                host: host.to_owned(),
                ..Default::default()
            };
            match client.hello(ctx(CALL_TIMEOUT), &request) {
                Ok(hello) => {
                    return Ok(Self {
                        socket: socket.to_owned(),
                        client,
                        hello,
                        ready_after: start.elapsed(),
                    })
                }
                // Where opening the endpoint does not prove the agent listens (Windows), a
                // connection the VMM dropped is tried again until `wait` passes.
                Err(e)
                    if sys::HELLO_PROVES_READY
                        && !matches!(e, ttrpc::Error::RpcStatus(_))
                        && start.elapsed() < wait =>
                {
                    thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(ClientError::Hello(rpc_message(&e))),
            }
        }
    }

    /// Opens the `kind` stream of (`container`, `exec`) and waits for the agent to accept it.
    pub fn open_stream(
        &self,
        container: &str,
        exec: &str,
        kind: StreamKind,
    ) -> Result<HostStream, ClientError> {
        let mut stream = hybrid::connect(&self.socket, crate::STDIO_PORT)
            .map_err(|source| ClientError::OpenStream { kind, source })?;
        let handshake = |source| ClientError::StreamHandshake { kind, source };
        StdioHeader {
            container_id: container.to_owned(),
            exec_id: exec.to_owned(),
            kind,
        }
        .write_to(&mut stream)
        .map_err(handshake)?;
        let ack = sys::read_ack(&mut stream, CALL_TIMEOUT).map_err(handshake)?;
        if ack != ACK_OK {
            return Err(ClientError::StreamRefused { kind, code: ack });
        }
        Ok(stream)
    }
}
