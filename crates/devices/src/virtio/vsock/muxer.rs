//! The muxer: the host side of every vsock connection. It accepts host clients on the listening
//! socket and reads their `CONNECT` line, opens `PATH_<port>` for guest connections, routes
//! guest packets to connections by `(local port, peer port)`, keeps each host stream's wait
//! registration in step with what its connection wants, and queues what the guest is owed:
//! `RST`s first (a bounded queue), then connections round-robin (each at most once).

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{self, Read};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lcow_base::{EventType, TriggeredEvent, WaitContext};

use super::connection::{rst_header, Connection, Slice, Verdict};
use super::packet::{op_name, Header, OP_REQUEST, OP_RST, TYPE_STREAM};
use super::sys::{connect_host, readiness, watch, Accepted, HostListener, HostStream};
use super::{socket_path_for_port, Limits, FIRST_LOCAL_PORT, HOST_CID, MAX_CONNECT_LINE};

/// The wait token of the listening socket (on Windows, of the first of its pipes; the others
/// follow).
pub(crate) const TOKEN_LISTENER: u64 = 5;
/// Host stream tokens start here (below are the worker's own).
const FIRST_STREAM_TOKEN: u64 = 1 << 32;
/// `RST`s to the guest that may wait before the tx queue stops being processed.
const TX_RST_BUDGET: usize = 64;
/// Host clients accepted per listener wake-up.
const ACCEPT_BATCH: usize = 16;
/// How long the listener rests after `accept` fails for lack of resources.
const LISTENER_PAUSE: Duration = Duration::from_millis(100);

/// A connection's identity: our port and the guest's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Key {
    pub(super) local_port: u32,
    pub(super) peer_port: u32,
}

/// An accepted host client that has not sent its `CONNECT` line yet.
#[derive(Debug)]
struct PendingStream {
    stream: HostStream,
    line: Vec<u8>,
    deadline: Instant,
}

/// See the module documentation.
#[derive(Debug)]
pub(super) struct Muxer {
    guest_cid: u64,
    limits: Limits,
    host: HostListener,
    wait: Arc<WaitContext<u64>>,
    conns: HashMap<Key, Connection>,
    tokens: HashMap<u64, Key>,
    pending_streams: HashMap<u64, PendingStream>,
    rxq: VecDeque<Key>,
    rstq: VecDeque<Key>,
    local_ports: HashSet<u32>,
    next_local_port: u32,
    next_token: u64,
    listener_paused_until: Option<Instant>,
}

/// The guest port of a `CONNECT <port>` line (newline stripped).
pub(super) fn parse_connect_line(line: &[u8]) -> Option<u32> {
    let rest = line.strip_prefix(b"CONNECT ")?;
    let rest = rest.strip_suffix(b"\r").unwrap_or(rest);
    if rest.is_empty() || rest.len() > 10 || !rest.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(rest).ok()?.parse().ok()
}

impl Muxer {
    /// A muxer serving `host` (already registered in `wait`).
    pub(super) fn new(
        guest_cid: u64,
        limits: Limits,
        host: HostListener,
        wait: Arc<WaitContext<u64>>,
    ) -> Self {
        Self {
            guest_cid,
            limits,
            host,
            wait,
            conns: HashMap::new(),
            tokens: HashMap::new(),
            pending_streams: HashMap::new(),
            rxq: VecDeque::new(),
            rstq: VecDeque::new(),
            local_ports: HashSet::new(),
            next_local_port: FIRST_LOCAL_PORT,
            next_token: FIRST_STREAM_TOKEN,
            listener_paused_until: None,
        }
    }

    /// The number of live connections.
    #[cfg(test)]
    pub(super) fn connection_count(&self) -> usize {
        self.conns.len()
    }

    #[cfg(test)]
    pub(super) fn connection(&self, local_port: u32, peer_port: u32) -> Option<&Connection> {
        self.conns.get(&Key {
            local_port,
            peer_port,
        })
    }

    fn take_token(&mut self) -> u64 {
        let token = self.next_token;
        self.next_token = self.next_token.wrapping_add(1).max(FIRST_STREAM_TOKEN);
        token
    }

    fn allocate_local_port(&mut self) -> u32 {
        loop {
            let port = self.next_local_port;
            self.next_local_port = port.checked_add(1).unwrap_or(FIRST_LOCAL_PORT);
            // Terminates: fewer ports are in use than the pool holds.
            if !self.local_ports.contains(&port) {
                self.local_ports.insert(port);
                return port;
            }
        }
    }

    /// Whether the guest is owed packets.
    pub(super) fn has_pending_rx(&self) -> bool {
        !self.rstq.is_empty() || !self.rxq.is_empty()
    }

    /// Whether the tx queue should wait until the guest took some of the `RST`s owed.
    pub(super) fn tx_should_pause(&self) -> bool {
        self.rstq.len() >= TX_RST_BUDGET
    }

    fn enqueue_rst(&mut self, key: Key) {
        if self.rstq.len() >= self.limits.max_connections + TX_RST_BUDGET {
            tracing::debug!(
                local_port = key.local_port,
                peer_port = key.peer_port,
                "rst queue full; rst dropped"
            );
            return;
        }
        self.rstq.push_back(key);
    }

    // ---- host side ----

    /// Whether `token` is one of the listener's.
    pub(super) fn is_listener_token(&self, token: u64) -> bool {
        self.host.is_token(token)
    }

    /// Accepts waiting host clients (on the listener's `token`).
    pub(super) fn accept(&mut self, token: u64, now: Instant) {
        for _ in 0..ACCEPT_BATCH {
            let Accepted { stream, port } = match self.host.accept(token) {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) =>
                {
                    continue
                }
                Err(e) => {
                    // Out of descriptors or memory: a level-triggered wait would spin.
                    tracing::warn!(error = %e, "vsock accept failed; pausing the listener");
                    self.pause_listener(now);
                    return;
                }
            };
            if let Some(port) = port {
                // The endpoint named the guest port (a pipe per port): no CONNECT line.
                if self.conns.len() >= self.limits.max_connections {
                    tracing::debug!(port, "vsock connection limit reached; host client refused");
                    continue;
                }
                let token = self.take_token();
                self.connect_guest(stream, token, port, None, now);
                continue;
            }
            if self.pending_streams.len() >= self.limits.max_pending_streams
                || self.conns.len() >= self.limits.max_connections
            {
                tracing::debug!("vsock connection limit reached; host client refused");
                continue;
            }
            let token = self.take_token();
            if let Err(e) = watch(&self.wait, &stream, None, Some(EventType::Read), token) {
                tracing::debug!(error = %e, "cannot watch a host stream");
                continue;
            }
            self.pending_streams.insert(
                token,
                PendingStream {
                    stream,
                    line: Vec::with_capacity(MAX_CONNECT_LINE),
                    deadline: now + self.limits.connect_timeout,
                },
            );
        }
    }

    fn pause_listener(&mut self, now: Instant) {
        if self.host.set_watched(&self.wait, false).is_ok() {
            self.listener_paused_until = Some(now + LISTENER_PAUSE);
        }
    }

    /// Events on host stream `token`.
    pub(super) fn host_event(&mut self, token: u64, events: &TriggeredEvent<u64>, now: Instant) {
        if self.pending_streams.contains_key(&token) {
            self.read_connect_line(token, now);
        } else if let Some(&key) = self.tokens.get(&token) {
            if let Some(conn) = self.conns.get_mut(&key) {
                let events = readiness(conn.stream(), events);
                let verdict = conn.on_host_event(&events, now);
                self.settle(key, verdict);
            }
        }
    }

    fn read_connect_line(&mut self, token: u64, now: Instant) {
        let Some(pending) = self.pending_streams.get_mut(&token) else {
            return;
        };
        // Byte by byte: what follows the newline belongs to the connection.
        let port = loop {
            if pending.line.len() >= MAX_CONNECT_LINE {
                tracing::debug!("host client's CONNECT line too long; closed");
                break None;
            }
            let mut byte = [0u8; 1];
            match pending.stream.read(&mut byte) {
                Ok(0) => break None,
                Ok(_) if byte[0] == b'\n' => {
                    let port = parse_connect_line(&pending.line);
                    if port.is_none() {
                        tracing::debug!(len = pending.line.len(), "malformed CONNECT line; closed");
                    }
                    break port;
                }
                Ok(_) => pending.line.push(byte[0]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::debug!(error = %e, "host client read failed");
                    break None;
                }
            }
        };
        let Some(pending) = self.pending_streams.remove(&token) else {
            return;
        };
        let Some(port) = port else {
            unwatch(&self.wait, &pending.stream);
            return; // dropping the stream closes it
        };
        if self.conns.len() >= self.limits.max_connections {
            tracing::debug!(port, "vsock connection limit reached; CONNECT refused");
            unwatch(&self.wait, &pending.stream);
            return;
        }
        // The stream is watched for reading already, as the connection's first interest is.
        self.connect_guest(pending.stream, token, port, Some(EventType::Read), now);
    }

    /// Starts the host-initiated connection of `stream` (watched as `registered`) to guest
    /// `port`.
    fn connect_guest(
        &mut self,
        stream: HostStream,
        token: u64,
        port: u32,
        registered: Option<EventType>,
        now: Instant,
    ) {
        let local_port = self.allocate_local_port();
        let key = Key {
            local_port,
            peer_port: port,
        };
        if self.conns.contains_key(&key) {
            // Only a guest connection to a host port in our pool could hold this key.
            self.local_ports.remove(&local_port);
            if registered.is_some() {
                unwatch(&self.wait, &stream);
            }
            return;
        }
        tracing::debug!(port, local_port, "host connects to guest port");
        let mut conn = Connection::new_local_init(
            stream,
            token,
            (local_port, port),
            self.guest_cid,
            self.limits,
            now + self.limits.response_timeout,
        );
        conn.registered = registered;
        self.tokens.insert(token, key);
        self.conns.insert(key, conn);
        self.settle(key, Verdict::Keep);
    }

    // ---- guest side ----

    /// A packet from the guest. `data` is its payload.
    pub(super) fn send_pkt(&mut self, hdr: &Header, data: Option<&Slice<'_>>, now: Instant) {
        let key = Key {
            local_port: hdr.dst_port,
            peer_port: hdr.src_port,
        };
        if hdr.src_cid != self.guest_cid || hdr.dst_cid != HOST_CID || hdr.type_ != TYPE_STREAM {
            tracing::debug!(
                src_cid = hdr.src_cid,
                dst_cid = hdr.dst_cid,
                type_ = hdr.type_,
                "vsock packet with a bad address or type"
            );
            if self.conns.contains_key(&key) {
                self.settle(key, Verdict::Reset);
            } else if hdr.op != OP_RST {
                self.enqueue_rst(key);
            }
            return;
        }
        tracing::trace!(
            op = op_name(hdr.op),
            local_port = key.local_port,
            peer_port = key.peer_port,
            len = hdr.len,
            "vsock tx"
        );
        if let Some(conn) = self.conns.get_mut(&key) {
            let verdict = conn.on_guest_packet(hdr, data, now);
            self.settle(key, verdict);
            return;
        }
        match hdr.op {
            OP_REQUEST if hdr.len == 0 => self.guest_connect(key, hdr),
            OP_RST => {}
            _ => {
                tracing::debug!(
                    op = op_name(hdr.op),
                    port = key.local_port,
                    "packet for no connection"
                );
                self.enqueue_rst(key);
            }
        }
    }

    /// The guest connects to host port `key.local_port`: connect to `PATH_<port>`.
    fn guest_connect(&mut self, key: Key, hdr: &Header) {
        if self.conns.len() >= self.limits.max_connections {
            tracing::debug!(
                port = key.local_port,
                "vsock connection limit reached; guest refused"
            );
            self.enqueue_rst(key);
            return;
        }
        let path = socket_path_for_port(self.host.path(), key.local_port);
        let stream = match connect_host(&path) {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(port = key.local_port, error = %e, "nothing listens for the guest");
                self.enqueue_rst(key);
                return;
            }
        };
        let token = self.take_token();
        let conn = Connection::new_peer_init(
            stream,
            token,
            (key.local_port, key.peer_port),
            self.guest_cid,
            self.limits,
            hdr,
        );
        tracing::debug!(
            port = key.local_port,
            peer_port = key.peer_port,
            "guest connects to host port"
        );
        self.tokens.insert(token, key);
        self.conns.insert(key, conn);
        self.settle(key, Verdict::Keep);
    }

    /// The next packet for the guest; `buf` is the rx buffer's data part.
    pub(super) fn recv_pkt(&mut self, buf: Option<&Slice<'_>>, now: Instant) -> Option<Header> {
        if let Some(key) = self.rstq.pop_front() {
            return Some(rst_header(self.guest_cid, key.local_port, key.peer_port));
        }
        for _ in 0..self.rxq.len() {
            let key = self.rxq.pop_front()?;
            let Some(conn) = self.conns.get_mut(&key) else {
                continue;
            };
            conn.queued = false;
            let (hdr, verdict) = conn.next_rx(buf, now);
            self.settle(key, verdict);
            if let Some(hdr) = hdr {
                tracing::trace!(
                    op = op_name(hdr.op),
                    local_port = key.local_port,
                    peer_port = key.peer_port,
                    len = hdr.len,
                    "vsock rx"
                );
                return Some(hdr);
            }
        }
        None
    }

    // ---- bookkeeping ----

    /// Applies a verdict: keeps the connection's wait registration and queue slot in step, or
    /// removes it (and tells the guest, for [`Verdict::Reset`]).
    fn settle(&mut self, key: Key, verdict: Verdict) {
        match verdict {
            Verdict::Keep => {
                if let Err(e) = self.sync(key) {
                    tracing::debug!(error = %e, "cannot watch a host stream; connection reset");
                    self.remove(key);
                    self.enqueue_rst(key);
                }
            }
            Verdict::Drop => self.remove(key),
            Verdict::Reset => {
                self.remove(key);
                self.enqueue_rst(key);
            }
        }
    }

    fn sync(&mut self, key: Key) -> io::Result<()> {
        let Some(conn) = self.conns.get_mut(&key) else {
            return Ok(());
        };
        conn.refresh();
        let want = conn.interest();
        if want != conn.registered {
            watch(&self.wait, conn.stream(), conn.registered, want, conn.token)?;
            conn.registered = want;
        }
        if conn.has_pending_rx() && !conn.queued {
            conn.queued = true;
            self.rxq.push_back(key);
        }
        Ok(())
    }

    fn remove(&mut self, key: Key) {
        if let Some(conn) = self.conns.remove(&key) {
            self.tokens.remove(&conn.token);
            if conn.host_initiated {
                self.local_ports.remove(&conn.local_port);
            }
            if conn.queued {
                self.rxq.retain(|k| *k != key);
            }
            if conn.registered.is_some() {
                unwatch(&self.wait, conn.stream());
            }
        }
    }

    /// Ends what has timed out.
    pub(super) fn sweep(&mut self, now: Instant) {
        let wait = &self.wait;
        self.pending_streams.retain(|_, p| {
            let alive = p.deadline > now;
            if !alive {
                tracing::debug!("host client sent no CONNECT line in time; closed");
                unwatch(wait, &p.stream);
            }
            alive
        });
        let expired: Vec<Key> = self
            .conns
            .iter()
            .filter(|(_, c)| c.deadline().is_some_and(|d| d <= now))
            .map(|(k, _)| *k)
            .collect();
        for key in expired {
            tracing::debug!(
                local_port = key.local_port,
                peer_port = key.peer_port,
                "vsock connection timed out"
            );
            self.settle(key, Verdict::Reset);
        }
        if self.listener_paused_until.is_some_and(|t| t <= now) {
            match self.host.set_watched(&self.wait, true) {
                Ok(()) => self.listener_paused_until = None,
                Err(e) => tracing::warn!(error = %e, "cannot resume the vsock listener"),
            }
        }
    }

    /// The next time [`Muxer::sweep`] has something to do.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let streams = self.pending_streams.values().map(|p| p.deadline);
        let conns = self.conns.values().filter_map(Connection::deadline);
        streams.chain(conns).chain(self.listener_paused_until).min()
    }

    /// The driver reset the device: every connection is gone (host streams closed).
    pub(super) fn reset(&mut self) {
        let count = self.conns.len();
        self.conns.clear();
        self.tokens.clear();
        self.rxq.clear();
        self.rstq.clear();
        self.local_ports.clear();
        if count > 0 {
            tracing::debug!(count, "vsock device reset; connections closed");
        }
    }
}

/// Takes a host stream out of `wait` before it is dropped: closing it would do that on Linux
/// (epoll), not on every host. A free function, so `sweep` can call it while it borrows the
/// pending streams.
fn unwatch(wait: &WaitContext<u64>, stream: &HostStream) {
    if let Err(e) = watch(wait, stream, Some(EventType::Read), None, 0) {
        tracing::debug!(error = %e, "cannot unwatch a host stream");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_connect_line_valid_and_invalid() {
        assert_eq!(parse_connect_line(b"CONNECT 1024"), Some(1024));
        assert_eq!(parse_connect_line(b"CONNECT 4294967295"), Some(u32::MAX));
        assert_eq!(parse_connect_line(b"CONNECT 52\r"), Some(52));
        for bad in [
            &b"CONNECT"[..],
            b"CONNECT ",
            b"CONNECT 4294967296",
            b"CONNECT +5",
            b"CONNECT -5",
            b"connect 5",
            b"CONNECT 5 6",
            b"CONNECT  5",
            b"\xffCONNECT 5",
        ] {
            assert_eq!(parse_connect_line(bad), None, "{bad:?}");
        }
    }
}
