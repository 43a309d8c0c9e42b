//! The connection to the guest agent: hybrid-vsock connect, ttrpc client, the Hello handshake,
//! and the stdio streams of a process.

use std::io::Read;
use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use lcow_protocol::agent::{HelloRequest, HelloResponse};
use lcow_protocol::agent_ttrpc::AgentClient;
use lcow_protocol::hybrid;
use lcow_protocol::stdio::{StdioHeader, StreamKind, ACK_OK};

/// How long one ordinary call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A ttrpc context with `timeout` (zero: none).
pub fn ctx(timeout: Duration) -> ttrpc::context::Context {
    if timeout.is_zero() {
        ttrpc::context::Context::default()
    } else {
        ttrpc::context::with_timeout(i64::try_from(timeout.as_nanos()).unwrap_or(i64::MAX))
    }
}

/// A connected, greeted agent.
pub struct Agent {
    /// The VMM's hybrid-vsock socket.
    pub socket: PathBuf,
    /// The ttrpc client.
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
    /// listener to appear, and says Hello.
    pub fn connect(socket: &Path, wait: Duration) -> anyhow::Result<Self> {
        let start = Instant::now();
        let stream = hybrid::connect_wait(socket, lcow_protocol::AGENT_PORT, wait)
            .context("cannot reach the guest agent")?;
        let client = ttrpc::Client::new(stream.into_raw_fd())
            .context("cannot start a ttrpc client on the agent connection")?;
        let client = AgentClient::new(client);
        let hello = client
            .hello(
                ctx(CALL_TIMEOUT),
                &HelloRequest {
                    protocol_version: lcow_protocol::PROTOCOL_VERSION,
                    host: format!("lcow-ctl {}", env!("CARGO_PKG_VERSION")),
                    ..Default::default()
                },
            )
            .context("the agent refused Hello")?;
        Ok(Self {
            socket: socket.to_owned(),
            client,
            hello,
            ready_after: start.elapsed(),
        })
    }

    /// Opens the `kind` stream of (`container`, `exec`) and waits for the agent to accept it.
    pub fn open_stream(
        &self,
        container: &str,
        exec: &str,
        kind: StreamKind,
    ) -> anyhow::Result<UnixStream> {
        let mut stream = hybrid::connect(&self.socket, lcow_protocol::STDIO_PORT)
            .with_context(|| format!("cannot open the {kind:?} stream"))?;
        stream
            .set_read_timeout(Some(CALL_TIMEOUT))
            .context("cannot set a timeout on the stdio stream")?;
        StdioHeader {
            container_id: container.to_owned(),
            exec_id: exec.to_owned(),
            kind,
        }
        .write_to(&mut stream)
        .with_context(|| format!("cannot send the {kind:?} stream header"))?;
        let mut ack = [0u8; 1];
        stream
            .read_exact(&mut ack)
            .with_context(|| format!("the agent did not acknowledge the {kind:?} stream"))?;
        if ack[0] != ACK_OK {
            bail!("the agent refused the {kind:?} stream (code {})", ack[0]);
        }
        stream
            .set_read_timeout(None)
            .context("cannot clear the stdio stream's timeout")?;
        Ok(stream)
    }
}

/// The message of a ttrpc error, without the debug noise.
pub fn rpc_message(e: &ttrpc::Error) -> String {
    match e {
        ttrpc::Error::RpcStatus(s) => format!("{:?}: {}", s.code(), s.message()),
        other => other.to_string(),
    }
}
