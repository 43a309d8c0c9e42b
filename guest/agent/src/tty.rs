//! Terminals: the console socket that receives a pty master from libcontainer, and resizing.
//!
//! With a terminal, libcontainer's init (or exec'd) process opens a pty inside the container,
//! makes the slave its stdio and sends the master over the console socket with SCM_RIGHTS.
//! The agent listens on a short path (unix socket paths are limited to 108 bytes, ids are
//! not), receives the master after the runtime call returns, and keeps it for the copy threads
//! and ResizePty.

use std::io::{self, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{self, ControlMessageOwned, MsgFlags, UnixAddr};

/// A listening console socket; removes its path when dropped.
#[derive(Debug)]
pub struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ConsoleSocket {
    /// Listens at `path` (replacing a stale socket there).
    pub fn bind(path: PathBuf) -> io::Result<Self> {
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)?;
        Ok(Self { listener, path })
    }

    /// Where the socket is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts the runtime's connection and receives the pty master it sends.
    pub fn receive_master(&self, timeout: Duration) -> io::Result<OwnedFd> {
        let mut fds = [PollFd::new(self.listener.as_fd(), PollFlags::POLLIN)];
        let ms = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::NONE);
        if poll(&mut fds, ms)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no connection on the console socket",
            ));
        }
        let (conn, _) = self.listener.accept()?;
        conn.set_read_timeout(Some(timeout))?;
        let mut name = [0u8; 64];
        let mut iov = [IoSliceMut::new(&mut name)];
        let mut cmsg = nix::cmsg_space!([RawFd; 4]);
        let msg = socket::recvmsg::<UnixAddr>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )?;
        let mut received: Vec<OwnedFd> = Vec::new();
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(raw) = c {
                for fd in raw {
                    // SAFETY: the kernel just installed these descriptors in our table for
                    // this message; nothing else owns them.
                    received.push(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
        // One master is expected; extra descriptors are closed when `received` drops.
        if received.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the console socket message carried no descriptor",
            ));
        }
        Ok(received.swap_remove(0))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Sets the terminal size on a pty master.
pub fn resize(master: &impl AsFd, width: u16, height: u16) -> io::Result<()> {
    let size = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` from the pointer, which is valid for the call;
    // the descriptor is borrowed for the call's duration.
    let rc = unsafe { libc::ioctl(master.as_fd().as_raw_fd(), libc::TIOCSWINSZ, &size) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::IoSlice;
    use std::os::unix::net::UnixStream;

    use nix::sys::socket::ControlMessage;

    use super::*;

    #[test]
    fn test_console_socket_receives_sent_master_and_resize_applies() {
        // Arrange: a real pty, sent the way libcontainer sends it.
        let dir = tempfile::tempdir().unwrap();
        let sock = ConsoleSocket::bind(dir.path().join("c.sock")).unwrap();
        let pty = nix::pty::openpty(None, None).unwrap();
        let conn = UnixStream::connect(sock.path()).unwrap();
        let iov = [IoSlice::new(b"/dev/ptmx")];
        let fds = [pty.master.as_raw_fd()];
        socket::sendmsg::<UnixAddr>(
            conn.as_raw_fd(),
            &iov,
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        // Act
        let master = sock.receive_master(Duration::from_secs(5)).unwrap();
        resize(&master, 100, 40).unwrap();
        // Assert: the slave sees the new size.
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one winsize into `ws`, valid for the call.
        let rc = unsafe { libc::ioctl(pty.slave.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
        assert_eq!(rc, 0);
        assert_eq!((ws.ws_col, ws.ws_row), (100, 40));
    }

    #[test]
    fn test_console_socket_times_out_without_a_connection() {
        let dir = tempfile::tempdir().unwrap();
        let sock = ConsoleSocket::bind(dir.path().join("c.sock")).unwrap();
        let err = sock.receive_master(Duration::from_millis(50)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
