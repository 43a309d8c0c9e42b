//! The loopback guest on Linux: a host client on the device's unix socket reaches a host
//! "guest service" through the device, the muxer and the fake guest, both ways.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::thread;
use std::time::Duration;

use crate::virtio::vsock::loopback::LoopbackGuest;
use crate::virtio::vsock::{Limits, Vsock, DEFAULT_GUEST_CID};

#[test]
fn test_loopback_guest_bridges_a_host_client_to_its_service() {
    let dir = tempfile::tempdir().unwrap();
    let vsock = dir.path().join("v.sock");
    let service_path = dir.path().join("agent.sock");
    let service = UnixListener::bind(&service_path).unwrap();
    // The guest's service: answers each line with its upper-case copy.
    let served = thread::spawn(move || {
        let (stream, _) = service.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        writer.write_all(line.to_uppercase().as_bytes()).unwrap();
    });
    let (device, worker) = Vsock::new(DEFAULT_GUEST_CID, &vsock, Limits::default()).unwrap();
    let guest =
        LoopbackGuest::start(device, worker, HashMap::from([(1024, service_path)])).unwrap();

    let mut host = UnixStream::connect(&vsock).unwrap();
    host.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    host.write_all(b"CONNECT 1024\n").unwrap();
    let mut reader = BufReader::new(host.try_clone().unwrap());
    let mut ok = String::new();
    reader.read_line(&mut ok).unwrap();
    assert!(ok.starts_with("OK "), "{ok:?}");
    host.write_all(b"hello guest\n").unwrap();
    let mut answer = String::new();
    reader.read_line(&mut answer).unwrap();
    assert_eq!(answer, "HELLO GUEST\n");

    served.join().unwrap();
    guest.stop().unwrap();
}

#[test]
fn test_loopback_guest_refuses_a_port_without_service() {
    let dir = tempfile::tempdir().unwrap();
    let vsock = dir.path().join("v.sock");
    let (device, worker) = Vsock::new(DEFAULT_GUEST_CID, &vsock, Limits::default()).unwrap();
    let guest = LoopbackGuest::start(device, worker, HashMap::new()).unwrap();
    let mut host = UnixStream::connect(&vsock).unwrap();
    host.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    host.write_all(b"CONNECT 2000\n").unwrap();
    let mut reply = String::new();
    // The guest's RST closes the client's stream without a word.
    BufReader::new(host).read_line(&mut reply).unwrap();
    assert_eq!(reply, "");
    guest.stop().unwrap();
}
