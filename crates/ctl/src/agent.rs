//! The connection to the guest agent: `lcow_protocol::client`, greeted as lcow-ctl.

use std::path::Path;
use std::time::Duration;

pub use lcow_protocol::client::{ctx, rpc_message, Agent, CALL_TIMEOUT};

/// Connects to the agent behind `socket`, waiting up to `wait`, and says Hello as lcow-ctl.
pub fn connect(socket: &Path, wait: Duration) -> anyhow::Result<Agent> {
    Ok(Agent::connect(
        socket,
        wait,
        &format!("lcow-ctl {}", env!("CARGO_PKG_VERSION")),
    )?)
}
