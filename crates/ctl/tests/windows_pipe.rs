//! `lcow-ctl.exe` on Windows reaches the agent through the VMM's per-port named pipe
//! (docs/windows.md, "Hybrid vsock on Windows"): a fake agent serves ttrpc on `<base>-1024`
//! and `lcow-ctl --vsock <base> ping` must greet it. Runs under Wine in `make test-windows`.

#![cfg(windows)]
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::sync::Arc;

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
