//! Round trips of the agent protocol over a real ttrpc connection (a unix socket on Linux, a
//! named pipe on Windows: under Wine in `make test-windows`): a fake agent service answers, the
//! generated client asks, and every field must survive the wire.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use lcow_protocol::agent::{
    event, ContainerRequest, Empty, Event, ExitStatus, HelloRequest, HelloResponse, OomKilled,
    ProcessExited, StatsResponse, WaitProcessRequest,
};
use lcow_protocol::agent_ttrpc::{create_agent, Agent, AgentClient};
use ttrpc::{Code, TtrpcContext};

struct FakeAgent;

impl Agent for FakeAgent {
    fn hello(&self, _: &TtrpcContext, req: HelloRequest) -> ttrpc::Result<HelloResponse> {
        if req.protocol_version != lcow_protocol::PROTOCOL_VERSION {
            return Err(ttrpc::Error::RpcStatus(ttrpc::get_status(
                Code::FAILED_PRECONDITION,
                format!("protocol {} not spoken", req.protocol_version),
            )));
        }
        Ok(HelloResponse {
            protocol_version: req.protocol_version,
            agent_version: "fake".to_owned(),
            capabilities: vec!["tty".to_owned(), "oom-events".to_owned()],
            kernel: req.host,
            ..Default::default()
        })
    }

    fn wait_process(&self, _: &TtrpcContext, req: WaitProcessRequest) -> ttrpc::Result<ExitStatus> {
        if req.container_id != "c1" {
            return Err(ttrpc::Error::RpcStatus(ttrpc::get_status(
                Code::NOT_FOUND,
                format!("container {} not found", req.container_id),
            )));
        }
        Ok(ExitStatus {
            pid: 42,
            exit_status: 143,
            signal: 15,
            exited_at_ns: u64::MAX - 1,
            ..Default::default()
        })
    }

    fn stats(&self, _: &TtrpcContext, _: ContainerRequest) -> ttrpc::Result<StatsResponse> {
        let mut s = StatsResponse {
            memory_usage: 1 << 40,
            memory_events_oom_kill: 2,
            pids_current: 7,
            ..Default::default()
        };
        s.memory_stat.insert("anon".to_owned(), 4096);
        Ok(s)
    }

    fn get_event(&self, _: &TtrpcContext, _: Empty) -> ttrpc::Result<Event> {
        let mut e = Event::new();
        e.kind = Some(event::Kind::Exited(ProcessExited {
            container_id: "c1".to_owned(),
            exec_id: "e1".to_owned(),
            status: Some(ExitStatus {
                exit_status: 3,
                ..Default::default()
            })
            .into(),
            ..Default::default()
        }));
        Ok(e)
    }
}

/// A fresh ttrpc address for one test; the directory holds the socket on Linux.
fn address(dir: &tempfile::TempDir) -> String {
    if cfg!(windows) {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!(r"\\.\pipe\lcow-roundtrip-{}-{n}", std::process::id())
    } else {
        format!("unix://{}", dir.path().join("agent.sock").display())
    }
}

fn serve() -> (tempfile::TempDir, ttrpc::Server, AgentClient) {
    let dir = tempfile::tempdir().unwrap();
    let addr = address(&dir);
    let mut server = ttrpc::Server::new()
        .bind(&addr)
        .unwrap()
        .register_service(create_agent(Arc::new(FakeAgent)));
    server.start().unwrap();
    // On Windows the server makes its first pipe instance on its own thread: the first connect
    // may come before it.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let client = loop {
        match ttrpc::Client::connect(&addr) {
            Ok(c) => break c,
            Err(e) if std::time::Instant::now() < deadline => {
                eprintln!("connect {addr}: {e}; again");
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("connect {addr}: {e}"),
        }
    };
    (dir, server, AgentClient::new(client))
}

fn ctx() -> ttrpc::context::Context {
    ttrpc::context::with_timeout(Duration::from_secs(5).as_nanos() as i64)
}

#[test]
fn test_hello_round_trip_fields_survive() {
    let (_dir, _server, client) = serve();
    let reply = client
        .hello(
            ctx(),
            &HelloRequest {
                protocol_version: lcow_protocol::PROTOCOL_VERSION,
                host: "test-host".to_owned(),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(reply.agent_version, "fake");
    assert_eq!(reply.kernel, "test-host");
    assert_eq!(reply.capabilities, ["tty", "oom-events"]);
}

#[test]
fn test_hello_other_version_failed_precondition() {
    let (_dir, _server, client) = serve();
    let err = client
        .hello(
            ctx(),
            &HelloRequest {
                protocol_version: 99,
                ..Default::default()
            },
        )
        .unwrap_err();
    match err {
        ttrpc::Error::RpcStatus(s) => {
            assert_eq!(s.code(), Code::FAILED_PRECONDITION);
            assert!(s.message().contains("99"), "{}", s.message());
        }
        other => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn test_wait_process_status_and_not_found() {
    let (_dir, _server, client) = serve();
    let req = |id: &str| WaitProcessRequest {
        container_id: id.to_owned(),
        ..Default::default()
    };
    let status = client.wait_process(ctx(), &req("c1")).unwrap();
    assert_eq!(
        (status.pid, status.exit_status, status.signal),
        (42, 143, 15)
    );
    assert_eq!(status.exited_at_ns, u64::MAX - 1);
    match client.wait_process(ctx(), &req("nope")).unwrap_err() {
        ttrpc::Error::RpcStatus(s) => assert_eq!(s.code(), Code::NOT_FOUND),
        other => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn test_stats_and_event_oneof_survive() {
    let (_dir, _server, client) = serve();
    let stats = client.stats(ctx(), &ContainerRequest::default()).unwrap();
    assert_eq!(stats.memory_usage, 1 << 40);
    assert_eq!(stats.memory_events_oom_kill, 2);
    assert_eq!(stats.memory_stat.get("anon"), Some(&4096));
    let event = client.get_event(ctx(), &Empty::default()).unwrap();
    match event.kind {
        Some(event::Kind::Exited(e)) => {
            assert_eq!((e.container_id.as_str(), e.exec_id.as_str()), ("c1", "e1"));
            assert_eq!(e.status.exit_status, 3);
        }
        other => panic!("unexpected event {other:?}"),
    }
    // An unimplemented method answers with an error, never a default reply.
    let unimplemented = client.pause(ctx(), &ContainerRequest::default());
    assert!(unimplemented.is_err());
    let _ = OomKilled::default();
}

/// Windows: `client::Agent::connect` finds the agent on the pipe of its port behind the VMM's
/// endpoint (`<base>-1024`) and says Hello, as the shim and `lcow-ctl` will.
#[cfg(windows)]
#[test]
fn test_agent_connect_over_port_pipe_says_hello() {
    let base = std::path::PathBuf::from(format!(r"\\.\pipe\lcow-agent-{}", std::process::id()));
    let pipe = format!(r"{}-{}", base.display(), lcow_protocol::AGENT_PORT);
    let mut server = ttrpc::Server::new()
        .bind(&pipe)
        .unwrap()
        .register_service(create_agent(Arc::new(FakeAgent)));
    server.start().unwrap();

    let agent =
        lcow_protocol::client::Agent::connect(&base, Duration::from_secs(10), "wine").unwrap();

    assert_eq!(agent.hello.agent_version, "fake");
    assert_eq!(agent.hello.kernel, "wine");
}
