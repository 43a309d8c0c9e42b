//! containerd's two-process start, driven as containerd drives it, on the host's own transport
//! (a unix socket on Linux; a named pipe on Windows, under Wine in `make test-windows`):
//! `start` spawns the server, prints its address once it listens and exits; the task service
//! answers there (Connect); Shutdown ends the server. containerd's event service is a ttrpc
//! server with no methods: the shim only has to reach it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use containerd_shim::protos::api::{ConnectRequest, ShutdownRequest};
use containerd_shim::protos::shim::shim_ttrpc::TaskClient;

const SHIM: &str = env!("CARGO_BIN_EXE_containerd-shim-lcow-v1");

/// A unique address for containerd's own socket and its events endpoint.
fn addresses(dir: &std::path::Path) -> (String, String) {
    let tag = format!(
        "lcow-test-{}-{}",
        std::process::id(),
        dir.file_name().unwrap().to_string_lossy()
    );
    if cfg!(windows) {
        (format!(r"\\.\pipe\{tag}"), format!(r"\\.\pipe\{tag}.ttrpc"))
    } else {
        let sock = dir.join("containerd.sock").display().to_string();
        (sock.clone(), format!("unix://{sock}.ttrpc"))
    }
}

fn client(address: &str) -> ttrpc::Client {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match ttrpc::Client::connect(address) {
            Ok(c) => return c,
            Err(e) if Instant::now() < deadline => {
                eprintln!("connecting to {address}: {e}; again");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("cannot connect to {address}: {e}"),
        }
    }
}

#[test]
fn test_start_serves_the_task_api_until_shutdown() {
    #[cfg(target_os = "linux")]
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP: the shim's socket goes under /run/containerd/s, which needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (containerd, events) = addresses(dir.path());
    let mut events_server = ttrpc::Server::new().bind(&events).unwrap();
    events_server.start().unwrap();
    let bundle = dir.path().join("bundle");
    std::fs::create_dir(&bundle).unwrap();

    let out = Command::new(SHIM)
        .args([
            "-namespace",
            "lcowtest",
            "-id",
            "c1",
            "-address",
            &containerd,
            "start",
        ])
        .env("TTRPC_ADDRESS", &events)
        .env("LCOW_CONFIG", dir.path().join("none.toml"))
        .current_dir(&bundle)
        .stdin(Stdio::null())
        .output()
        .unwrap();

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "start failed: {stderr}");
    let address = String::from_utf8(out.stdout).unwrap();
    let expected = containerd_shim::socket_address(&containerd, "lcowtest", "c1");
    assert_eq!(address, expected);
    let written = std::fs::read_to_string(bundle.join("address")).unwrap();
    assert_eq!(written, address);

    let task = TaskClient::new(client(&address));
    let ctx = ttrpc::context::with_timeout(Duration::from_secs(5).as_nanos() as i64);
    let hello = task
        .connect(
            ctx.clone(),
            &ConnectRequest {
                id: "c1".into(),
                ..Default::default()
            },
        )
        .unwrap();
    assert_ne!(hello.shim_pid, 0);
    assert_eq!(hello.task_pid, 0, "no container was created");

    // A second start for the same id joins the running server.
    let again = Command::new(SHIM)
        .args([
            "-namespace",
            "lcowtest",
            "-id",
            "c1",
            "-address",
            &containerd,
            "start",
        ])
        .env("TTRPC_ADDRESS", &events)
        .current_dir(&bundle)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(String::from_utf8(again.stdout).unwrap(), address);
    let hello2 = task
        .connect(
            ctx.clone(),
            &ConnectRequest {
                id: "c1".into(),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(hello2.shim_pid, hello.shim_pid);

    let _ = task.shutdown(ctx, &ShutdownRequest::default());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let gone = if cfg!(windows) {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&address)
                .is_err()
        } else {
            !std::path::Path::new(address.trim_start_matches("unix://")).exists()
        };
        if gone {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the shim still listens at {address} after Shutdown"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    events_server.shutdown();
}

/// A server that cannot start (containerd's events unreachable) fails `start` with its reason.
#[test]
fn test_start_names_why_the_server_did_not_start() {
    #[cfg(target_os = "linux")]
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP: the shim's socket goes under /run/containerd/s, which needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (containerd, events) = addresses(dir.path());

    let out = Command::new(SHIM)
        .args([
            "-namespace",
            "lcowtest",
            "-id",
            "c2",
            "-address",
            &containerd,
            "start",
        ])
        .env("TTRPC_ADDRESS", &events)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the shim server did not start: cannot connect to containerd's events at"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}
