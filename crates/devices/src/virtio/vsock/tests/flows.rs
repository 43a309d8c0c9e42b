//! Connections that work: both directions, data, credit, closing, many at once.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

use super::harness::*;
use crate::virtio::vsock::packet::*;
use crate::virtio::vsock::*;
use crate::virtio::VirtioDevice;

#[test]
fn test_vsock_config_space_guest_cid_little_endian() {
    let h = Harness::new(Harness::limits());
    let mut cid = [0u8; 8];
    let mut low = [0u8; 4];
    let mut past = [0xffu8; 4];

    h.device.read_config(0, &mut cid);
    h.device.read_config(0, &mut low);
    h.device.read_config(6, &mut past);

    assert_eq!(u64::from_le_bytes(cid), GUEST_CID);
    assert_eq!(u32::from_le_bytes(low), GUEST_CID as u32);
    assert_eq!(past, [0; 4], "reads past the config are zero");
    assert_eq!(h.device.device_type(), 19);
    assert_eq!(h.device.queue_max_sizes(), [256, 256, 256]);
}

#[test]
fn test_vsock_host_connect_guest_response_writes_ok() {
    let mut h = Harness::new(Harness::limits());

    let (mut host, req) = h.host_connect(GUEST_PORT);
    h.send(pkt(OP_RESPONSE, req.src_port, GUEST_PORT), &[]);

    assert_eq!(
        (req.src_cid, req.dst_cid, req.dst_port, req.type_),
        (HOST_CID, GUEST_CID, GUEST_PORT, TYPE_STREAM)
    );
    assert!(req.src_port >= FIRST_LOCAL_PORT);
    assert_eq!(req.buf_alloc, 64 * 1024);
    assert_eq!(read_line(&mut host), format!("OK {}\n", req.src_port));
    assert_ne!(h.interrupt.status() & 1, 0, "used-ring interrupt raised");
}

#[test]
fn test_vsock_established_data_flows_both_ways() {
    let mut h = Harness::new(Harness::limits());
    let (mut host, lp) = h.established(GUEST_PORT);

    host.write_all(b"ping").unwrap();
    h.pump();
    let to_guest = h.rx();
    h.send(pkt(OP_RW, lp, GUEST_PORT).with_len(4), b"pong");
    let mut got = [0u8; 4];
    host.read_exact(&mut got).unwrap();

    assert_eq!(to_guest.len(), 1, "{to_guest:?}");
    assert_eq!(to_guest[0].hdr.op, OP_RW);
    assert_eq!(to_guest[0].data, b"ping");
    assert_eq!(
        (to_guest[0].hdr.src_port, to_guest[0].hdr.dst_port),
        (lp, GUEST_PORT)
    );
    assert_eq!(&got, b"pong");
}

#[test]
fn test_vsock_many_connections_each_routed_to_its_stream() {
    let mut h = Harness::new(Harness::limits());
    let mut conns: Vec<(UnixStream, u32, u32)> = (0..5)
        .map(|i| {
            let (s, lp) = h.established(2000 + i);
            (s, lp, 2000 + i)
        })
        .collect();

    for (i, (s, _, _)) in conns.iter_mut().enumerate() {
        s.write_all(format!("from host {i}").as_bytes()).unwrap();
    }
    h.pump();
    let rx = h.rx();
    for (i, (_, lp, port)) in conns.iter().enumerate() {
        let msg = format!("to host {i}");
        h.send(
            pkt(OP_RW, *lp, *port).with_len(msg.len() as u32),
            msg.as_bytes(),
        );
    }

    assert_eq!(rx.len(), 5, "{rx:?}");
    for (i, (s, lp, port)) in conns.iter_mut().enumerate() {
        let pkt = rx.iter().find(|p| p.hdr.src_port == *lp).unwrap();
        assert_eq!(pkt.hdr.dst_port, *port);
        assert_eq!(pkt.data, format!("from host {i}").as_bytes());
        let mut buf = vec![0u8; format!("to host {i}").len()];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(buf, format!("to host {i}").as_bytes());
    }
}

#[test]
fn test_vsock_guest_connect_host_listener_proxies() {
    let mut h = Harness::new(Harness::limits());
    let service = UnixListener::bind(socket_path_for_port(&h.path, 5000)).unwrap();

    h.send(pkt(OP_REQUEST, 5000, 40000), &[]);
    let rx = h.rx();
    let (mut peer, _) = service.accept().unwrap();
    h.send(pkt(OP_RW, 5000, 40000).with_len(5), b"hello");
    let mut got = [0u8; 5];
    peer.read_exact(&mut got).unwrap();
    peer.write_all(b"world").unwrap();
    h.pump();
    let back = h.rx();

    assert_eq!(rx.len(), 1, "{rx:?}");
    assert_eq!(rx[0].hdr.op, OP_RESPONSE);
    assert_eq!((rx[0].hdr.src_port, rx[0].hdr.dst_port), (5000, 40000));
    assert_eq!(&got, b"hello");
    assert_eq!(back.len(), 1, "{back:?}");
    assert_eq!(back[0].data, b"world");
}

#[test]
fn test_vsock_credit_request_answered_with_update() {
    let mut h = Harness::new(Harness::limits());
    let (_host, lp) = h.established(GUEST_PORT);

    h.send(pkt(OP_CREDIT_REQUEST, lp, GUEST_PORT), &[]);
    let rx = h.rx();

    assert_eq!(rx.len(), 1);
    assert_eq!(rx[0].hdr.op, OP_CREDIT_UPDATE);
    assert_eq!(rx[0].hdr.buf_alloc, 64 * 1024);
}

#[test]
fn test_vsock_slow_host_reader_gets_everything_and_credit_updates() {
    let mut h = Harness::new(Harness::limits());
    let (mut host, lp) = h.established(GUEST_PORT);
    let total = 512 * 1024;
    let chunk = vec![0xa5u8; 32 * 1024];
    let mut sent = 0;
    let mut received = 0;
    let mut updates = 0;
    let mut fwd_seen = 0u32;
    let mut buf = vec![0u8; 64 * 1024];
    host.set_nonblocking(true).unwrap();

    for _ in 0..10_000 {
        if received >= total {
            break;
        }
        // The guest honours the credit the device advertised.
        let in_flight = sent as u32 - fwd_seen;
        if sent < total && in_flight + chunk.len() as u32 <= 64 * 1024 {
            h.send(
                pkt(OP_RW, lp, GUEST_PORT).with_len(chunk.len() as u32),
                &chunk,
            );
            sent += chunk.len();
        }
        match host.read(&mut buf) {
            Ok(n) => received += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
        h.pump();
        for p in h.rx() {
            assert_ne!(p.hdr.op, OP_RST, "the connection must survive");
            fwd_seen = fwd_seen.max(p.hdr.fwd_cnt);
            updates += usize::from(p.hdr.op == OP_CREDIT_UPDATE);
        }
    }

    assert_eq!(received, total);
    assert!(updates > 0, "credit updates keep the guest going");
}

#[test]
fn test_vsock_guest_shutdown_half_closes_then_rst_completes() {
    let mut h = Harness::new(Harness::limits());
    let (mut host, lp) = h.established(GUEST_PORT);

    let mut shut = pkt(OP_SHUTDOWN, lp, GUEST_PORT);
    shut.flags = SHUTDOWN_SEND;
    h.send(shut, &[]);
    let mut buf = [0u8; 1];
    let eof = host.read(&mut buf).unwrap();
    host.write_all(b"still").unwrap();
    h.pump();
    let after_half = h.rx();
    shut.flags = SHUTDOWN_SEND | SHUTDOWN_RCV;
    h.send(shut, &[]);
    let after_full = h.rx();

    assert_eq!(eof, 0, "the host sees end of file");
    assert_eq!(after_half.len(), 1);
    assert_eq!(
        after_half[0].data, b"still",
        "the other direction still works"
    );
    assert_eq!(after_full.len(), 1);
    assert_eq!(after_full[0].hdr.op, OP_RST);
    assert_eq!(h.connections(), 0);
}

#[test]
fn test_vsock_host_eof_sends_shutdown_send() {
    let mut h = Harness::new(Harness::limits());
    let (host, lp) = h.established(GUEST_PORT);

    host.shutdown(std::net::Shutdown::Write).unwrap();
    h.pump();
    let rx = h.rx();
    h.send(pkt(OP_RW, lp, GUEST_PORT).with_len(3), b"bye");
    let mut got = [0u8; 3];
    (&host).read_exact(&mut got).unwrap();

    assert_eq!(rx.len(), 1, "{rx:?}");
    assert_eq!(rx[0].hdr.op, OP_SHUTDOWN);
    assert_eq!(rx[0].hdr.flags, SHUTDOWN_SEND);
    assert_eq!(&got, b"bye", "the host can still receive");
}

#[test]
fn test_vsock_host_close_after_data_delivers_data_then_shutdown() {
    let mut h = Harness::new(Harness::limits());
    let (mut host, _lp) = h.established(GUEST_PORT);

    host.write_all(b"last words").unwrap();
    drop(host);
    h.pump();
    let rx = h.rx();

    let ops: Vec<u16> = rx.iter().map(|p| p.hdr.op).collect();
    assert_eq!(ops, [OP_RW, OP_SHUTDOWN], "{rx:?}");
    assert_eq!(rx[0].data, b"last words");
    assert_eq!(rx[1].hdr.flags, SHUTDOWN_SEND | SHUTDOWN_RCV);
}

#[test]
fn test_vsock_no_rx_buffers_holds_packets_until_posted() {
    let mut h = Harness::new(Harness::limits());
    // Consume all posted buffers with connections, then one more waits.
    let mut hosts = Vec::new();
    for port in 0..u32::from(RX_BUFS) {
        let mut s = UnixStream::connect(&h.path).unwrap();
        s.write_all(format!("CONNECT {}\n", 3000 + port).as_bytes())
            .unwrap();
        hosts.push(s);
    }
    let mut late = UnixStream::connect(&h.path).unwrap();
    late.write_all(b"CONNECT 3999\n").unwrap();
    hosts.push(late);
    h.pump();
    let used = h.rxq.used_idx().unwrap();

    let delivered = h.rx(); // reposts buffers and notifies
    h.pump();
    let rest = h.rx();

    assert_eq!(used, RX_BUFS, "one packet per buffer");
    assert_eq!(delivered.len(), usize::from(RX_BUFS));
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].hdr.dst_port, 3999);
}

#[test]
fn test_vsock_device_reset_closes_host_streams() {
    let mut h = Harness::new(Harness::limits());
    let (mut host, _) = h.established(GUEST_PORT);

    h.device.reset();
    h.pump();

    assert!(closed(&mut host));
    assert_eq!(h.connections(), 0);
}

#[test]
fn test_vsock_worker_stop_ends_loop() {
    let h = Harness::new(Harness::limits());
    let stopper = h.worker.stopper().unwrap();

    stopper.stop().unwrap();

    assert!(!h.worker.run_once(Some(Duration::from_secs(1))).unwrap());
}

#[test]
fn test_vsock_drop_removes_socket_file() {
    let h = Harness::new(Harness::limits());
    let path = h.path.clone();
    assert!(path.exists());

    let Harness {
        device,
        worker,
        _dir,
        ..
    } = h;
    drop(worker);
    drop(device);

    assert!(!path.exists());
}

/// Many small packets, the way a terminal streams line by line, with the driver notifying only
/// when the device asked for it: every packet reaches the host, and the device leaves its rings
/// asking to be notified of the next buffer.
fn small_packets_all_delivered(mut h: Harness) {
    let (mut host, lp) = h.established(GUEST_PORT);
    let line = b"lcow-stdio-check\n";
    let count = 3 * usize::from(QSIZE) + 5; // the rings wrap
    let kicks_before = h.kicks;

    for _ in 0..count {
        h.send(pkt(OP_RW, lp, GUEST_PORT).with_len(line.len() as u32), line);
        h.rx();
    }
    let mut got = vec![0u8; count * line.len()];
    host.read_exact(&mut got).unwrap();

    assert_eq!(got, line.repeat(count));
    assert_eq!(
        h.tx_used(),
        h.txq.avail_idx().unwrap(),
        "every tx packet was taken"
    );
    assert_eq!(
        h.kicks - kicks_before,
        count,
        "the device, idle, wanted each packet"
    );
    let (tx_next, rx_next) = {
        let b = device_backend(&h.device);
        b.ring_positions().unwrap()
    };
    assert_eq!(tx_next, h.txq.avail_idx().unwrap());
    let next = h.txq.avail_idx().unwrap();
    assert!(
        h.txq
            .should_notify(h.event_idx, next, next.wrapping_add(1))
            .unwrap(),
        "tx: the next packet is notified"
    );
    assert!(
        h.rxq
            .should_notify(h.event_idx, rx_next, rx_next.wrapping_add(1))
            .unwrap(),
        "rx: the buffer after the last one taken is notified"
    );
}

#[test]
fn test_vsock_small_packets_delivered_notified_by_flags() {
    small_packets_all_delivered(Harness::new(Harness::limits()));
}

#[test]
fn test_vsock_small_packets_delivered_notified_by_event_idx() {
    small_packets_all_delivered(Harness::new_event_idx(Harness::limits()));
}

#[test]
fn test_vsock_event_idx_no_rx_buffers_resumes_at_the_guests_notification() {
    let mut h = Harness::new_event_idx(Harness::limits());
    let mut hosts = Vec::new();
    for port in 0..=u32::from(RX_BUFS) {
        let mut s = UnixStream::connect(&h.path).unwrap();
        s.write_all(format!("CONNECT {}\n", 3000 + port).as_bytes())
            .unwrap();
        hosts.push(s);
    }
    h.pump();
    let kicks = h.kicks;

    let delivered = h.rx(); // reposts the buffers, notifying if the device asked
    let notified = h.kicks - kicks;
    h.pump();
    let rest = h.rx();

    assert_eq!(delivered.len(), usize::from(RX_BUFS));
    assert_eq!(
        notified, 1,
        "the device, out of buffers, asked to hear of new ones"
    );
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].hdr.dst_port, 3000 + u32::from(RX_BUFS));
}
