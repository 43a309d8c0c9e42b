//! The host side of hybrid vsock on Linux: unix sockets. The listening socket at `PATH`
//! (replacing a stale one, refusing a live one or a non-socket) takes host clients, which name
//! the guest port in a `CONNECT <port>` line and get `OK <local port>` back; it is removed when
//! the device goes away. Guest-initiated connections are non-blocking connects to
//! `PATH_<port>`. Host streams are watched by epoll for exactly what their connection wants.

use std::ffi::c_char;
use std::fs;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use lcow_base::{EventType, TriggeredEvent, WaitContext};

use crate::virtio::vsock::muxer::TOKEN_LISTENER;
use crate::virtio::vsock::VsockError;

/// The host's end of one connection.
pub(crate) type HostStream = UnixStream;

/// Host clients name the guest port in a `CONNECT` line and read an `OK` line back.
pub(crate) const HANDSHAKE: bool = true;

/// A host client the listener accepted.
#[derive(Debug)]
pub(crate) struct Accepted {
    pub(crate) stream: HostStream,
    /// The guest port, when the endpoint says it (never: the `CONNECT` line does).
    pub(crate) port: Option<u32>,
}

/// Connects to the host service of a guest-initiated connection, without blocking.
pub(crate) fn connect_host(path: &Path) -> io::Result<HostStream> {
    connect_nonblocking(path)
}

/// Keeps `stream`'s registration in `wait` in step with `want` (it was `had`).
pub(crate) fn watch(
    wait: &WaitContext<u64>,
    stream: &HostStream,
    had: Option<EventType>,
    want: Option<EventType>,
    token: u64,
) -> io::Result<()> {
    match (had, want) {
        (None, Some(events)) => wait.add_for(stream, events, token),
        (Some(_), Some(events)) => wait.modify(stream, events, token),
        (Some(_), None) => wait.delete(stream),
        (None, None) => Ok(()),
    }
}

/// The readiness of `stream` as its wake-up reported it (epoll says it all).
pub(crate) fn readiness(_stream: &HostStream, event: &TriggeredEvent<u64>) -> TriggeredEvent<u64> {
    *event
}

/// The listening socket, removed from the filesystem when dropped (if it is still ours).
#[derive(Debug)]
pub(crate) struct HostListener {
    listener: UnixListener,
    path: PathBuf,
    /// Device and inode of the socket we bound, so a socket someone else put at the path later
    /// is left alone.
    id: Option<(u64, u64)>,
}

impl HostListener {
    /// Listens on `path` (non-blocking). A stale socket there (nothing accepts on it) is
    /// replaced; a live socket or anything that is not a socket is an error.
    pub(crate) fn bind(path: &Path) -> Result<Self, VsockError> {
        match fs::symlink_metadata(path) {
            Ok(meta) if !meta.file_type().is_socket() => {
                return Err(VsockError::NotASocket {
                    path: path.to_owned(),
                });
            }
            Ok(_) => match connect_nonblocking(path) {
                Ok(_) => {
                    return Err(VsockError::SocketInUse {
                        path: path.to_owned(),
                    })
                }
                // A full backlog: someone listens but does not accept.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(VsockError::SocketInUse {
                        path: path.to_owned(),
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    tracing::info!(path = %path.display(), "replacing a stale vsock socket");
                    fs::remove_file(path).map_err(|source| VsockError::RemoveStale {
                        path: path.to_owned(),
                        source,
                    })?;
                }
                Err(source) => {
                    return Err(VsockError::InspectSocket {
                        path: path.to_owned(),
                        source,
                    })
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(VsockError::InspectSocket {
                    path: path.to_owned(),
                    source,
                })
            }
        }
        let bind_error = |source| VsockError::Bind {
            path: path.to_owned(),
            source,
        };
        let listener = UnixListener::bind(path).map_err(bind_error)?;
        let id = fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()));
        let this = Self {
            listener,
            path: path.to_owned(),
            id,
        };
        this.listener.set_nonblocking(true).map_err(bind_error)?;
        Ok(this)
    }

    /// The socket's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Registers the listener in `wait`.
    pub(crate) fn register(&self, wait: &WaitContext<u64>) -> io::Result<()> {
        wait.add(&self.listener, TOKEN_LISTENER)
    }

    /// Whether `token` is the listener's.
    pub(crate) fn is_token(&self, token: u64) -> bool {
        token == TOKEN_LISTENER
    }

    /// Stops (`false`) or resumes (`true`) waking for host clients.
    pub(crate) fn set_watched(&self, wait: &WaitContext<u64>, on: bool) -> io::Result<()> {
        let events = if on { EventType::Read } else { EventType::None };
        wait.modify(&self.listener, events, TOKEN_LISTENER)
    }

    /// Accepts a waiting host client (`WouldBlock` when none waits), non-blocking.
    pub(crate) fn accept(&mut self, _token: u64) -> io::Result<Accepted> {
        let (stream, _) = self.listener.accept()?;
        stream.set_nonblocking(true)?;
        Ok(Accepted { stream, port: None })
    }
}

impl Drop for HostListener {
    fn drop(&mut self) {
        let ours = fs::symlink_metadata(&self.path)
            .ok()
            .is_some_and(|m| m.file_type().is_socket() && Some((m.dev(), m.ino())) == self.id);
        if ours {
            if let Err(e) = fs::remove_file(&self.path) {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot remove the vsock socket");
            }
        }
    }
}

/// Connects a non-blocking unix stream to `path` without ever blocking: a listener whose backlog
/// is full fails with `WouldBlock` instead of stalling the caller.
pub(crate) fn connect_nonblocking(path: &Path) -> io::Result<UnixStream> {
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: `sockaddr_un` is plain old data; all zeroes is a valid (empty) address.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.is_empty() || bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "socket path is empty, too long or has a NUL byte",
        ));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, &src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = src as c_char;
    }
    // SAFETY: a plain system call with constant arguments; the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a socket this function just created and nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let len = std::mem::offset_of!(libc::sockaddr_un, sun_path) + bytes.len() + 1;
    // SAFETY: `addr` is an initialised `sockaddr_un` that outlives the call and `len` does not
    // exceed its size (the path is shorter than `sun_path`); the result is checked.
    let rc = unsafe {
        libc::connect(
            fd,
            (&addr as *const libc::sockaddr_un).cast::<libc::sockaddr>(),
            len as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(UnixStream::from(socket))
}

impl crate::virtio::vsock::Vsock {
    /// A vsock device giving the guest `guest_cid`, listening for host clients on `path`
    /// (a stale socket there is replaced), with the worker that must run on its own thread.
    pub fn new(
        guest_cid: u64,
        path: &Path,
        limits: crate::virtio::vsock::Limits,
    ) -> Result<(Self, crate::virtio::vsock::VsockWorker), VsockError> {
        Self::with_listener(guest_cid, HostListener::bind(path)?, limits)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_bind_stale_socket_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.sock");
        drop(UnixListener::bind(&path).unwrap()); // leaves a socket file nobody listens on

        let listener = HostListener::bind(&path).unwrap();

        assert!(UnixStream::connect(&path).is_ok());
        drop(listener);
        assert!(!path.exists(), "removed on drop");
    }

    #[test]
    fn test_bind_live_socket_in_use_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.sock");
        let _live = UnixListener::bind(&path).unwrap();

        let err = HostListener::bind(&path).unwrap_err();

        assert!(matches!(err, VsockError::SocketInUse { .. }), "{err}");
        assert!(path.exists(), "the live socket is left alone");
    }

    #[test]
    fn test_bind_regular_file_not_a_socket_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.sock");
        fs::write(&path, b"x").unwrap();

        let err = HostListener::bind(&path).unwrap_err();

        assert!(matches!(err, VsockError::NotASocket { .. }), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"x");
    }

    #[test]
    fn test_drop_replaced_socket_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.sock");
        let ours = HostListener::bind(&path).unwrap();
        fs::remove_file(&path).unwrap();
        let _theirs = UnixListener::bind(&path).unwrap();

        drop(ours);

        assert!(path.exists());
    }

    #[test]
    fn test_connect_nonblocking_refused_and_too_long() {
        let dir = tempfile::tempdir().unwrap();
        let missing = connect_nonblocking(&dir.path().join("none")).unwrap_err();
        let long = connect_nonblocking(&dir.path().join("x".repeat(200))).unwrap_err();

        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        assert_eq!(long.kind(), io::ErrorKind::InvalidInput);
    }
}
