//! Hybrid vsock on Linux: the `CONNECT <port>` handshake over the VMM's unix socket.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::hybrid::HybridError;

/// The host's end of a hybrid-vsock connection.
pub type HostStream = UnixStream;

/// The longest reply line the handshake accepts (`OK 4294967295\n` is 14 bytes).
const MAX_REPLY: usize = 32;

/// Connects to guest `port` through the VMM's hybrid-vsock socket at `path`.
pub fn connect(path: &Path, port: u32) -> Result<HostStream, HybridError> {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::BufRead;
    use std::os::unix::net::UnixListener;
    use std::path::PathBuf;
    use std::thread;
    use std::time::Duration;

    use super::*;
    use crate::hybrid::connect_wait;

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
