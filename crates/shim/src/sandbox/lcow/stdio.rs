//! A process's stdio: containerd's FIFOs (or, with a terminal, the one stdout FIFO carrying
//! the pty's output) joined to the raw vsock streams the agent accepts on its stdio port.
//!
//! Each stream is pumped by its own thread. Output FIFOs are closed only once the guest side
//! has reached EOF, so containerd's copy sees all of it; the process's exit is reported after
//! its output drained (or after [`DRAIN_AFTER_EXIT`]).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use lcow_protocol::agent::Stdio;
use lcow_protocol::client::{Agent, ClientError};
use lcow_protocol::stdio::StreamKind;

/// How long output may keep flowing after the process ended (a daemonised child can hold the
/// pipe open for ever).
pub const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(5);

/// The FIFO paths containerd gave for a process (empty: not wanted).
#[derive(Debug, Clone, Default)]
pub struct HostIo {
    /// stdin FIFO.
    pub stdin: String,
    /// stdout FIFO.
    pub stdout: String,
    /// stderr FIFO.
    pub stderr: String,
    /// Whether the process has a pty.
    pub terminal: bool,
}

impl HostIo {
    /// The streams to declare to the agent.
    pub fn declared(&self) -> Stdio {
        Stdio {
            stdin: !self.stdin.is_empty(),
            stdout: !self.stdout.is_empty(),
            stderr: !self.stderr.is_empty() && !self.terminal,
            terminal: self.terminal,
            ..Default::default()
        }
    }
}

/// The running pumps of one process.
#[derive(Debug)]
pub struct Pumps {
    stdin: Arc<Mutex<Option<UnixStream>>>,
    drained: Mutex<Option<(mpsc::Receiver<()>, usize)>>,
}

impl Pumps {
    /// Opens the agent streams `io` declares for (`id`, `exec`); the pumps start with
    /// [`Pumps::start`] once the process exists.
    pub fn connect(
        agent: &Agent,
        id: &str,
        exec: &str,
        io: &HostIo,
    ) -> Result<Opened, ClientError> {
        let d = io.declared();
        let open = |kind, wanted: bool| -> Result<Option<UnixStream>, ClientError> {
            wanted
                .then(|| agent.open_stream(id, exec, kind))
                .transpose()
        };
        Ok(Opened {
            stdin: open(StreamKind::Stdin, d.stdin)?,
            stdout: open(StreamKind::Stdout, d.stdout)?,
            stderr: open(StreamKind::Stderr, d.stderr)?,
            io: io.clone(),
        })
    }

    /// Shuts the guest side of stdin (CloseIO), so the process reads EOF.
    pub fn close_stdin(&self) {
        if let Some(s) = lock(&self.stdin).take() {
            let _ = s.shutdown(Shutdown::Write);
        }
    }

    /// Waits until every output stream reached EOF, for at most `limit`.
    pub fn wait_drained(&self, limit: Duration) {
        let Some((rx, mut left)) = lock(&self.drained).take() else {
            return;
        };
        let deadline = Instant::now() + limit;
        while left > 0 {
            let now = Instant::now();
            if now >= deadline || rx.recv_timeout(deadline - now).is_err() {
                tracing::warn!(streams = left, "output still open after the process ended");
                break;
            }
            left -= 1;
        }
    }
}

/// Streams opened on the agent, not yet pumping.
#[derive(Debug)]
pub struct Opened {
    stdin: Option<UnixStream>,
    stdout: Option<UnixStream>,
    stderr: Option<UnixStream>,
    io: HostIo,
}

impl Opened {
    /// Starts one thread per stream.
    pub fn start(self) -> Pumps {
        let stdin_slot = Arc::new(Mutex::new(None));
        if let Some(s) = self.stdin {
            let path = self.io.stdin.clone();
            *lock(&stdin_slot) = s.try_clone().ok();
            let slot = Arc::clone(&stdin_slot);
            thread::spawn(move || {
                // Blocks until containerd's side has the FIFO open for writing.
                match File::open(&path) {
                    Ok(fifo) => copy(fifo, &s),
                    Err(e) => tracing::warn!(fifo = %path, error = %e, "cannot open stdin"),
                }
                if let Some(s) = lock(&slot).take() {
                    let _ = s.shutdown(Shutdown::Write);
                }
            });
        }
        let (tx, rx) = mpsc::channel();
        let mut outputs = 0;
        for (stream, path) in [(self.stdout, self.io.stdout), (self.stderr, self.io.stderr)] {
            let Some(stream) = stream else { continue };
            outputs += 1;
            let tx = tx.clone();
            thread::spawn(move || {
                match OpenOptions::new().write(true).open(&path) {
                    Ok(fifo) => copy(&stream, fifo),
                    Err(e) => {
                        tracing::warn!(fifo = %path, error = %e, "cannot open output; discarding it");
                        copy(&stream, io::sink());
                    }
                }
                let _ = tx.send(());
            });
        }
        Pumps {
            stdin: stdin_slot,
            drained: Mutex::new(Some((rx, outputs))),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Copies until EOF on `from`; when `to` fails (the reader went away) keeps draining `from`
/// so the guest never blocks on a full stream.
fn copy(mut from: impl Read, mut to: impl Write) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut sink_ok = true;
    loop {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if sink_ok && to.write_all(&buf[..n]).is_err() {
                    sink_ok = false;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_declared_terminal_has_no_stderr() {
        let io = HostIo {
            stdin: "/in".into(),
            stdout: "/out".into(),
            stderr: "/err".into(),
            terminal: true,
        };
        let d = io.declared();
        assert!(d.stdin && d.stdout && !d.stderr && d.terminal);
        let none = HostIo::default().declared();
        assert!(!none.stdin && !none.stdout && !none.stderr);
    }

    #[test]
    fn test_copy_keeps_draining_after_sink_fails() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let data = vec![7u8; 300_000];
        let mut src = &data[..];
        copy(&mut src, Broken);
        assert!(src.is_empty());
    }

    #[test]
    fn test_output_reaches_fifo_and_drains() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        nix::unistd::mkfifo(&out, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let reader = {
            let out = out.clone();
            thread::spawn(move || {
                let mut s = String::new();
                File::open(out).unwrap().read_to_string(&mut s).unwrap();
                s
            })
        };
        let (mut guest, host) = UnixStream::pair().unwrap();
        let pumps = Opened {
            stdin: None,
            stdout: Some(host),
            stderr: None,
            io: HostIo {
                stdout: out.display().to_string(),
                ..Default::default()
            },
        }
        .start();
        guest.write_all(b"hi\n").unwrap();
        drop(guest);
        pumps.wait_drained(Duration::from_secs(5));
        assert_eq!(reader.join().unwrap(), "hi\n");
    }
}
