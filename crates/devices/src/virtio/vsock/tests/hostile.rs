//! A hostile or broken guest or host client: malformed packets and descriptors, protocol
//! violations, credit overruns, limits and timeouts.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

use virtio_queue::desc::split::Descriptor as SplitDescriptor;
use virtio_queue::desc::RawDescriptor;
use vm_memory::{Bytes, GuestAddress};

use super::harness::*;
use crate::virtio::vsock::packet::*;
use crate::virtio::vsock::*;

#[test]
fn test_vsock_guest_rst_on_request_closes_host_stream_silently() {
    let mut h = Harness::new(Harness::limits());
    let (mut host, req) = h.host_connect(GUEST_PORT);

    h.send(pkt(OP_RST, req.src_port, GUEST_PORT), &[]);

    assert_eq!(drain(&mut host), Some(vec![]), "closed without a word");
    assert_eq!(h.connections(), 0);
    assert!(h.rx().is_empty(), "no rst answers an rst");
}

#[test]
fn test_vsock_malformed_connect_lines_close_stream() {
    let mut h = Harness::new(Harness::limits());
    let mut clients = Vec::new();
    for line in [
        &b"CONNECT x\n"[..],
        b"HELLO 1024\n",
        b"CONNECT 99999999999\n",
        &[b'A'; 40][..],
    ] {
        let mut c = UnixStream::connect(&h.path).unwrap();
        c.write_all(line).unwrap();
        clients.push(c);
    }

    h.pump();

    for c in &mut clients {
        assert!(closed(c));
    }
    assert!(h.rx().is_empty());
}

#[test]
fn test_vsock_connect_line_timeout_closes_stream() {
    let mut h = Harness::new(Limits {
        connect_timeout: Duration::ZERO,
        ..Harness::limits()
    });
    let mut slow = UnixStream::connect(&h.path).unwrap();
    slow.write_all(b"CONN").unwrap();

    h.pump();

    assert!(closed(&mut slow));
}

#[test]
fn test_vsock_response_timeout_resets_guest_and_closes_host() {
    let mut h = Harness::new(Limits {
        response_timeout: Duration::ZERO,
        ..Harness::limits()
    });
    let mut host = UnixStream::connect(&h.path).unwrap();
    host.write_all(b"CONNECT 1024\n").unwrap();

    h.pump();
    let rx = h.rx();

    assert!(closed(&mut host));
    assert_eq!(h.connections(), 0);
    assert!(rx.iter().any(|p| p.hdr.op == OP_RST), "{rx:?}");
}

#[test]
fn test_vsock_guest_connect_no_host_listener_rst() {
    let mut h = Harness::new(Harness::limits());

    h.send(pkt(OP_REQUEST, 5001, 40000), &[]);
    let rx = h.rx();

    assert_eq!(rx.len(), 1);
    assert_eq!(rx[0].hdr.op, OP_RST);
    assert_eq!((rx[0].hdr.src_port, rx[0].hdr.dst_port), (5001, 40000));
    assert_eq!(h.connections(), 0);
}

#[test]
fn test_vsock_tx_short_header_descriptor_dropped_without_panic() {
    let mut h = Harness::new(Harness::limits());

    h.send_raw(&[(TX_HDR_BASE, HEADER_SIZE as u32 - 1, 0)]);
    h.send_raw(&[(TX_HDR_BASE, HEADER_SIZE as u32, F_WRITE)]);
    h.send_raw(&[(0x3f_fff0, HEADER_SIZE as u32, 0)]); // runs off the end of memory
    h.send_raw(&[(u64::MAX - 8, HEADER_SIZE as u32, 0)]);

    assert_eq!(h.tx_used(), 4, "every chain is returned");
    assert!(h.rx().is_empty());
}

#[test]
fn test_vsock_tx_len_beyond_buffer_dropped_without_panic() {
    let mut h = Harness::new(Harness::limits());
    let (_host, lp) = h.established(GUEST_PORT);
    let hdr = pkt(OP_RW, lp, GUEST_PORT).with_len(100);
    h.mem
        .write_slice(&hdr.to_bytes(), GuestAddress(TX_HDR_BASE))
        .unwrap();
    let huge = pkt(OP_RW, lp, GUEST_PORT).with_len(MAX_PKT_DATA + 1);
    h.mem
        .write_slice(&huge.to_bytes(), GuestAddress(TX_HDR_BASE + 0x100))
        .unwrap();
    let before = h.tx_used();

    h.send_raw(&[(TX_HDR_BASE, HEADER_SIZE as u32, 0), (TX_DATA_BASE, 10, 0)]);
    h.send_raw(&[(TX_HDR_BASE, HEADER_SIZE as u32 + 10, 0)]);
    h.send_raw(&[
        (TX_HDR_BASE + 0x100, HEADER_SIZE as u32, 0),
        (TX_DATA_BASE, 0x20000, 0),
    ]);

    assert_eq!(h.tx_used().wrapping_sub(before), 3);
    assert_eq!(
        h.connections(),
        1,
        "dropped packets leave the connection alone"
    );
}

#[test]
fn test_vsock_tx_bad_op_on_connection_resets_it() {
    let mut h = Harness::new(Harness::limits());
    let (mut host, lp) = h.established(GUEST_PORT);

    h.send(pkt(99, lp, GUEST_PORT), &[]);
    let rx = h.rx();

    assert_eq!(rx.len(), 1, "{rx:?}");
    assert_eq!(rx[0].hdr.op, OP_RST);
    assert!(closed(&mut host));
    assert_eq!(h.connections(), 0);
}

#[test]
fn test_vsock_tx_payload_on_control_packet_resets_connection() {
    let mut h = Harness::new(Harness::limits());
    let (mut host, lp) = h.established(GUEST_PORT);

    h.send(pkt(OP_CREDIT_UPDATE, lp, GUEST_PORT).with_len(3), b"abc");

    assert_eq!(h.rx()[0].hdr.op, OP_RST);
    assert!(closed(&mut host));
}

#[test]
fn test_vsock_tx_unknown_connection_answered_with_rst() {
    let mut h = Harness::new(Harness::limits());

    h.send(pkt(OP_RW, 7, 8).with_len(2), b"hi");
    h.send(pkt(OP_RST, 7, 8), &[]);
    let rx = h.rx();

    assert_eq!(rx.len(), 1, "only the rw is answered: {rx:?}");
    assert_eq!(rx[0].hdr.op, OP_RST);
    assert_eq!((rx[0].hdr.src_port, rx[0].hdr.dst_port), (7, 8));
}

#[test]
fn test_vsock_tx_wrong_type_or_cid_answered_with_rst() {
    let mut h = Harness::new(Harness::limits());
    let (mut host, lp) = h.established(GUEST_PORT);
    let mut seqpacket = pkt(OP_REQUEST, 6000, 1);
    seqpacket.type_ = 2;
    let mut spoofed = pkt(OP_REQUEST, 6000, 2);
    spoofed.src_cid = 77;
    let mut wrong_dst = pkt(OP_RW, lp, GUEST_PORT).with_len(1);
    wrong_dst.dst_cid = 5;

    h.send(seqpacket, &[]);
    h.send(spoofed, &[]);
    h.send(wrong_dst, b"x");
    let rx = h.rx();

    assert_eq!(rx.len(), 3, "{rx:?}");
    assert!(rx
        .iter()
        .all(|p| p.hdr.op == OP_RST && p.hdr.dst_cid == GUEST_CID));
    assert!(
        closed(&mut host),
        "a bad packet on a live connection resets it"
    );
}

#[test]
fn test_vsock_credit_exhausted_stops_reading_host_until_update() {
    let mut h = Harness::new(Harness::limits());
    let (mut host, req) = h.host_connect(GUEST_PORT);
    let lp = req.src_port;
    let mut response = pkt(OP_RESPONSE, lp, GUEST_PORT);
    response.buf_alloc = 8;
    h.send(response, &[]);
    read_line(&mut host);

    host.write_all(&[7u8; 20]).unwrap();
    h.pump();
    let first = h.rx();
    h.pump();
    let while_starved = h.rx();
    let mut update = pkt(OP_CREDIT_UPDATE, lp, GUEST_PORT);
    update.buf_alloc = 8;
    update.fwd_cnt = 8;
    h.send(update, &[]);
    let after_update = h.rx();

    let data: Vec<_> = first.iter().filter(|p| p.hdr.op == OP_RW).collect();
    assert_eq!(data.len(), 1, "{first:?}");
    assert_eq!(data[0].data.len(), 8, "no more than the guest's buf_alloc");
    assert!(
        first.iter().any(|p| p.hdr.op == OP_CREDIT_REQUEST),
        "{first:?}"
    );
    assert!(while_starved.is_empty(), "{while_starved:?}");
    let more: usize = after_update
        .iter()
        .filter(|p| p.hdr.op == OP_RW)
        .map(|p| p.data.len())
        .sum();
    assert_eq!(more, 8, "{after_update:?}");
}

#[test]
fn test_vsock_guest_exceeding_credit_reset_and_buffer_bounded() {
    let mut h = Harness::new(Limits {
        buf_alloc: 4096,
        ..Harness::limits()
    });
    let (mut host, lp) = h.established(GUEST_PORT);
    let chunk = vec![0x5au8; 60 * 1024];

    // The host never reads: its socket buffer fills, then ours, then the guest overruns.
    let mut reset = false;
    let mut max_buffered = 0;
    for _ in 0..64 {
        h.send(
            pkt(OP_RW, lp, GUEST_PORT).with_len(chunk.len() as u32),
            &chunk,
        );
        if let Some(conn) = device_backend(&h.device).muxer.connection(lp, GUEST_PORT) {
            max_buffered = max_buffered.max(conn.buffered());
        }
        if h.rx().iter().any(|p| p.hdr.op == OP_RST) {
            reset = true;
            break;
        }
    }

    assert!(reset, "a guest overrunning its credit is reset");
    assert!(max_buffered <= 4096, "buffered {max_buffered}");
    assert!(closed(&mut host));
}

#[test]
fn test_vsock_connection_cap_refuses_excess_clients() {
    let mut h = Harness::new(Limits {
        max_connections: 2,
        ..Harness::limits()
    });
    let _a = h.host_connect(1);
    let _b = h.host_connect(2);
    let _service = UnixListener::bind(socket_path_for_port(&h.path, 5002)).unwrap();

    let mut third = UnixStream::connect(&h.path).unwrap();
    third.write_all(b"CONNECT 3\n").unwrap();
    h.pump();
    h.send(pkt(OP_REQUEST, 5002, 40000), &[]);

    assert!(closed(&mut third));
    assert_eq!(h.connections(), 2);
    let rx = h.rx();
    assert_eq!(rx.len(), 1, "{rx:?}");
    assert_eq!(rx[0].hdr.op, OP_RST, "the guest is refused too");
}

#[test]
fn test_vsock_rx_read_only_buffer_returned_empty() {
    let mut h = Harness::bare(Harness::limits());
    // The first buffer is read-only, the second too short for a header.
    let bad = [
        SplitDescriptor::new(RX_BUF_BASE, 0x1000, 0, 0),
        SplitDescriptor::new(RX_BUF_BASE + 0x2000, 10, F_WRITE, 0),
    ];
    for desc in bad {
        let slot = h.rx_posted % QSIZE;
        h.rxq.offer(&[RawDescriptor::from(desc)], slot).unwrap();
        h.rx_posted += 1;
    }
    h.post_rx();

    let (_host, req) = h.host_connect(GUEST_PORT);

    assert_eq!(req.op, OP_REQUEST, "the request went into the good buffer");
    assert_eq!(h.rx_empty, 2, "bad buffers are returned empty");
}

#[test]
fn test_vsock_nothing_leaks_to_host_before_ok() {
    let mut h = Harness::new(Harness::limits());
    let (host, req) = h.host_connect(GUEST_PORT);

    // Data from the guest before its response is a protocol violation.
    h.send(pkt(OP_RW, req.src_port, GUEST_PORT).with_len(4), b"evil");
    let mut host = host;

    assert_eq!(drain(&mut host), Some(vec![]));
    assert_eq!(h.rx()[0].hdr.op, OP_RST);
}
