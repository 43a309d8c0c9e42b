//! Plumbing between a process and its host streams: pipes or a pty, and the copy threads.
//!
//! The process never gets a socket as stdio (programs that open `/dev/stdout` fail on
//! sockets): it gets pipes, or the slave of a pty. One thread per direction copies:
//!
//! - stdout/stderr pipe → stream, then `shutdown(Write)` at the pipe's EOF, so the host reads
//!   the output to its end; if the host stops reading, the output is drained and dropped so
//!   the process never blocks on a full pipe;
//! - stream → stdin pipe, closing the pipe at the stream's EOF or at CloseStdin;
//! - with a terminal: stream → pty master, and pty master → stdout stream.
//!
//! CloseStdin must interrupt a thread blocked on either side, so the stdin thread polls its
//! source and target together with a "closer" pipe: dropping the closer's write end wakes it.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, PoisonError};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::stdio::Stream;

const BUF_LEN: usize = 32 * 1024;

/// The host streams of one process, as taken from the pending table.
#[derive(Debug, Default)]
pub struct HostStreams {
    /// Host → process.
    pub stdin: Option<Stream>,
    /// Process → host (everything, with a terminal).
    pub stdout: Option<Stream>,
    /// Process → host.
    pub stderr: Option<Stream>,
}

/// The process's ends: pipe ends, or `/dev/null` for streams the host did not declare (never
/// the agent's own console).
#[derive(Debug)]
pub struct ChildStdio {
    /// fd 0 of the process.
    pub stdin: OwnedFd,
    /// fd 1.
    pub stdout: OwnedFd,
    /// fd 2.
    pub stderr: OwnedFd,
}

/// The agent's ends, waiting for the process to exist before the copying starts.
#[derive(Debug)]
pub struct Plumbing {
    streams: HostStreams,
    stdin_pipe: Option<OwnedFd>,
    stdout_pipe: Option<OwnedFd>,
    stderr_pipe: Option<OwnedFd>,
}

/// What the agent keeps of a running process's stdio.
#[derive(Debug, Default)]
pub struct IoHandle {
    closer: Mutex<Option<OwnedFd>>,
    /// The pty master, with a terminal (for ResizePty).
    pub pty_master: Option<Arc<OwnedFd>>,
}

impl IoHandle {
    /// Ends the stdin copy: the process reads EOF (pipe), or input stops (terminal).
    /// Idempotent.
    pub fn close_stdin(&self) {
        self.closer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}

fn dev_null() -> io::Result<OwnedFd> {
    Ok(OwnedFd::from(
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")?,
    ))
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io::Error::from)
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL)?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags))?;
    Ok(())
}

/// Pipes for a process without a terminal: the child's ends and ours.
pub fn pipes(streams: HostStreams) -> io::Result<(ChildStdio, Plumbing)> {
    let (child_in, stdin_pipe) = match streams.stdin {
        Some(_) => {
            let (r, w) = pipe()?;
            set_nonblocking(w.as_fd())?;
            (r, Some(w))
        }
        None => (dev_null()?, None),
    };
    let (child_out, stdout_pipe) = match streams.stdout {
        Some(_) => {
            let (r, w) = pipe()?;
            (w, Some(r))
        }
        None => (dev_null()?, None),
    };
    let (child_err, stderr_pipe) = match streams.stderr {
        Some(_) => {
            let (r, w) = pipe()?;
            (w, Some(r))
        }
        None => (dev_null()?, None),
    };
    Ok((
        ChildStdio {
            stdin: child_in,
            stdout: child_out,
            stderr: child_err,
        },
        Plumbing {
            streams,
            stdin_pipe,
            stdout_pipe,
            stderr_pipe,
        },
    ))
}

/// The plumbing of a process with a terminal: everything goes through the pty master that
/// the runtime hands back.
pub fn terminal(streams: HostStreams) -> Plumbing {
    Plumbing {
        streams,
        stdin_pipe: None,
        stdout_pipe: None,
        stderr_pipe: None,
    }
}

impl Plumbing {
    /// Starts the copy threads; `pty_master` is the terminal's master, if any.
    /// `who` names the process in logs.
    pub fn start(self, pty_master: Option<OwnedFd>, who: &ProcName) -> io::Result<IoHandle> {
        let mut handle = IoHandle::default();
        let Plumbing {
            streams,
            stdin_pipe,
            stdout_pipe,
            stderr_pipe,
        } = self;
        if let Some(master) = pty_master {
            set_nonblocking(master.as_fd())?;
            let master = Arc::new(master);
            if let Some(stream) = streams.stdin {
                let (closer_r, closer_w) = pipe()?;
                let target = Arc::clone(&master);
                spawn(who, "tty-in", move || copy_in(&stream, &*target, &closer_r))?;
                handle.closer = Mutex::new(Some(closer_w));
            }
            if let Some(stream) = streams.stdout {
                let source = Arc::clone(&master);
                spawn(who, "tty-out", move || copy_out(&*source, &stream))?;
            }
            if let Some(stream) = streams.stderr {
                // Unused with a terminal: give the host its EOF at once.
                let _ = stream.shutdown_write();
            }
            handle.pty_master = Some(master);
            return Ok(handle);
        }
        if let (Some(stream), Some(target)) = (streams.stdin, stdin_pipe) {
            let (closer_r, closer_w) = pipe()?;
            spawn(who, "stdin", move || copy_in(&stream, &target, &closer_r))?;
            handle.closer = Mutex::new(Some(closer_w));
        }
        if let (Some(stream), Some(source)) = (streams.stdout, stdout_pipe) {
            spawn(who, "stdout", move || copy_out(&source, &stream))?;
        }
        if let (Some(stream), Some(source)) = (streams.stderr, stderr_pipe) {
            spawn(who, "stderr", move || copy_out(&source, &stream))?;
        }
        Ok(handle)
    }
}

/// A process's names, for the logs of its copy threads.
#[derive(Debug, Clone)]
pub struct ProcName {
    /// The container.
    pub container_id: String,
    /// The exec (empty for init).
    pub exec_id: String,
}

fn spawn(who: &ProcName, what: &'static str, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
    let who = who.clone();
    std::thread::Builder::new()
        .name(format!("io-{what}"))
        .spawn(move || {
            f();
            tracing::debug!(container_id = %who.container_id, exec_id = %who.exec_id, stream = what, "copy finished");
        })
        .map(|_| ())
}

/// Waits until `fd` has `events` (or an error or hangup) or the closer fires; `false` means
/// the closer fired.
fn wait_for(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    closer: Option<BorrowedFd<'_>>,
) -> io::Result<bool> {
    loop {
        let mut fds = Vec::with_capacity(2);
        fds.push(PollFd::new(fd, events));
        if let Some(closer) = closer {
            fds.push(PollFd::new(closer, PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        if fds
            .get(1)
            .and_then(|f| f.revents())
            .is_some_and(|r| !r.is_empty())
        {
            return Ok(false);
        }
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            return Ok(true);
        }
    }
}

/// Host stream → process (stdin pipe or pty master, both non-blocking), until the stream's
/// EOF, the closer, or the process going away.
fn copy_in(stream: &Stream, target: &impl AsFd, closer: &OwnedFd) {
    let mut buf = vec![0u8; BUF_LEN];
    loop {
        match wait_for(stream.as_fd(), PollFlags::POLLIN, Some(closer.as_fd())) {
            Ok(true) => {}
            Ok(false) | Err(_) => return,
        }
        let n = match (&mut &*stream).read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut data = &buf[..n];
        while !data.is_empty() {
            match nix::unistd::write(target.as_fd(), data) {
                Ok(written) => data = &data[written..],
                Err(Errno::EAGAIN) => {
                    match wait_for(target.as_fd(), PollFlags::POLLOUT, Some(closer.as_fd())) {
                        Ok(true) => {}
                        Ok(false) | Err(_) => return,
                    }
                }
                Err(Errno::EINTR) => {}
                // EPIPE (the process closed stdin or exited), EIO (the pty is gone).
                Err(_) => return,
            }
        }
    }
}

/// Process (pipe or pty master) → host stream, then EOF for the host.
fn copy_out(source: &impl AsFd, stream: &Stream) {
    let mut buf = vec![0u8; BUF_LEN];
    let mut host_gone = false;
    loop {
        let n = match nix::unistd::read(source.as_fd().as_raw_fd(), &mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => {
                // Only the pty master is non-blocking: wait for output (or its hangup).
                match wait_for(source.as_fd(), PollFlags::POLLIN, None) {
                    Ok(_) => continue,
                    Err(_) => break,
                }
            }
            // EIO: every slave of the pty is closed, which is its EOF.
            Err(_) => break,
        };
        if !host_gone && (&mut &*stream).write_all(&buf[..n]).is_err() {
            // Keep draining so the process never blocks on a full pipe.
            host_gone = true;
        }
    }
    let _ = stream.shutdown_write();
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::fs::File;
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    use super::*;

    fn read_all(fd: OwnedFd) -> Vec<u8> {
        let mut out = Vec::new();
        File::from(fd).read_to_end(&mut out).unwrap();
        out
    }

    fn write_child(fd: &OwnedFd, data: &[u8]) {
        File::from(fd.try_clone().unwrap()).write_all(data).unwrap();
    }

    fn stream_pair() -> (UnixStream, Stream) {
        let (a, b) = UnixStream::pair().unwrap();
        (a, Stream::from_fd(OwnedFd::from(b)))
    }

    fn who() -> ProcName {
        ProcName {
            container_id: "c".into(),
            exec_id: String::new(),
        }
    }

    #[test]
    fn test_copy_stdout_pipe_to_stream_then_eof() {
        // Arrange
        let (mut host, agent) = stream_pair();
        let (child, plumbing) = pipes(HostStreams {
            stdout: Some(agent),
            ..Default::default()
        })
        .unwrap();
        let _handle = plumbing.start(None, &who()).unwrap();
        // Act: the "process" writes and exits.
        write_child(&child.stdout, b"hello\n");
        drop(child);
        // Assert: the host reads the output, then EOF.
        let mut out = Vec::new();
        host.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"hello\n");
    }

    #[test]
    fn test_copy_stdin_stream_to_pipe_and_close_stdin_gives_eof() {
        // Arrange
        let (mut host, agent) = stream_pair();
        let (child, plumbing) = pipes(HostStreams {
            stdin: Some(agent),
            ..Default::default()
        })
        .unwrap();
        let handle = plumbing.start(None, &who()).unwrap();
        host.write_all(b"input").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        // Act
        handle.close_stdin();
        // Assert: the process reads what was sent, then EOF, though the host never closed.
        let ChildStdio { stdin, .. } = child;
        assert_eq!(read_all(stdin), b"input");
    }

    #[test]
    fn test_copy_stdin_host_eof_closes_pipe() {
        let (host, agent) = stream_pair();
        let (child, plumbing) = pipes(HostStreams {
            stdin: Some(agent),
            ..Default::default()
        })
        .unwrap();
        let _handle = plumbing.start(None, &who()).unwrap();
        (&host).write_all(b"abc").unwrap();
        drop(host);
        assert_eq!(read_all(child.stdin), b"abc");
    }

    #[test]
    fn test_copy_undeclared_streams_are_dev_null() {
        let (child, _plumbing) = pipes(HostStreams::default()).unwrap();
        let path =
            std::fs::read_link(format!("/proc/self/fd/{}", child.stdout.as_raw_fd())).unwrap();
        assert_eq!(path, std::path::Path::new("/dev/null"));
    }
}
