//! A process's stdio: containerd's FIFOs (or, with a terminal, the one stdout FIFO carrying
//! the pty's output) joined to the raw vsock streams the agent accepts on its stdio port.
//!
//! Each stream is pumped by its own thread. Output FIFOs are closed only once the guest side
//! has reached EOF, so containerd's copy sees all of it; the process's exit is reported after
//! its output drained. The wait gives up only when no byte has moved for [`DRAIN_IDLE`] (a
//! daemonised child can hold the stream open for ever), never while output still flows.
//!
//! The stdin stream has one handle, kept in a [`StdinSlot`]: closing it (CloseIO) drops that
//! handle, which the guest sees as EOF. This works on a named pipe (Windows), which has no
//! half-close, as on a unix socket; a write under way finishes first.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use lcow_protocol::agent::Stdio;
use lcow_protocol::client::{Agent, ClientError};
use lcow_protocol::hybrid::HostStream;
use lcow_protocol::stdio::StreamKind;

use crate::stdio::HostIo;

/// How long the output of an ended process may stand still before its exit is reported anyway.
pub const DRAIN_IDLE: Duration = Duration::from_secs(5);

/// The streams to declare to the agent for `io`.
pub fn declared(io: &HostIo) -> Stdio {
    Stdio {
        stdin: !io.stdin.is_empty(),
        stdout: !io.stdout.is_empty(),
        stderr: !io.stderr.is_empty() && !io.terminal,
        terminal: io.terminal,
        ..Default::default()
    }
}

/// The running pumps of one process.
#[derive(Debug)]
pub struct Pumps {
    stdin: Arc<StdinSlot>,
    drained: Mutex<Option<(mpsc::Receiver<()>, usize)>>,
    /// Bytes the output pumps have moved so far.
    moved: Arc<AtomicU64>,
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
        let d = declared(io);
        let open = |kind, wanted: bool| -> Result<Option<HostStream>, ClientError> {
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

    /// Closes stdin (CloseIO), so the process reads EOF.
    pub fn close_stdin(&self) {
        self.stdin.close();
    }

    /// Waits until every output stream reached EOF, or until no byte moved for `idle`.
    pub fn wait_drained(&self, idle: Duration) {
        let Some((rx, mut left)) = lock(&self.drained).take() else {
            return;
        };
        let mut seen = self.moved.load(Ordering::Relaxed);
        let mut still_since = Instant::now();
        while left > 0 {
            match rx.recv_timeout(Duration::from_millis(200).min(idle)) {
                Ok(()) => left -= 1,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let now = self.moved.load(Ordering::Relaxed);
                    if now != seen {
                        seen = now;
                        still_since = Instant::now();
                    } else if still_since.elapsed() >= idle {
                        tracing::warn!(
                            streams = left,
                            "output still open but idle after the process ended"
                        );
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
    }
}

/// Streams opened on the agent, not yet pumping.
#[derive(Debug)]
pub struct Opened {
    stdin: Option<HostStream>,
    stdout: Option<HostStream>,
    stderr: Option<HostStream>,
    io: HostIo,
}

/// The one handle of a stdin stream, shared by its pump and CloseIO.
#[derive(Debug, Default)]
pub struct StdinSlot {
    stream: Mutex<Option<HostStream>>,
    closing: AtomicBool,
}

impl StdinSlot {
    fn new(stream: Option<HostStream>) -> Self {
        Self {
            stream: Mutex::new(stream),
            closing: AtomicBool::new(false),
        }
    }

    /// Drops the stream now, or, when the pump is in the middle of a write (the guest not
    /// reading), as soon as that write ends: CloseIO never waits on the guest.
    fn close(&self) {
        self.closing.store(true, Ordering::Release);
        if let Ok(mut s) = self.stream.try_lock() {
            s.take();
        }
    }

    /// Copies `from` into the stream until EOF, an error, or [`StdinSlot::close`].
    fn pump(&self, mut from: impl Read) {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let mut slot = lock(&self.stream);
            let Some(stream) = slot.as_mut() else { break };
            if stream.write_all(&buf[..n]).is_err() || self.closing.load(Ordering::Acquire) {
                break;
            }
        }
        lock(&self.stream).take();
    }
}

impl Opened {
    /// Starts one thread per stream.
    pub fn start(self) -> Pumps {
        let has_stdin = self.stdin.is_some();
        let stdin_slot = Arc::new(StdinSlot::new(self.stdin));
        if has_stdin {
            let path = self.io.stdin.clone();
            let slot = Arc::clone(&stdin_slot);
            thread::spawn(move || {
                // Blocks until containerd's side has the FIFO (Windows: pipe) open for writing.
                match File::open(&path) {
                    Ok(fifo) => slot.pump(fifo),
                    Err(e) => {
                        tracing::warn!(fifo = %path, error = %e, "cannot open stdin");
                        slot.close();
                    }
                }
            });
        }
        let (tx, rx) = mpsc::channel();
        let moved = Arc::new(AtomicU64::new(0));
        let mut outputs = 0;
        for (stream, path) in [(self.stdout, self.io.stdout), (self.stderr, self.io.stderr)] {
            let Some(stream) = stream else { continue };
            outputs += 1;
            let tx = tx.clone();
            let moved = Arc::clone(&moved);
            thread::spawn(move || {
                match OpenOptions::new().write(true).open(&path) {
                    Ok(fifo) => copy(&stream, fifo, &moved),
                    Err(e) => {
                        tracing::warn!(fifo = %path, error = %e, "cannot open output; discarding it");
                        copy(&stream, io::sink(), &moved);
                    }
                }
                let _ = tx.send(());
            });
        }
        Pumps {
            stdin: stdin_slot,
            drained: Mutex::new(Some((rx, outputs))),
            moved,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Copies until EOF on `from`, counting the bytes in `moved`; when `to` fails (the reader went
/// away) keeps draining `from` so the guest never blocks on a full stream.
fn copy(mut from: impl Read, mut to: impl Write, moved: &AtomicU64) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut sink_ok = true;
    loop {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if sink_ok && to.write_all(&buf[..n]).is_err() {
                    sink_ok = false;
                }
                moved.fetch_add(n as u64, Ordering::Relaxed);
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
        let d = declared(&io);
        assert!(d.stdin && d.stdout && !d.stderr && d.terminal);
        let none = declared(&HostIo::default());
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
        let moved = AtomicU64::new(0);
        copy(&mut src, Broken, &moved);
        assert!(src.is_empty());
        assert_eq!(moved.load(Ordering::Relaxed), 300_000);
    }

    /// CloseIO drops the stream at once when no write is under way, and the pump stops.
    #[test]
    fn test_stdin_close_drops_the_stream_and_stops_the_pump() {
        let slot = StdinSlot::default();
        slot.close();
        assert!(lock(&slot.stream).is_none());
        // With the stream gone, the pump reads once and stops instead of draining for ever.
        let data = vec![1u8; 1000];
        slot.pump(&data[..]);
        assert!(lock(&slot.stream).is_none());
    }
}

/// The pumps against FIFOs and unix socket pairs (Linux).
#[cfg(all(test, target_os = "linux"))]
#[allow(clippy::unwrap_used)]
mod linux_tests {
    use std::os::unix::net::UnixStream;
    use std::path::Path;

    use super::*;

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

    fn fifo_reader(dir: &Path) -> (String, thread::JoinHandle<Vec<u8>>) {
        let out = dir.join("out");
        nix::unistd::mkfifo(&out, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let path = out.display().to_string();
        let reader = thread::spawn(move || {
            let mut b = Vec::new();
            File::open(out).unwrap().read_to_end(&mut b).unwrap();
            b
        });
        (path, reader)
    }

    /// Pumps with one stdout stream, from `host` to the FIFO at `path`.
    fn stdout_pumps(host: UnixStream, path: String) -> Pumps {
        Opened {
            stdin: None,
            stdout: Some(host),
            stderr: None,
            io: HostIo {
                stdout: path,
                ..Default::default()
            },
        }
        .start()
    }

    #[test]
    fn test_drain_waits_while_output_still_flows() {
        let dir = tempfile::tempdir().unwrap();
        let (path, reader) = fifo_reader(dir.path());
        let (mut guest, host) = UnixStream::pair().unwrap();
        let pumps = stdout_pumps(host, path);
        // Output keeps coming for 10 x 60 ms, longer than the idle limit of 150 ms.
        let writer = thread::spawn(move || {
            for i in 0..10u8 {
                guest.write_all(&[i; 1000]).unwrap();
                thread::sleep(Duration::from_millis(60));
            }
        });
        let t = Instant::now();
        pumps.wait_drained(Duration::from_millis(150));
        writer.join().unwrap();
        assert!(
            t.elapsed() >= Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(reader.join().unwrap().len(), 10_000);
    }

    #[test]
    fn test_drain_gives_up_on_idle_open_output() {
        let dir = tempfile::tempdir().unwrap();
        let (path, reader) = fifo_reader(dir.path());
        let (guest, host) = UnixStream::pair().unwrap();
        let pumps = stdout_pumps(host, path);
        let t = Instant::now();
        pumps.wait_drained(Duration::from_millis(200));
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        drop(guest);
        assert!(reader.join().unwrap().is_empty());
    }

    /// CloseIO while containerd still holds stdin open: the guest reads what came, then EOF.
    #[test]
    fn test_close_stdin_gives_the_guest_eof() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("in");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let (mut guest, host) = UnixStream::pair().unwrap();
        let pumps = Opened {
            stdin: Some(host),
            stdout: None,
            stderr: None,
            io: HostIo {
                stdin: fifo.display().to_string(),
                ..Default::default()
            },
        }
        .start();
        let mut writer = OpenOptions::new().write(true).open(&fifo).unwrap();
        writer.write_all(b"typed").unwrap();
        let mut got = [0u8; 5];
        guest.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"typed");

        pumps.close_stdin();

        guest
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(guest.read(&mut got).unwrap(), 0, "no EOF after CloseIO");
        drop(writer);
    }
}
