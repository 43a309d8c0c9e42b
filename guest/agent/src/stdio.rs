//! The stdio port: accepting stream connections and the table of pending streams.
//!
//! The host opens one connection per stream to [`lcow_protocol::STDIO_PORT`], writes a
//! [`StdioHeader`] and waits for the one-byte acknowledgement. The agent registers the stream
//! in [`PendingStdio`], keyed by (container, exec, kind), until CreateContainer or ExecProcess
//! takes it. The table is bounded, refuses duplicates and forgets streams nobody claimed.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use lcow_protocol::stdio::{StdioHeader, StreamKind, ACK_OK, ACK_REFUSED};
use nix::sys::socket::{self, MsgFlags, Shutdown, SockFlag, SockType, VsockAddr};
use nix::sys::time::TimeVal;

/// At most this many streams wait to be claimed.
pub const MAX_PENDING: usize = 64;
/// An unclaimed stream is closed after this long.
pub const PENDING_TTL: Duration = Duration::from_secs(60);
/// The time a new connection has to send its header.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// At most this many connections may be in the header handshake at once.
const MAX_HANDSHAKES: usize = 16;

/// Errors of the stdio port.
#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    /// The listen address is not `vsock://CID:PORT` or `unix://PATH`.
    #[error("bad listen address {0:?}: expected vsock://CID:PORT or unix://PATH")]
    BadAddress(String),
    /// Creating the listening socket failed.
    #[error("failed to listen on {addr}")]
    Listen {
        /// The address.
        addr: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// A listen address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A vsock port; CID `-1` is any.
    Vsock {
        /// The context id to bind.
        cid: u32,
        /// The port.
        port: u32,
    },
    /// A unix socket path (tests, running outside a VM).
    Unix(PathBuf),
}

impl ListenAddr {
    /// Parses `vsock://CID:PORT` (CID may be `-1`) or `unix://PATH`.
    pub fn parse(addr: &str) -> Result<Self, StdioError> {
        let bad = || StdioError::BadAddress(crate::quote::quote(addr));
        if let Some(rest) = addr.strip_prefix("vsock://") {
            let (cid, port) = rest.split_once(':').ok_or_else(bad)?;
            let cid = if cid == "-1" {
                libc::VMADDR_CID_ANY
            } else {
                cid.parse().map_err(|_| bad())?
            };
            let port = port.parse().map_err(|_| bad())?;
            Ok(Self::Vsock { cid, port })
        } else if let Some(path) = addr.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(bad());
            }
            Ok(Self::Unix(PathBuf::from(path)))
        } else {
            Err(bad())
        }
    }
}

/// A connected stream socket (vsock, or unix in tests). Writes never raise SIGPIPE.
#[derive(Debug)]
pub struct Stream(OwnedFd);

impl Stream {
    /// Wraps a connected socket.
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self(fd)
    }

    /// Sets (or clears, with `None`) the receive and send timeouts.
    pub fn set_timeouts(&self, timeout: Option<Duration>) -> io::Result<()> {
        let tv = match timeout {
            Some(d) => TimeVal::new(
                i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                i64::from(d.subsec_micros()),
            ),
            None => TimeVal::new(0, 0),
        };
        socket::setsockopt(&self.0, socket::sockopt::ReceiveTimeout, &tv)?;
        socket::setsockopt(&self.0, socket::sockopt::SendTimeout, &tv)?;
        Ok(())
    }

    /// Ends our sending direction: the peer reads EOF.
    pub fn shutdown_write(&self) -> io::Result<()> {
        socket::shutdown(self.0.as_raw_fd(), Shutdown::Write).map_err(io::Error::from)
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match nix::unistd::read(self.0.as_raw_fd(), buf) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => return other.map_err(io::Error::from),
            }
        }
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match socket::send(self.0.as_raw_fd(), buf, MsgFlags::MSG_NOSIGNAL) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => return other.map_err(io::Error::from),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The stdio port's listening socket.
#[derive(Debug)]
pub enum Listener {
    /// AF_VSOCK.
    Vsock(OwnedFd),
    /// AF_UNIX.
    Unix(UnixListener),
}

impl Listener {
    /// Listens on `addr`.
    pub fn bind(addr: &ListenAddr) -> Result<Self, StdioError> {
        let fail = |source: io::Error| StdioError::Listen {
            addr: format!("{addr:?}"),
            source,
        };
        match addr {
            ListenAddr::Vsock { cid, port } => {
                let fd = socket::socket(
                    socket::AddressFamily::Vsock,
                    SockType::Stream,
                    SockFlag::SOCK_CLOEXEC,
                    None,
                )
                .map_err(|e| fail(e.into()))?;
                socket::bind(fd.as_raw_fd(), &VsockAddr::new(*cid, *port))
                    .map_err(|e| fail(e.into()))?;
                let backlog = socket::Backlog::new(64).map_err(|e| fail(e.into()))?;
                socket::listen(&fd, backlog).map_err(|e| fail(e.into()))?;
                Ok(Self::Vsock(fd))
            }
            ListenAddr::Unix(path) => {
                let _ = std::fs::remove_file(path);
                UnixListener::bind(path).map(Self::Unix).map_err(fail)
            }
        }
    }

    /// Accepts one connection.
    pub fn accept(&self) -> io::Result<Stream> {
        match self {
            Self::Vsock(fd) => {
                let raw = socket::accept4(fd.as_raw_fd(), SockFlag::SOCK_CLOEXEC)?;
                // SAFETY: accept4 just returned this descriptor; nothing else owns it.
                Ok(Stream(unsafe { OwnedFd::from_raw_fd(raw) }))
            }
            Self::Unix(l) => {
                let (s, _) = l.accept()?;
                Ok(Stream(OwnedFd::from(s)))
            }
        }
    }
}

/// A pending stream's key: (container, exec, kind).
pub type StreamKey = (String, String, StreamKind);

/// Why a stream was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// [`MAX_PENDING`] streams already wait.
    #[error("too many pending stdio streams")]
    Full,
    /// A stream with the same key waits already.
    #[error("a stdio stream with this key is already pending")]
    Duplicate,
}

#[derive(Debug)]
enum Slot<T> {
    /// Accepted and being acknowledged.
    Reserved(Instant),
    /// Acknowledged, waiting to be claimed.
    Ready(T, Instant),
}

impl<T> Slot<T> {
    fn since(&self) -> Instant {
        match self {
            Self::Reserved(at) | Self::Ready(_, at) => *at,
        }
    }
}

/// Streams connected by the host and not yet claimed by a process.
#[derive(Debug)]
pub struct PendingStdio<T> {
    slots: Mutex<HashMap<StreamKey, Slot<T>>>,
    /// Signalled when a reservation is filled or cancelled.
    stored: Condvar,
    limit: usize,
    ttl: Duration,
}

impl<T> Default for PendingStdio<T> {
    fn default() -> Self {
        Self::new(MAX_PENDING, PENDING_TTL)
    }
}

impl<T> PendingStdio<T> {
    /// A table of at most `limit` streams that expire after `ttl`.
    pub fn new(limit: usize, ttl: Duration) -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            stored: Condvar::new(),
            limit,
            ttl,
        }
    }

    fn lock(&self, now: Instant) -> std::sync::MutexGuard<'_, HashMap<StreamKey, Slot<T>>> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let ttl = self.ttl;
        slots.retain(|(c, e, k), slot| {
            let keep = now.saturating_duration_since(slot.since()) < ttl;
            if !keep {
                tracing::warn!(container_id = %c, exec_id = %e, stream = ?k, "unclaimed stdio stream expired");
            }
            keep
        });
        slots
    }

    /// Reserves `key` for a stream being acknowledged.
    pub fn reserve(&self, key: StreamKey, now: Instant) -> Result<(), RegisterError> {
        let mut slots = self.lock(now);
        if slots.contains_key(&key) {
            return Err(RegisterError::Duplicate);
        }
        if slots.len() >= self.limit {
            return Err(RegisterError::Full);
        }
        slots.insert(key, Slot::Reserved(now));
        Ok(())
    }

    /// Stores the acknowledged stream in its reservation; gives it back if the reservation
    /// is gone (expired or its container removed).
    pub fn fill(&self, key: StreamKey, stream: T, now: Instant) -> Result<(), T> {
        let mut slots = self.lock(now);
        match slots.get_mut(&key) {
            Some(slot @ Slot::Reserved(_)) => {
                let at = slot.since();
                *slot = Slot::Ready(stream, at);
                self.stored.notify_all();
                Ok(())
            }
            _ => Err(stream),
        }
    }

    /// Drops a reservation (the acknowledgement failed).
    pub fn cancel(&self, key: &StreamKey) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if matches!(slots.get(key), Some(Slot::Reserved(_))) {
            slots.remove(key);
            self.stored.notify_all();
        }
    }

    /// Takes every stream of `kinds` for one process, or none: the first missing kind is the
    /// error, and then the table is left as it was. A stream still being acknowledged is
    /// waited for (the host may call as soon as it has read the acknowledgement, a moment
    /// before the stream is stored), at most [`HEADER_TIMEOUT`].
    pub fn take_all(
        &self,
        container_id: &str,
        exec_id: &str,
        kinds: &[StreamKind],
        now: Instant,
    ) -> Result<Vec<T>, StreamKind> {
        let mut slots = self.lock(now);
        let key = |k: StreamKind| (container_id.to_owned(), exec_id.to_owned(), k);
        let deadline = Instant::now() + HEADER_TIMEOUT;
        loop {
            let mut reserved = None;
            for k in kinds {
                match slots.get(&key(*k)) {
                    Some(Slot::Ready(..)) => {}
                    Some(Slot::Reserved(_)) => reserved = Some(*k),
                    None => return Err(*k),
                }
            }
            let Some(k) = reserved else { break };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(k);
            }
            slots = self
                .stored
                .wait_timeout(slots, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        Ok(kinds
            .iter()
            .filter_map(|k| match slots.remove(&key(*k)) {
                Some(Slot::Ready(stream, _)) => Some(stream),
                _ => None,
            })
            .collect())
    }

    /// Closes every pending stream of a container.
    pub fn remove_container(&self, container_id: &str) {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(c, _, _), _| c != container_id);
    }

    /// How many streams are pending or being acknowledged.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Reads a connection's header, registers it and acknowledges it.
pub fn handshake(stream: Stream, table: &PendingStdio<Stream>) {
    if let Err(err) = stream.set_timeouts(Some(HEADER_TIMEOUT)) {
        tracing::warn!(%err, "stdio: cannot set socket timeouts");
        return;
    }
    let header = match StdioHeader::read_from(&mut &stream) {
        Ok(h) => h,
        Err(err) => {
            tracing::warn!(error = %err, "stdio: refused a connection");
            let _ = (&stream).write_all(&[ACK_REFUSED]);
            return;
        }
    };
    let key = (header.container_id, header.exec_id, header.kind);
    if let Err(err) = table.reserve(key.clone(), Instant::now()) {
        tracing::warn!(container_id = %key.0, exec_id = %key.1, stream = ?key.2, %err, "stdio: refused a stream");
        let _ = (&stream).write_all(&[ACK_REFUSED]);
        return;
    }
    if let Err(err) = (&stream).write_all(&[ACK_OK]) {
        tracing::warn!(container_id = %key.0, %err, "stdio: acknowledgement failed");
        table.cancel(&key);
        return;
    }
    if let Err(err) = stream.set_timeouts(None) {
        tracing::warn!(%err, "stdio: cannot clear socket timeouts");
        table.cancel(&key);
        return;
    }
    tracing::debug!(container_id = %key.0, exec_id = %key.1, stream = ?key.2, "stdio stream connected");
    if table.fill(key, stream, Instant::now()).is_err() {
        tracing::warn!("stdio: stream expired before it was registered");
    }
}

/// Accepts stdio connections forever; each handshake runs on its own short-lived thread.
pub fn serve(listener: Listener, table: Arc<PendingStdio<Stream>>) {
    let busy = Arc::new(AtomicUsize::new(0));
    loop {
        let stream = match listener.accept() {
            Ok(s) => s,
            Err(err) => {
                tracing::warn!(%err, "stdio: accept failed");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if busy.fetch_add(1, Ordering::SeqCst) >= MAX_HANDSHAKES {
            busy.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!("stdio: too many connections in handshake, refused one");
            let _ = (&stream).write_all(&[ACK_REFUSED]);
            continue;
        }
        let table = Arc::clone(&table);
        let busy2 = Arc::clone(&busy);
        let spawned = std::thread::Builder::new()
            .name("stdio-accept".into())
            .spawn(move || {
                handshake(stream, &table);
                busy2.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(err) = spawned {
            busy.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(%err, "stdio: cannot start a handshake thread");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::net::UnixStream;

    use super::*;

    fn key(c: &str, e: &str, k: StreamKind) -> StreamKey {
        (c.to_owned(), e.to_owned(), k)
    }

    fn put(t: &PendingStdio<u32>, k: StreamKey, v: u32, now: Instant) -> Result<(), RegisterError> {
        t.reserve(k.clone(), now)?;
        t.fill(k, v, now).unwrap();
        Ok(())
    }

    #[test]
    fn test_pending_stdio_take_all_returns_streams_in_order() {
        let t = PendingStdio::default();
        let now = Instant::now();
        put(&t, key("c", "", StreamKind::Stdout), 1, now).unwrap();
        put(&t, key("c", "", StreamKind::Stdin), 0, now).unwrap();
        let got = t
            .take_all("c", "", &[StreamKind::Stdin, StreamKind::Stdout], now)
            .unwrap();
        assert_eq!(got, [0, 1]);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn test_pending_stdio_missing_stream_is_named_and_nothing_is_taken() {
        let t = PendingStdio::default();
        let now = Instant::now();
        put(&t, key("c", "e", StreamKind::Stdin), 0, now).unwrap();
        let err = t
            .take_all("c", "e", &[StreamKind::Stdin, StreamKind::Stderr], now)
            .unwrap_err();
        assert_eq!(err, StreamKind::Stderr);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn test_pending_stdio_duplicate_is_refused() {
        let t = PendingStdio::default();
        let now = Instant::now();
        put(&t, key("c", "", StreamKind::Stdout), 1, now).unwrap();
        assert_eq!(
            t.reserve(key("c", "", StreamKind::Stdout), now),
            Err(RegisterError::Duplicate)
        );
    }

    #[test]
    fn test_pending_stdio_limit_refuses_more() {
        let t = PendingStdio::new(2, PENDING_TTL);
        let now = Instant::now();
        put(&t, key("a", "", StreamKind::Stdout), 1, now).unwrap();
        put(&t, key("b", "", StreamKind::Stdout), 2, now).unwrap();
        assert_eq!(
            t.reserve(key("c", "", StreamKind::Stdout), now),
            Err(RegisterError::Full)
        );
    }

    #[test]
    fn test_pending_stdio_entries_expire() {
        let t = PendingStdio::new(1, Duration::from_secs(60));
        let then = Instant::now();
        put(&t, key("a", "", StreamKind::Stdout), 1, then).unwrap();
        let later = then + Duration::from_secs(61);
        // The expired entry frees its place and can no longer be claimed.
        put(&t, key("b", "", StreamKind::Stdout), 2, later).unwrap();
        assert_eq!(
            t.take_all("a", "", &[StreamKind::Stdout], later),
            Err(StreamKind::Stdout)
        );
    }

    #[test]
    fn test_pending_stdio_take_waits_for_a_reserved_slot_to_fill() {
        // Arrange: the host got its ACK, the stream is not stored yet.
        let t: Arc<PendingStdio<u32>> = Arc::default();
        let k = key("c", "", StreamKind::Stdin);
        t.reserve(k.clone(), Instant::now()).unwrap();
        let t2 = Arc::clone(&t);
        let filler = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            t2.fill(k, 7, Instant::now()).unwrap();
        });
        // Act
        let got = t.take_all("c", "", &[StreamKind::Stdin], Instant::now());
        // Assert
        assert_eq!(got, Ok(vec![7]));
        filler.join().unwrap();
    }

    #[test]
    fn test_pending_stdio_cancelled_reservation_is_missing() {
        let t: Arc<PendingStdio<u32>> = Arc::default();
        let k = key("c", "", StreamKind::Stdin);
        t.reserve(k.clone(), Instant::now()).unwrap();
        let t2 = Arc::clone(&t);
        let k2 = k.clone();
        let canceller = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            t2.cancel(&k2);
        });
        let got = t.take_all("c", "", &[StreamKind::Stdin], Instant::now());
        assert_eq!(got, Err(StreamKind::Stdin));
        canceller.join().unwrap();
        assert_eq!(t.len(), 0);
        assert_eq!(t.fill(k, 5, Instant::now()), Err(5));
    }

    #[test]
    fn test_pending_stdio_remove_container_drops_its_streams() {
        let t = PendingStdio::default();
        let now = Instant::now();
        put(&t, key("a", "", StreamKind::Stdout), 1, now).unwrap();
        put(&t, key("b", "", StreamKind::Stdout), 2, now).unwrap();
        t.remove_container("a");
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn test_listen_addr_parse() {
        assert_eq!(
            ListenAddr::parse("vsock://-1:1025").unwrap(),
            ListenAddr::Vsock {
                cid: libc::VMADDR_CID_ANY,
                port: 1025
            }
        );
        assert_eq!(
            ListenAddr::parse("unix:///tmp/x.sock").unwrap(),
            ListenAddr::Unix("/tmp/x.sock".into())
        );
        assert!(ListenAddr::parse("tcp://1:2").is_err());
        assert!(ListenAddr::parse("vsock://x:1").is_err());
        assert!(ListenAddr::parse("unix://").is_err());
    }

    fn pair() -> (UnixStream, Stream) {
        let (a, b) = UnixStream::pair().unwrap();
        (a, Stream::from_fd(OwnedFd::from(b)))
    }

    #[test]
    fn test_handshake_good_header_is_acked_and_registered() {
        let table = PendingStdio::default();
        let (mut host, agent) = pair();
        let header = StdioHeader {
            container_id: "c1".into(),
            exec_id: String::new(),
            kind: StreamKind::Stdout,
        };
        header.write_to(&mut host).unwrap();
        handshake(agent, &table);
        let mut ack = [9u8];
        host.read_exact(&mut ack).unwrap();
        assert_eq!(ack, [ACK_OK]);
        let streams = table
            .take_all("c1", "", &[StreamKind::Stdout], Instant::now())
            .unwrap();
        (&streams[0]).write_all(b"out").unwrap();
        let mut buf = [0u8; 3];
        host.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"out");
    }

    #[test]
    fn test_handshake_bad_header_is_refused() {
        let table = PendingStdio::default();
        let (mut host, agent) = pair();
        host.write_all(b"NOPE\x01\x00\x00\x01c\x00\x00").unwrap();
        handshake(agent, &table);
        let mut ack = [9u8];
        host.read_exact(&mut ack).unwrap();
        assert_eq!(ack, [ACK_REFUSED]);
        assert_eq!(table.len(), 0);
    }
}
