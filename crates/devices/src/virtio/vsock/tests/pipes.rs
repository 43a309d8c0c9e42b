//! The Windows endpoint: host clients are real named pipes (opened as Windows programs open
//! them: a synchronous file, as `lcow_protocol`'s client does), the guest is the fake driver.
//! Pipe I/O runs on the streams' threads, so each step waits (bounded) for what it expects.

#![allow(clippy::unwrap_used)]

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{ERROR_PIPE_BUSY, INVALID_HANDLE_VALUE};
use windows_sys::Win32::Storage::FileSystem::PIPE_ACCESS_DUPLEX;
use windows_sys::Win32::System::Pipes::{
    ConnectNamedPipe, CreateNamedPipeW, PeekNamedPipe, PIPE_READMODE_BYTE, PIPE_TYPE_BYTE,
    PIPE_WAIT,
};

use super::harness::*;
use crate::virtio::vsock::packet::*;
use crate::virtio::vsock::sys::port_pipe;
use crate::virtio::vsock::*;

/// How long any one expectation may take.
const PATIENCE: Duration = Duration::from_secs(10);

/// Runs the worker until `done` holds for the packets the guest got (all of them, in order).
fn pump_until(h: &mut Harness, what: &str, done: impl Fn(&[Rx]) -> bool) -> Vec<Rx> {
    let deadline = Instant::now() + PATIENCE;
    let mut got = Vec::new();
    loop {
        assert!(h.worker.run_once(Some(Duration::from_millis(20))).unwrap());
        got.extend(h.rx());
        if done(&got) {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "no {what} after {PATIENCE:?}: {got:?}"
        );
    }
}

fn has_op(rx: &[Rx], op: u16) -> bool {
    rx.iter().any(|r| r.hdr.op == op)
}

/// Opens the pipe of guest `port` as a host client. One instance waits at a time, so a client
/// that finds it taken retries (as `lcow_protocol`'s client does) while the device accepts.
fn open(h: &mut Harness, port: u32) -> io::Result<File> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match OpenOptions::new()
            .read(true)
            .write(true)
            .open(port_pipe(&h.path, port))
        {
            Err(e) if e.raw_os_error() == Some(ERROR_PIPE_BUSY as i32) => {
                assert!(Instant::now() < deadline, "the pipe stayed busy");
                assert!(h.worker.run_once(Some(Duration::from_millis(20))).unwrap());
            }
            other => return other,
        }
    }
}

/// Bytes waiting in the client's pipe, or `Err` once the device closed its end.
fn available(client: &File) -> io::Result<u32> {
    let mut avail = 0u32;
    // SAFETY: `client` is an open pipe handle; only the count is asked for.
    let ok = unsafe {
        PeekNamedPipe(
            client.as_raw_handle(),
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
            &mut avail,
            std::ptr::null_mut(),
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(avail)
}

/// Reads `n` bytes from the client once they are there, pumping the device meanwhile.
fn read_exact(h: &mut Harness, client: &mut File, n: usize) -> Vec<u8> {
    let deadline = Instant::now() + PATIENCE;
    while (available(client).unwrap() as usize) < n {
        assert!(
            Instant::now() < deadline,
            "no {n} bytes for the host client"
        );
        assert!(h.worker.run_once(Some(Duration::from_millis(20))).unwrap());
    }
    let mut buf = vec![0u8; n];
    client.read_exact(&mut buf).unwrap();
    buf
}

/// A host client whose connection to guest `port` the guest accepted: the client and our port.
fn established(h: &mut Harness, port: u32) -> (File, u32) {
    let client = open(h, port).unwrap();
    let rx = pump_until(h, "REQUEST", |rx| has_op(rx, OP_REQUEST));
    let req = rx.iter().find(|r| r.hdr.op == OP_REQUEST).unwrap().hdr;
    assert_eq!(req.dst_port, port);
    assert!(req.src_port >= FIRST_LOCAL_PORT);
    h.send(pkt(OP_RESPONSE, req.src_port, port), &[]);
    (client, req.src_port)
}

#[test]
fn test_host_pipe_reaches_its_guest_port_both_ways() {
    let mut h = Harness::new(Harness::limits());
    let (mut client, local) = established(&mut h, GUEST_PORT);
    client.write_all(b"ping").unwrap();
    let rx = pump_until(&mut h, "the client's data", |rx| {
        rx.iter().any(|r| r.hdr.op == OP_RW && r.data == b"ping")
    });
    assert!(rx
        .iter()
        .all(|r| r.hdr.dst_port == GUEST_PORT && r.hdr.src_port == local));
    h.send(pkt(OP_RW, local, GUEST_PORT).with_len(4), b"pong");
    assert_eq!(read_exact(&mut h, &mut client, 4), b"pong");
    assert_eq!(h.connections(), 1);
}

#[test]
fn test_each_served_port_is_its_own_pipe() {
    let mut h = Harness::new(Harness::limits());
    let _a = open(&mut h, GUEST_PORT).unwrap();
    let _b = open(&mut h, SECOND_PORT).unwrap();
    let rx = pump_until(&mut h, "two REQUESTs", |rx| {
        rx.iter().filter(|r| r.hdr.op == OP_REQUEST).count() == 2
    });
    let mut ports: Vec<u32> = rx.iter().map(|r| r.hdr.dst_port).collect();
    ports.sort_unstable();
    assert_eq!(ports, [GUEST_PORT, SECOND_PORT]);
    assert_ne!(
        rx[0].hdr.src_port, rx[1].hdr.src_port,
        "one local port each"
    );
}

#[test]
fn test_many_clients_of_one_port_get_their_own_connections() {
    let mut h = Harness::new(Harness::limits());
    let clients: Vec<File> = (0..3).map(|_| open(&mut h, GUEST_PORT).unwrap()).collect();
    let rx = pump_until(&mut h, "three REQUESTs", |rx| {
        rx.iter().filter(|r| r.hdr.op == OP_REQUEST).count() == 3
    });
    let mut locals: Vec<u32> = rx.iter().map(|r| r.hdr.src_port).collect();
    locals.dedup();
    assert_eq!(locals.len(), 3);
    drop(clients);
}

#[test]
fn test_unserved_port_has_no_pipe() {
    let mut h = Harness::new(Harness::limits());
    let err = open(&mut h, 4000).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
}

#[test]
fn test_guest_rst_closes_the_host_pipe() {
    let mut h = Harness::new(Harness::limits());
    let client = open(&mut h, GUEST_PORT).unwrap();
    let rx = pump_until(&mut h, "REQUEST", |rx| has_op(rx, OP_REQUEST));
    h.send(pkt(OP_RST, rx[0].hdr.src_port, GUEST_PORT), &[]);
    let deadline = Instant::now() + PATIENCE;
    while available(&client).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the pipe stayed open after the guest's RST"
        );
        assert!(h.worker.run_once(Some(Duration::from_millis(20))).unwrap());
    }
    assert_eq!(h.connections(), 0);
}

#[test]
fn test_host_close_tells_the_guest() {
    let mut h = Harness::new(Harness::limits());
    let (client, local) = established(&mut h, GUEST_PORT);
    drop(client);
    let rx = pump_until(&mut h, "SHUTDOWN or RST", |rx| {
        has_op(rx, OP_SHUTDOWN) || has_op(rx, OP_RST)
    });
    let end = rx
        .iter()
        .find(|r| matches!(r.hdr.op, OP_SHUTDOWN | OP_RST))
        .unwrap();
    assert_eq!(end.hdr.src_port, local);
}

#[test]
fn test_client_that_never_reads_bounds_what_is_buffered() {
    let limits = Limits {
        buf_alloc: 16 * 1024,
        ..Harness::limits()
    };
    let mut h = Harness::new(limits);
    let (_client, local) = established(&mut h, GUEST_PORT);
    let chunk = vec![0x5a; 4096];
    // The guest keeps within the credit we give it; past it the connection is reset.
    let mut sent = 0usize;
    let mut reset = false;
    for _ in 0..200 {
        h.send(pkt(OP_RW, local, GUEST_PORT).with_len(4096), &chunk);
        sent += chunk.len();
        if let Some(conn) = device_backend(&h.device)
            .muxer
            .connection(local, GUEST_PORT)
        {
            assert!(conn.buffered() <= limits.buf_alloc as usize);
        }
        if h.rx().iter().any(|r| r.hdr.op == OP_RST) {
            reset = true;
            break;
        }
    }
    // Pipe buffers, the stream's buffer and our receive buffer are all bounded: a guest that
    // writes 800 KiB to a client that reads nothing is reset, not buffered.
    assert!(
        reset,
        "{sent} bytes buffered for a client that reads nothing"
    );
}

#[test]
#[ignore = "Wine does not enforce FILE_FLAG_FIRST_PIPE_INSTANCE (a second server of a pipe name \
            is accepted); run on a Windows host"]
fn test_endpoint_another_device_serves_is_in_use() {
    let h = Harness::new(Harness::limits());
    let err = Vsock::new_pipes(GUEST_CID, &h.path, &[GUEST_PORT], Harness::limits()).unwrap_err();
    assert!(matches!(err, VsockError::SocketInUse { .. }), "{err}");
}

#[test]
fn test_endpoint_port_count_is_bounded() {
    let base = Path::new(r"\\.\pipe\lcow-vsock-test-bounds");
    let ports: Vec<u32> = (0..9).collect();
    assert!(Vsock::new_pipes(GUEST_CID, base, &ports, Harness::limits()).is_err());
    assert!(Vsock::new_pipes(GUEST_CID, base, &[], Harness::limits()).is_err());
}

/// A host service at `name`: one pipe instance, whose client is the device.
fn service(name: &Path) -> OwnedHandle {
    let wide: Vec<u16> = name.as_os_str().encode_wide().chain([0]).collect();
    // SAFETY: `wide` outlives the call; the other arguments are plain values.
    let handle = unsafe {
        CreateNamedPipeW(
            wide.as_ptr(),
            PIPE_ACCESS_DUPLEX,
            PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT,
            1,
            4096,
            4096,
            0,
            std::ptr::null(),
        )
    };
    assert_ne!(
        handle,
        INVALID_HANDLE_VALUE,
        "{}",
        io::Error::last_os_error()
    );
    // SAFETY: a new handle nothing else owns.
    unsafe { OwnedHandle::from_raw_handle(handle) }
}

#[test]
fn test_guest_connect_opens_the_host_service_pipe() {
    let mut h = Harness::new(Harness::limits());
    let pipe = service(&socket_path_for_port(&h.path, 5000));
    let served = thread::spawn(move || {
        // SAFETY: an open pipe instance; a blocking wait for its client.
        unsafe { ConnectNamedPipe(pipe.as_raw_handle(), std::ptr::null_mut()) };
        let mut file = File::from(pipe);
        let mut got = [0u8; 5];
        file.read_exact(&mut got).unwrap();
        got
    });
    h.send(pkt(OP_REQUEST, 5000, 7000), &[]);
    let rx = pump_until(&mut h, "RESPONSE", |rx| has_op(rx, OP_RESPONSE));
    assert_eq!(rx[0].hdr.src_port, 5000);
    assert_eq!(rx[0].hdr.dst_port, 7000);
    h.send(pkt(OP_RW, 5000, 7000).with_len(5), b"hello");
    let deadline = Instant::now() + PATIENCE;
    while !served.is_finished() {
        assert!(Instant::now() < deadline, "the service got no data");
        assert!(h.worker.run_once(Some(Duration::from_millis(20))).unwrap());
    }
    assert_eq!(&served.join().unwrap(), b"hello");
}

#[test]
fn test_guest_connect_without_service_gets_rst() {
    let mut h = Harness::new(Harness::limits());
    h.send(pkt(OP_REQUEST, 5001, 7001), &[]);
    let rx = pump_until(&mut h, "RST", |rx| has_op(rx, OP_RST));
    assert_eq!(rx[0].hdr.src_port, 5001);
    assert_eq!(h.connections(), 0);
}
