//! One vsock stream between a guest port and a host unix stream: its state, its credit
//! accounting in both directions, the guest data waiting for the host stream, and the packets
//! it owes the guest.
//!
//! The connection never touches the wait context or the queues: the muxer asks it what it wants to be
//! woken for ([`Connection::interest`]), hands it guest packets and host events, and takes the
//! packets it has for the guest ([`Connection::next_rx`]). Every handler returns a
//! [`Verdict`] saying whether the connection lives on.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::Shutdown;
use std::num::Wrapping;
use std::time::Instant;

use lcow_base::{EventType, TriggeredEvent};

use super::sys::{HostStream, HANDSHAKE};
use vm_memory::{ReadVolatile, VolatileMemoryError, VolatileSlice, WriteVolatile};

use super::packet::{
    Header, OP_CREDIT_REQUEST, OP_CREDIT_UPDATE, OP_REQUEST, OP_RESPONSE, OP_RST, OP_RW,
    OP_SHUTDOWN, SHUTDOWN_RCV, SHUTDOWN_SEND, TYPE_STREAM,
};
use super::{Limits, HOST_CID};

/// Guest memory as the device sees it (no dirty bitmap).
pub(super) type Slice<'a> = VolatileSlice<'a, ()>;

/// What happens to a connection after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// It lives on.
    Keep,
    /// Remove it without telling the guest (the guest reset it).
    Drop,
    /// Remove it and send the guest an `RST` (an error, a timeout, or the end of a clean close).
    Reset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Host-initiated: the `REQUEST` is (to be) sent; waiting for the guest's `RESPONSE`.
    LocalInit,
    /// Data may flow (subject to the shutdown flags).
    Established,
}

/// Packets owed to the guest.
#[derive(Debug, Default, Clone, Copy)]
struct Pending {
    request: bool,
    response: bool,
    /// The host stream may have data for the guest.
    rw: bool,
    credit_update: bool,
}

/// See the module documentation.
#[derive(Debug)]
pub(super) struct Connection {
    stream: HostStream,
    /// The wait token of the host stream.
    pub(super) token: u64,
    /// Our port (the host side).
    pub(super) local_port: u32,
    /// The guest's port.
    pub(super) peer_port: u32,
    /// Whether the host opened it (its local port is then from the muxer's pool).
    pub(super) host_initiated: bool,
    guest_cid: u64,
    limits: Limits,
    state: State,
    pending: Pending,
    /// The guest will send nothing more.
    guest_shut_send: bool,
    /// The guest will receive nothing more.
    guest_shut_recv: bool,
    /// The host stream reached end of file (the guest was told `SHUTDOWN_SEND`).
    host_eof: bool,
    /// The host end hung up: the wait would report it forever, so the stream is read without it.
    host_hup: bool,
    /// We shut the write side of the host stream (the guest shut its send side).
    host_write_shut: bool,
    /// Guest data the host stream has not taken yet; never more than `limits.buf_alloc`.
    tx_buf: VecDeque<u8>,
    /// Bytes of guest data delivered to the host stream.
    fwd_cnt: Wrapping<u32>,
    /// `fwd_cnt` as the guest last heard it.
    last_fwd_cnt_sent: Wrapping<u32>,
    /// The guest's receive buffer size.
    peer_buf_alloc: u32,
    /// What the guest consumed of it.
    peer_fwd_cnt: Wrapping<u32>,
    /// Bytes we sent the guest.
    rx_cnt: Wrapping<u32>,
    /// A `CREDIT_REQUEST` went out and no credit came back yet.
    credit_requested: bool,
    deadline: Option<Instant>,
    /// The wait interest as registered (`None`: not registered).
    pub(super) registered: Option<EventType>,
    /// Whether the muxer has it in its receive queue.
    pub(super) queued: bool,
}

impl Connection {
    /// A host-initiated connection: a `REQUEST` to `peer_port` is owed to the guest, and the
    /// guest has until `deadline` to answer.
    pub(super) fn new_local_init(
        stream: HostStream,
        token: u64,
        ports: (u32, u32),
        guest_cid: u64,
        limits: Limits,
        deadline: Instant,
    ) -> Self {
        let mut conn = Self::new(stream, token, ports, guest_cid, limits, State::LocalInit);
        conn.host_initiated = true;
        conn.pending.request = true;
        conn.deadline = Some(deadline);
        conn
    }

    /// A guest-initiated connection whose host stream is connected: a `RESPONSE` is owed.
    pub(super) fn new_peer_init(
        stream: HostStream,
        token: u64,
        ports: (u32, u32),
        guest_cid: u64,
        limits: Limits,
        request: &Header,
    ) -> Self {
        let mut conn = Self::new(stream, token, ports, guest_cid, limits, State::Established);
        conn.pending.response = true;
        conn.peer_buf_alloc = request.buf_alloc;
        conn.peer_fwd_cnt = Wrapping(request.fwd_cnt);
        conn
    }

    fn new(
        stream: HostStream,
        token: u64,
        (local_port, peer_port): (u32, u32),
        guest_cid: u64,
        limits: Limits,
        state: State,
    ) -> Self {
        Self {
            stream,
            token,
            local_port,
            peer_port,
            host_initiated: false,
            guest_cid,
            limits,
            state,
            pending: Pending::default(),
            guest_shut_send: false,
            guest_shut_recv: false,
            host_eof: false,
            host_hup: false,
            host_write_shut: false,
            tx_buf: VecDeque::new(),
            fwd_cnt: Wrapping(0),
            last_fwd_cnt_sent: Wrapping(0),
            peer_buf_alloc: 0,
            peer_fwd_cnt: Wrapping(0),
            rx_cnt: Wrapping(0),
            credit_requested: false,
            deadline: None,
            registered: None,
            queued: false,
        }
    }

    /// The host stream (to register it for waits).
    pub(super) fn stream(&self) -> &HostStream {
        &self.stream
    }

    /// When the connection times out, if it can.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether it owes the guest a packet.
    pub(super) fn has_pending_rx(&self) -> bool {
        let p = self.pending;
        p.request || p.response || p.rw || p.credit_update
    }

    /// Bytes of guest data waiting for the host stream.
    #[cfg(test)]
    pub(super) fn buffered(&self) -> usize {
        self.tx_buf.len()
    }

    /// What the guest can still take from us.
    fn peer_credit(&self) -> u32 {
        let in_flight = (self.rx_cnt - self.peer_fwd_cnt).0;
        self.peer_buf_alloc.saturating_sub(in_flight)
    }

    /// Whether host data may go to the guest.
    fn can_read_host(&self) -> bool {
        self.state == State::Established && !self.host_eof && !self.guest_shut_recv
    }

    /// What the host stream should be watched for (`None`: not at all). Hang-ups
    /// and errors are always reported while registered.
    pub(super) fn interest(&self) -> Option<EventType> {
        if self.host_hup {
            return None;
        }
        let write = !self.tx_buf.is_empty();
        let read = self.can_read_host() && !self.pending.rw && self.peer_credit() > 0;
        Some(match (read, write) {
            (false, false) => EventType::None,
            (true, false) => EventType::Read,
            (false, true) => EventType::Write,
            (true, true) => EventType::ReadWrite,
        })
    }

    /// Brings derived state up to date after any change; the muxer calls it before
    /// [`Connection::interest`]. A hung-up host stream is not watched, so it is read whenever
    /// the guest can take data.
    pub(super) fn refresh(&mut self) {
        if self.host_hup && self.can_read_host() && self.peer_credit() > 0 {
            self.pending.rw = true;
        }
    }

    /// A packet from the guest for this connection. `data` is the payload (only for `RW`).
    pub(super) fn on_guest_packet(
        &mut self,
        hdr: &Header,
        data: Option<&Slice<'_>>,
        now: Instant,
    ) -> Verdict {
        self.peer_buf_alloc = hdr.buf_alloc;
        self.peer_fwd_cnt = Wrapping(hdr.fwd_cnt);
        if self.peer_credit() > 0 {
            self.credit_requested = false;
        }
        if hdr.op != OP_RW && hdr.len != 0 {
            return self.violation(hdr, "payload on a control packet");
        }
        match (self.state, hdr.op) {
            (_, OP_RST) => Verdict::Drop,
            (State::LocalInit, OP_RESPONSE) => self.established(),
            (State::LocalInit, _) => self.violation(hdr, "packet before the response"),
            (State::Established, OP_RW) => self.guest_data(hdr, data),
            (State::Established, OP_CREDIT_UPDATE) => Verdict::Keep,
            (State::Established, OP_CREDIT_REQUEST) => {
                self.pending.credit_update = true;
                Verdict::Keep
            }
            (State::Established, OP_SHUTDOWN) => self.guest_shutdown(hdr.flags, now),
            (State::Established, _) => self.violation(hdr, "unexpected operation"),
        }
    }

    fn violation(&self, hdr: &Header, what: &'static str) -> Verdict {
        tracing::debug!(
            local_port = self.local_port,
            peer_port = self.peer_port,
            op = hdr.op,
            len = hdr.len,
            "vsock protocol violation: {what}"
        );
        Verdict::Reset
    }

    /// The guest accepted our `REQUEST`: tell the host client which port it got (where the
    /// endpoint has a handshake; a named pipe's client learns it by the data flowing).
    fn established(&mut self) -> Verdict {
        if !HANDSHAKE {
            self.state = State::Established;
            self.deadline = None;
            tracing::debug!(
                local_port = self.local_port,
                peer_port = self.peer_port,
                "host-initiated vsock connection established"
            );
            return Verdict::Keep;
        }
        let line = format!("OK {}\n", self.local_port);
        match self.stream.write(line.as_bytes()) {
            Ok(n) if n == line.len() => {
                self.state = State::Established;
                self.deadline = None;
                tracing::debug!(
                    local_port = self.local_port,
                    peer_port = self.peer_port,
                    "host-initiated vsock connection established"
                );
                Verdict::Keep
            }
            result => {
                // A fresh stream's buffer always takes the line unless the client went away.
                tracing::debug!(
                    local_port = self.local_port,
                    ?result,
                    "cannot answer the host client"
                );
                Verdict::Reset
            }
        }
    }

    fn guest_data(&mut self, hdr: &Header, data: Option<&Slice<'_>>) -> Verdict {
        if self.guest_shut_send {
            return self.violation(hdr, "data after shutting down sending");
        }
        let Some(data) = data.filter(|d| !d.is_empty()) else {
            return Verdict::Keep;
        };
        let len = data.len();
        let mut written = 0;
        if self.tx_buf.is_empty() {
            match self.stream.write_volatile(data) {
                Ok(n) => written = n,
                Err(VolatileMemoryError::IOError(e)) if is_transient(&e) => {}
                Err(e) => {
                    tracing::debug!(local_port = self.local_port, error = %e, "host stream write failed");
                    return Verdict::Reset;
                }
            }
        }
        let rest = len - written;
        if self.tx_buf.len() + rest > self.limits.buf_alloc as usize {
            return self.violation(hdr, "data beyond the credit we gave");
        }
        if rest > 0 {
            let mut chunk = vec![0u8; rest];
            match data.subslice(written, rest) {
                Ok(slice) => {
                    slice.copy_to(&mut chunk[..]);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "guest data slice out of range");
                    return Verdict::Reset;
                }
            }
            self.tx_buf.extend(chunk);
        }
        self.forwarded(written);
        Verdict::Keep
    }

    /// `n` more bytes reached the host stream.
    fn forwarded(&mut self, n: usize) {
        self.fwd_cnt += Wrapping(n as u32);
        if (self.fwd_cnt - self.last_fwd_cnt_sent).0 >= self.limits.credit_update_threshold() {
            self.pending.credit_update = true;
        }
    }

    fn guest_shutdown(&mut self, flags: u32, now: Instant) -> Verdict {
        if flags & SHUTDOWN_RCV != 0 {
            self.guest_shut_recv = true;
            self.pending.rw = false;
        }
        if flags & SHUTDOWN_SEND != 0 {
            self.guest_shut_send = true;
        }
        self.after_drain(now)
    }

    /// Half-closes the host stream once the guest's data is all delivered, and decides whether
    /// the connection is over.
    fn after_drain(&mut self, now: Instant) -> Verdict {
        if !self.tx_buf.is_empty() {
            if self.guest_shut_send && self.guest_shut_recv && self.deadline.is_none() {
                self.deadline = Some(now + self.limits.shutdown_timeout);
            }
            return Verdict::Keep;
        }
        if self.tx_buf.capacity() > 64 * 1024 {
            self.tx_buf = VecDeque::new();
        }
        if self.guest_shut_send && !self.host_write_shut {
            self.host_write_shut = true;
            if let Err(e) = self.stream.shutdown(Shutdown::Write) {
                tracing::debug!(local_port = self.local_port, error = %e, "host stream half-close failed");
            }
        }
        let guest_done = self.guest_shut_send && self.guest_shut_recv;
        if guest_done || (self.guest_shut_send && self.host_eof) {
            // Both sides are done: the protocol ends a connection with an RST.
            return Verdict::Reset;
        }
        Verdict::Keep
    }

    /// Events on the host stream.
    pub(super) fn on_host_event(&mut self, events: &TriggeredEvent<u64>, now: Instant) -> Verdict {
        if events.is_error {
            tracing::debug!(local_port = self.local_port, "host stream error");
            return Verdict::Reset;
        }
        if events.is_hungup {
            self.host_hup = true;
            if self.state == State::LocalInit {
                // The client gave up before the guest answered.
                return Verdict::Reset;
            }
        }
        if events.is_writable || (self.host_hup && !self.tx_buf.is_empty()) {
            let verdict = self.flush(now);
            if verdict != Verdict::Keep {
                return verdict;
            }
        }
        if events.is_readable && self.can_read_host() {
            self.pending.rw = true;
        }
        Verdict::Keep
    }

    /// Writes buffered guest data to the host stream.
    fn flush(&mut self, now: Instant) -> Verdict {
        let mut flushed = 0;
        while !self.tx_buf.is_empty() {
            let (front, _) = self.tx_buf.as_slices();
            match self.stream.write(front) {
                Ok(0) => return Verdict::Reset,
                Ok(n) => {
                    self.tx_buf.drain(..n);
                    flushed += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::debug!(local_port = self.local_port, error = %e, "host stream write failed");
                    return Verdict::Reset;
                }
            }
        }
        self.forwarded(flushed);
        self.after_drain(now)
    }

    /// The next packet for the guest, written into `buf` (the rx buffer's data part) for `RW`.
    /// `None` when nothing can be sent now.
    pub(super) fn next_rx(
        &mut self,
        buf: Option<&Slice<'_>>,
        now: Instant,
    ) -> (Option<Header>, Verdict) {
        if self.pending.request {
            self.pending.request = false;
            return (Some(self.header(OP_REQUEST)), Verdict::Keep);
        }
        if self.pending.response {
            self.pending.response = false;
            return (Some(self.header(OP_RESPONSE)), Verdict::Keep);
        }
        if self.pending.rw {
            match self.read_host(buf, now) {
                (None, Verdict::Keep) => {}
                other => return other,
            }
        }
        if self.pending.credit_update {
            return (Some(self.header(OP_CREDIT_UPDATE)), Verdict::Keep);
        }
        (None, Verdict::Keep)
    }

    fn read_host(&mut self, buf: Option<&Slice<'_>>, now: Instant) -> (Option<Header>, Verdict) {
        if !self.can_read_host() {
            self.pending.rw = false;
            return (None, Verdict::Keep);
        }
        let credit = self.peer_credit();
        if credit == 0 {
            self.pending.rw = false;
            if self.credit_requested {
                return (None, Verdict::Keep);
            }
            self.credit_requested = true;
            return (Some(self.header(OP_CREDIT_REQUEST)), Verdict::Keep);
        }
        let Some(buf) = buf.filter(|b| !b.is_empty()) else {
            // An rx buffer without room for data: wait for a better one.
            return (None, Verdict::Keep);
        };
        let max = buf.len().min(credit as usize);
        let mut target = match buf.subslice(0, max) {
            Ok(s) => s,
            Err(_) => return (None, Verdict::Keep),
        };
        match self.stream.read_volatile(&mut target) {
            Ok(0) => {
                self.pending.rw = false;
                self.host_eof = true;
                let mut hdr = self.header(OP_SHUTDOWN);
                hdr.flags = SHUTDOWN_SEND | if self.host_hup { SHUTDOWN_RCV } else { 0 };
                (Some(hdr), self.after_drain(now))
            }
            Ok(n) => {
                let mut hdr = self.header(OP_RW);
                hdr.len = n as u32;
                self.rx_cnt += Wrapping(n as u32);
                (Some(hdr), Verdict::Keep)
            }
            Err(VolatileMemoryError::IOError(e)) if is_transient(&e) => {
                self.pending.rw = false;
                (None, Verdict::Keep)
            }
            Err(e) => {
                tracing::debug!(local_port = self.local_port, error = %e, "host stream read failed");
                (None, Verdict::Reset)
            }
        }
    }

    /// A header from us to the guest; every one carries our credit, so no update is owed after.
    fn header(&mut self, op: u16) -> Header {
        self.last_fwd_cnt_sent = self.fwd_cnt;
        self.pending.credit_update = false;
        Header {
            src_cid: HOST_CID,
            dst_cid: self.guest_cid,
            src_port: self.local_port,
            dst_port: self.peer_port,
            len: 0,
            type_: TYPE_STREAM,
            op,
            flags: 0,
            buf_alloc: self.limits.buf_alloc,
            fwd_cnt: self.fwd_cnt.0,
        }
    }
}

/// Whether an I/O error means "try again later".
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// An `RST` from host `local_port` to guest `peer_port`.
pub(super) fn rst_header(guest_cid: u64, local_port: u32, peer_port: u32) -> Header {
    Header {
        src_cid: HOST_CID,
        dst_cid: guest_cid,
        src_port: local_port,
        dst_port: peer_port,
        type_: TYPE_STREAM,
        op: OP_RST,
        ..Header::default()
    }
}
