//! The operator's terminal on Linux: termios raw mode, TIOCGWINSZ, SIGWINCH.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

/// Restores the terminal's settings when dropped.
pub struct RawMode {
    fd: i32,
    saved: libc::termios,
}

impl std::fmt::Debug for RawMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawMode").field("fd", &self.fd).finish()
    }
}

/// Whether `fd` is a terminal.
fn is_tty(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: isatty only inspects the descriptor, which `fd` keeps open.
    unsafe { libc::isatty(fd.as_raw_fd()) == 1 }
}

impl RawMode {
    /// Puts the terminal on `fd` in raw mode.
    fn enter(fd: BorrowedFd<'_>) -> io::Result<Self> {
        let fd = fd.as_raw_fd();
        // SAFETY: termios is plain old data; an all-zero value is valid and tcgetattr fills it.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: `saved` is a valid termios to write into; fd is open.
        if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut raw = saved;
        // SAFETY: cfmakeraw only edits the struct it is given.
        unsafe { libc::cfmakeraw(&mut raw) };
        // SAFETY: `raw` is a valid termios; fd is open.
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the settings read in `enter` on the same descriptor.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}

/// The size of the terminal on `fd` as (rows, columns), if it is one.
fn size(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    // SAFETY: winsize is plain old data; all-zero is valid.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize into `ws`, which outlives the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Blocks SIGWINCH in the calling thread (and the threads it spawns later), so one thread can
/// take it with [`wait_winch`].
pub fn block_winch() -> io::Result<()> {
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it; pthread_sigmask only
    // changes this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGWINCH);
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
    }
    Ok(())
}

/// Waits for the next SIGWINCH (blocked with [`block_winch`]).
pub fn wait_winch() -> io::Result<()> {
    // SAFETY: as in block_winch; sigwait writes the signal number into `sig`.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGWINCH);
        let mut sig = 0;
        let rc = libc::sigwait(&set, &mut sig);
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
    }
    Ok(())
}

/// Whether our stdin is a terminal.
pub fn stdin_is_tty() -> bool {
    is_tty(io::stdin().as_fd())
}

/// Puts the terminal on our stdin in raw mode until the guard drops.
pub fn raw_stdin() -> io::Result<RawMode> {
    RawMode::enter(io::stdin().as_fd())
}

/// The size of the terminal on our stdin as (rows, columns), if it is one.
pub fn stdin_size() -> Option<(u16, u16)> {
    size(io::stdin().as_fd())
}

/// Ends the write half of a stdin stream (this handle to it), so the guest reads EOF.
pub fn close_write(stream: lcow_protocol::hybrid::HostStream) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
}
