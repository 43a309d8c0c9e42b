//! Round trips through the real ttrpc server on a unix socket, with the protocol crate's
//! client: the service as the host sees it, without a VM or root.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio as ProcStdio};
use std::sync::{Arc, Mutex};

use lcow_protocol::agent::*;
use lcow_protocol::agent_ttrpc::AgentClient;
use lcow_protocol::stdio::{StdioHeader, StreamKind, ACK_OK};
use ttrpc::context;

use super::*;
use crate::copy::ChildStdio;
use crate::events::EventQueue;
use crate::reaper::Reaper;
use crate::runtime::{CreateRequest, ExecRequest, Runtime, RuntimeError};
use crate::state::{Agent, Config, ShutdownAction};
use crate::stdio::{ListenAddr, Listener};
use crate::syscall::fake::{Call, RecordingSyscall};
use crate::syscall::{LinuxSyscall, Syscall};

/// A runtime that runs the spec's args with `std::process::Command`, no container at all.
#[derive(Debug, Default)]
struct ProcessRuntime {
    calls: Mutex<Vec<String>>,
}

fn spawn_args(args: &[String], stdio: Option<ChildStdio>) -> Result<i32, RuntimeError> {
    let stdio = stdio.expect("the fake runtime has no terminal");
    let child = Command::new(&args[0])
        .args(&args[1..])
        .stdin(ProcStdio::from(stdio.stdin))
        .stdout(ProcStdio::from(stdio.stdout))
        .stderr(ProcStdio::from(stdio.stderr))
        .spawn()
        .map_err(|e| RuntimeError::Failed(Box::new(e)))?;
    // The agent's reaper reaps it: dropping `Child` does not wait.
    Ok(i32::try_from(child.id()).unwrap())
}

impl Runtime for ProcessRuntime {
    fn create(&self, req: CreateRequest<'_>) -> Result<i32, RuntimeError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("create {}", req.id));
        let spec: oci_spec::runtime::Spec =
            serde_json::from_slice(&std::fs::read(req.bundle.join("config.json")).unwrap())
                .unwrap();
        let args = spec.process().as_ref().unwrap().args().clone().unwrap();
        spawn_args(&args, req.stdio)
    }
    fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.calls.lock().unwrap().push(format!("start {id}"));
        Ok(())
    }
    fn exec(&self, req: ExecRequest<'_>) -> Result<i32, RuntimeError> {
        self.calls.lock().unwrap().push(format!("exec {}", req.id));
        let p: oci_spec::runtime::Process =
            serde_json::from_slice(&std::fs::read(req.process_json).unwrap()).unwrap();
        spawn_args(p.args().as_ref().unwrap(), req.stdio)
    }
    fn pause(&self, _id: &str) -> Result<(), RuntimeError> {
        Err(RuntimeError::WrongState("the container is stopped".into()))
    }
    fn resume(&self, _id: &str) -> Result<(), RuntimeError> {
        Ok(())
    }
    fn delete(&self, id: &str) -> Result<(), RuntimeError> {
        self.calls.lock().unwrap().push(format!("delete {id}"));
        Ok(())
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    client: AgentClient,
    stdio_path: PathBuf,
    _server: ttrpc::Server,
}

fn config(dir: &Path) -> Config {
    Config {
        run_dir: dir.join("run"),
        state_root: dir.join("state"),
        tty_dir: dir.join("tty"),
        cgroup_root: dir.join("cgroup"),
        default_rootfs: dir.join("rootfs"),
        no_pivot: false,
        shutdown: ShutdownAction::PowerOff,
    }
}

fn start(sys: Arc<dyn Syscall>, runtime: Arc<dyn Runtime>, reap: bool) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rootfs")).unwrap();
    let events = Arc::new(EventQueue::default());
    let agent = Arc::new(Agent::new(
        config(dir.path()),
        sys,
        runtime,
        Arc::clone(&events),
        None,
    ));
    if reap {
        Reaper {
            table: Arc::clone(&agent.processes),
            events,
            spawn: Arc::clone(&agent.spawn),
        }
        .spawn()
        .unwrap();
    }
    let stdio_path = dir.path().join("stdio.sock");
    let listener = Listener::bind(&ListenAddr::Unix(stdio_path.clone())).unwrap();
    let pending = Arc::clone(&agent.stdio);
    std::thread::spawn(move || crate::stdio::serve(listener, pending));
    let addr = format!("unix://{}", dir.path().join("agent.sock").display());
    let server = serve(Service::new(agent, vec!["tty".into()]), &addr).unwrap();
    let client = AgentClient::new(ttrpc::Client::connect(&addr).unwrap());
    Harness {
        _dir: dir,
        client,
        stdio_path,
        _server: server,
    }
}

fn code_of<T: std::fmt::Debug>(r: ttrpc::Result<T>) -> ttrpc::Code {
    match r {
        Err(ttrpc::Error::RpcStatus(s)) => s.code(),
        other => panic!("expected a status, got {other:?}"),
    }
}

fn ctx() -> context::Context {
    context::with_timeout(0)
}

#[test]
fn test_service_hello_round_trip() {
    // Arrange
    let h = start(
        Arc::new(RecordingSyscall::default()),
        Arc::new(ProcessRuntime::default()),
        false,
    );
    // Act
    let resp = h
        .client
        .hello(
            ctx(),
            &HelloRequest {
                protocol_version: lcow_protocol::PROTOCOL_VERSION,
                host: "test".into(),
                ..Default::default()
            },
        )
        .unwrap();
    // Assert
    assert_eq!(resp.protocol_version, lcow_protocol::PROTOCOL_VERSION);
    assert_eq!(resp.agent_version, env!("CARGO_PKG_VERSION"));
    assert!(resp.capabilities.contains(&"tty".to_owned()));
}

#[test]
fn test_service_hello_other_version_is_refused() {
    let h = start(
        Arc::new(RecordingSyscall::default()),
        Arc::new(ProcessRuntime::default()),
        false,
    );
    let r = h.client.hello(
        ctx(),
        &HelloRequest {
            protocol_version: lcow_protocol::PROTOCOL_VERSION + 1,
            ..Default::default()
        },
    );
    assert_eq!(code_of(r), ttrpc::Code::FAILED_PRECONDITION);
}

#[test]
fn test_service_unknown_container_is_not_found_and_bad_id_is_invalid() {
    let h = start(
        Arc::new(RecordingSyscall::default()),
        Arc::new(ProcessRuntime::default()),
        false,
    );
    let start_req = |id: &str| StartProcessRequest {
        container_id: id.into(),
        ..Default::default()
    };
    assert_eq!(
        code_of(h.client.start_process(ctx(), &start_req("nope"))),
        ttrpc::Code::NOT_FOUND
    );
    assert_eq!(
        code_of(h.client.start_process(ctx(), &start_req("../etc"))),
        ttrpc::Code::INVALID_ARGUMENT
    );
    let stats = h.client.stats(
        ctx(),
        &ContainerRequest {
            container_id: "nope".into(),
            ..Default::default()
        },
    );
    assert_eq!(code_of(stats), ttrpc::Code::NOT_FOUND);
}

#[test]
fn test_service_create_with_bad_json_or_missing_stream_is_refused() {
    let h = start(
        Arc::new(RecordingSyscall::default()),
        Arc::new(ProcessRuntime::default()),
        false,
    );
    let bad = h.client.create_container(
        ctx(),
        &CreateContainerRequest {
            container_id: "c1".into(),
            oci_spec: b"{".to_vec(),
            ..Default::default()
        },
    );
    assert_eq!(code_of(bad), ttrpc::Code::INVALID_ARGUMENT);
    let missing = h.client.create_container(
        ctx(),
        &CreateContainerRequest {
            container_id: "c1".into(),
            oci_spec: spec(&["true"]),
            stdio: Some(lcow_protocol::agent::Stdio {
                stdout: true,
                ..Default::default()
            })
            .into(),
            ..Default::default()
        },
    );
    match missing {
        Err(ttrpc::Error::RpcStatus(s)) => {
            assert_eq!(s.code(), ttrpc::Code::FAILED_PRECONDITION);
            assert!(s.message().contains("stdout"), "{}", s.message());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn test_service_shutdown_syncs_and_powers_off_after_reply() {
    let sys = Arc::new(RecordingSyscall::default());
    let h = start(sys.clone(), Arc::new(ProcessRuntime::default()), false);
    h.client.shutdown(ctx(), &Empty::new()).unwrap();
    assert!(
        !sys.calls().contains(&Call::PowerOff),
        "powered off before the reply"
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    let calls = sys.calls();
    assert!(calls.contains(&Call::Sync));
    assert_eq!(calls.last(), Some(&Call::PowerOff));
}

fn spec(args: &[&str]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {"cwd": "/", "args": args, "user": {"uid": 0, "gid": 0}},
        "root": {"path": "rootfs"},
        "linux": {}
    }))
    .unwrap()
}

fn connect_stream(h: &Harness, container: &str, exec: &str, kind: StreamKind) -> UnixStream {
    let mut s = UnixStream::connect(&h.stdio_path).unwrap();
    StdioHeader {
        container_id: container.into(),
        exec_id: exec.into(),
        kind,
    }
    .write_to(&mut s)
    .unwrap();
    let mut ack = [9u8];
    s.read_exact(&mut ack).unwrap();
    assert_eq!(ack, [ACK_OK]);
    s
}

fn stdio(stdin: bool, stdout: bool) -> protobuf::MessageField<lcow_protocol::agent::Stdio> {
    Some(lcow_protocol::agent::Stdio {
        stdin,
        stdout,
        ..Default::default()
    })
    .into()
}

/// The whole life of a container as the host drives it: stdio streams, create, start, wait,
/// events, exec, signals, remove. The only test that reaps children (the reaper waits for
/// any child of the test process).
#[test]
fn test_service_container_life_with_process_runtime() {
    // Arrange
    let runtime = Arc::new(ProcessRuntime::default());
    let h = start(Arc::new(LinuxSyscall), runtime.clone(), true);
    let mut stdin = connect_stream(&h, "c1", "", StreamKind::Stdin);
    let mut stdout = connect_stream(&h, "c1", "", StreamKind::Stdout);

    // Act: create and start a process that echoes a line and exits 3.
    let created = h
        .client
        .create_container(
            ctx(),
            &CreateContainerRequest {
                container_id: "c1".into(),
                oci_spec: spec(&["sh", "-c", "read x; echo got $x; exit 3"]),
                stdio: stdio(true, true),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(created.pid > 0);
    let started = h
        .client
        .start_process(
            ctx(),
            &StartProcessRequest {
                container_id: "c1".into(),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(started.pid, created.pid);
    stdin.write_all(b"hi\n").unwrap();
    let mut out = String::new();
    stdout.read_to_string(&mut out).unwrap();

    // Assert: output to EOF, then the exit from WaitProcess and GetEvent.
    assert_eq!(out, "got hi\n");
    let wait = |exec: &str| {
        h.client.wait_process(
            ctx(),
            &WaitProcessRequest {
                container_id: "c1".into(),
                exec_id: exec.into(),
                ..Default::default()
            },
        )
    };
    let exit = wait("").unwrap();
    assert_eq!(
        (exit.pid, exit.exit_status, exit.signal),
        (created.pid, 3, 0)
    );
    let event = h.client.get_event(ctx(), &Empty::new()).unwrap();
    assert_eq!(event.exited().container_id, "c1");
    assert_eq!(event.exited().status.exit_status, 3);

    // Exec and signal are refused once init has exited; removal is allowed.
    let exec = h.client.exec_process(
        ctx(),
        &ExecProcessRequest {
            container_id: "c1".into(),
            exec_id: "e1".into(),
            process: br#"{"cwd":"/","args":["true"],"user":{"uid":0,"gid":0}}"#.to_vec(),
            ..Default::default()
        },
    );
    assert_eq!(code_of(exec), ttrpc::Code::FAILED_PRECONDITION);
    let remove = |id: &str| {
        h.client.remove_container(
            ctx(),
            &ContainerRequest {
                container_id: id.into(),
                ..Default::default()
            },
        )
    };
    remove("c1").unwrap();
    assert_eq!(code_of(wait("")), ttrpc::Code::NOT_FOUND);

    // A long-running container: exec into it, signal the exec, then the init.
    let _out2 = connect_stream(&h, "c2", "", StreamKind::Stdout);
    h.client
        .create_container(
            ctx(),
            &CreateContainerRequest {
                container_id: "c2".into(),
                oci_spec: spec(&["sleep", "30"]),
                stdio: stdio(false, true),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        code_of(remove("c2")),
        ttrpc::Code::FAILED_PRECONDITION,
        "removed a running container"
    );
    h.client
        .start_process(
            ctx(),
            &StartProcessRequest {
                container_id: "c2".into(),
                ..Default::default()
            },
        )
        .unwrap();
    let exec = h
        .client
        .exec_process(
            ctx(),
            &ExecProcessRequest {
                container_id: "c2".into(),
                exec_id: "e1".into(),
                process: br#"{"cwd":"/","args":["sleep","30"],"user":{"uid":0,"gid":0}}"#.to_vec(),
                ..Default::default()
            },
        )
        .unwrap();
    let signal = |exec: &str, signal: u32| {
        h.client.signal_process(
            ctx(),
            &SignalProcessRequest {
                container_id: "c2".into(),
                exec_id: exec.into(),
                signal,
                ..Default::default()
            },
        )
    };
    signal("e1", 15).unwrap();
    let wait2 = |exec: &str| {
        h.client.wait_process(
            ctx(),
            &WaitProcessRequest {
                container_id: "c2".into(),
                exec_id: exec.into(),
                ..Default::default()
            },
        )
    };
    let exit = wait2("e1").unwrap();
    assert_eq!(
        (exit.pid, exit.exit_status, exit.signal),
        (exec.pid, 143, 15)
    );
    assert_eq!(code_of(signal("e1", 15)), ttrpc::Code::FAILED_PRECONDITION);
    assert_eq!(code_of(signal("nope", 15)), ttrpc::Code::NOT_FOUND);
    assert_eq!(code_of(signal("", 0)), ttrpc::Code::INVALID_ARGUMENT);
    signal("", 9).unwrap();
    let exit = wait2("").unwrap();
    assert_eq!((exit.exit_status, exit.signal), (137, 9));
    remove("c2").unwrap();
    let calls = runtime.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        [
            "create c1",
            "start c1",
            "delete c1",
            "create c2",
            "start c2",
            "exec c2",
            "delete c2"
        ]
    );
}
