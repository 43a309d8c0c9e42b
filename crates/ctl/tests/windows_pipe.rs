//! `lcow-ctl.exe` on Windows reaches the agent through the VMM's per-port named pipe
//! (docs/windows.md, "Hybrid vsock on Windows"): a fake agent serves ttrpc on `<base>-1024`
//! and `lcow-ctl --vsock <base> ping` must greet it; and the same through the real vsock
//! device, its muxer and its pipes, with a loopback guest that bridges guest port 1024 to the
//! fake agent. Runs under Wine in `make test-windows`.

#![cfg(windows)]
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use lcow_devices::virtio::vsock::loopback::LoopbackGuest;
use lcow_devices::virtio::vsock::{Limits, Vsock, DEFAULT_GUEST_CID};

use lcow_protocol::agent::{HelloRequest, HelloResponse};
use lcow_protocol::agent_ttrpc::{create_agent, Agent};
use ttrpc::TtrpcContext;

struct FakeAgent;

impl Agent for FakeAgent {
    fn hello(&self, _: &TtrpcContext, req: HelloRequest) -> ttrpc::Result<HelloResponse> {
        Ok(HelloResponse {
            protocol_version: req.protocol_version,
            agent_version: "fake-agent".to_owned(),
            capabilities: vec!["tty".to_owned()],
            kernel: "fake-kernel".to_owned(),
            ..Default::default()
        })
    }
}

#[test]
fn test_ctl_ping_over_port_pipe_greets_the_agent() {
    let base = format!(r"\\.\pipe\lcow-ctl-test-{}", std::process::id());
    let pipe = format!("{base}-{}", lcow_protocol::AGENT_PORT);
    let mut server = ttrpc::Server::new()
        .bind(&pipe)
        .unwrap()
        .register_service(create_agent(Arc::new(FakeAgent)));
    server.start().unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_lcow-ctl"))
        .args(["--vsock", &base, "--wait", "10", "ping"])
        .output()
        .unwrap();

    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "status {:?}; stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("agent fake-agent"), "{stdout}");
    assert!(stdout.contains("on fake-kernel"), "{stdout}");
}

/// Runs `lcow-ctl --vsock base ping` and checks that it greeted the fake agent.
fn ping_greets_the_fake_agent(base: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_lcow-ctl"))
        .args(["--vsock", base, "--wait", "10", "ping"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "status {:?}; stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("agent fake-agent"), "{stdout}");
}

#[test]
fn test_ctl_ping_through_the_vsock_device_greets_the_guest_agent() {
    let pid = std::process::id();
    // The guest's agent: a fake one, which the loopback guest's port 1024 leads to.
    let agent = format!(r"\\.\pipe\lcow-ctl-guest-agent-{pid}");
    let mut server = ttrpc::Server::new()
        .bind(&agent)
        .unwrap()
        .register_service(create_agent(Arc::new(FakeAgent)));
    server.start().unwrap();
    // The VMM's side: the vsock device on its pipes, driven by the loopback guest.
    let base = format!(r"\\.\pipe\lcow-ctl-vsock-{pid}");
    let ports = [lcow_protocol::AGENT_PORT, lcow_protocol::STDIO_PORT];
    let (device, worker) =
        Vsock::new_pipes(DEFAULT_GUEST_CID, base.as_ref(), &ports, Limits::default()).unwrap();
    let services = HashMap::from([(lcow_protocol::AGENT_PORT, PathBuf::from(&agent))]);
    let guest = LoopbackGuest::start(device, worker, services).unwrap();

    ping_greets_the_fake_agent(&base);
    // A second client gets its own connection.
    ping_greets_the_fake_agent(&base);

    guest.stop().unwrap();
}

#[test]
fn test_ctl_ping_without_vm_fails_naming_the_agent_port() {
    let base = format!(r"\\.\pipe\lcow-ctl-none-{}", std::process::id());
    let out = Command::new(env!("CARGO_BIN_EXE_lcow-ctl"))
        .args(["--vsock", &base, "--wait", "0.2", "ping"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("1024"), "{stderr}");
}
