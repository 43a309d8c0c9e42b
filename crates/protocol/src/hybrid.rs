//! The host side of hybrid vsock (docs/architecture.md): the VMM listens on a unix socket; the host
//! connects, writes `CONNECT <port>\n` and reads `OK <host-port>\n`; from then on the unix
//! stream is a vsock connection to `<port>` in the guest. If nothing listens on that guest
//! port the VMM closes the stream instead of answering.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

/// The longest reply line the handshake accepts (`OK 4294967295\n` is 14 bytes).
const MAX_REPLY: usize = 32;

/// Errors of the handshake.
#[derive(Debug, thiserror::Error)]
pub enum HybridError {
    /// The VMM's socket cannot be reached.
    #[error("cannot connect to the vm's vsock socket {}", path.display())]
    Connect {
        /// The socket.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Writing the request or reading the reply failed.
    #[error("vsock handshake on {} failed", path.display())]
    Handshake {
        /// The socket.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The VMM closed the stream: no listener on that guest port (yet).
    #[error("nothing in the guest accepts vsock port {port}")]
    Refused {
        /// The guest port.
        port: u32,
    },
    /// The reply is not `OK <n>`.
    #[error("unexpected reply to CONNECT {port}: {reply:?}")]
    BadReply {
        /// The guest port.
        port: u32,
        /// What came back (at most 32 bytes).
        reply: String,
    },
    /// `connect_wait` ran out of time; the last failure is the source.
    #[error("vsock port {port} not ready after {waited:?}")]
    Timeout {
        /// The guest port.
        port: u32,
        /// How long it tried.
        waited: Duration,
        /// The last attempt's error.
        #[source]
        last: Box<HybridError>,
    },
}

/// Connects to guest `port` through the VMM's hybrid-vsock socket at `path`.
pub fn connect(path: &Path, port: u32) -> Result<UnixStream, HybridError> {
    let mut stream = UnixStream::connect(path).map_err(|source| HybridError::Connect {
        path: path.to_owned(),
        source,
    })?;
    let handshake = |source| HybridError::Handshake {
        path: path.to_owned(),
        source,
    };
    stream
        .write_all(format!("CONNECT {port}\n").as_bytes())
        .map_err(handshake)?;
    // Byte by byte, so nothing past the reply line is consumed.
    let mut reply = Vec::with_capacity(16);
    let mut byte = [0u8; 1];
    loop {
        match stream.read(&mut byte) {
            Ok(0) if reply.is_empty() => return Err(HybridError::Refused { port }),
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => reply.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset && reply.is_empty() => {
                return Err(HybridError::Refused { port })
            }
            Err(e) => return Err(handshake(e)),
        }
        if reply.len() > MAX_REPLY {
            break;
        }
    }
    let text = String::from_utf8_lossy(&reply).into_owned();
    match text.strip_prefix("OK ") {
        Some(n) if n.parse::<u32>().is_ok() => Ok(stream),
        _ => Err(HybridError::BadReply { port, reply: text }),
    }
}

/// Like [`connect`], retrying every few milliseconds while the socket is absent or the guest
/// port has no listener yet, for at most `timeout`: the host's wait-for-ready.
pub fn connect_wait(path: &Path, port: u32, timeout: Duration) -> Result<UnixStream, HybridError> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        match connect(path, port) {
            Ok(s) => return Ok(s),
            Err(e @ (HybridError::Refused { .. } | HybridError::Connect { .. })) => {
                if start.elapsed() >= timeout {
                    return Err(HybridError::Timeout {
                        port,
                        waited: start.elapsed(),
                        last: Box::new(e),
                    });
                }
            }
            Err(e) => return Err(e),
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::BufRead;
    use std::os::unix::net::UnixListener;

    use super::*;

    /// A one-connection fake muxer answering `reply` (or closing if `None`), then echoing.
    fn fake_muxer(
        reply: Option<&'static str>,
    ) -> (tempfile::TempDir, PathBuf, thread::JoinHandle<String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let handle = thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let mut r = io::BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            if let Some(reply) = reply {
                (&s).write_all(reply.as_bytes()).unwrap();
                // The client may already have gone (a refused reply): ignore that.
                let _ = (&s).write_all(b"data");
            }
            line
        });
        (dir, path, handle)
    }

    #[test]
    fn test_connect_ok_leaves_stream_data() {
        let (_d, path, h) = fake_muxer(Some("OK 1073741824\n"));
        let mut s = connect(&path, 1024).unwrap();
        assert_eq!(h.join().unwrap(), "CONNECT 1024\n");
        let mut data = [0u8; 4];
        s.read_exact(&mut data).unwrap();
        assert_eq!(&data, b"data");
    }

    #[test]
    fn test_connect_closed_is_refused() {
        let (_d, path, h) = fake_muxer(None);
        let err = connect(&path, 1025).unwrap_err();
        h.join().unwrap();
        assert!(
            matches!(err, HybridError::Refused { port: 1025 }),
            "{err:?}"
        );
    }

    #[test]
    fn test_connect_garbage_reply_is_an_error() {
        let (_d, path, h) = fake_muxer(Some("NO\n"));
        let err = connect(&path, 1).unwrap_err();
        h.join().unwrap();
        assert!(matches!(err, HybridError::BadReply { .. }), "{err:?}");
    }

    #[test]
    fn test_connect_wait_times_out_without_socket() {
        let dir = tempfile::tempdir().unwrap();
        let err =
            connect_wait(&dir.path().join("none"), 1024, Duration::from_millis(50)).unwrap_err();
        assert!(
            matches!(err, HybridError::Timeout { port: 1024, .. }),
            "{err:?}"
        );
    }
}
