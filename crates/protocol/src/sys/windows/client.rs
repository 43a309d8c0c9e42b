//! The agent client on Windows: ttrpc's own named-pipe client on the agent port's pipe.

use std::io::{self, Read};
use std::os::windows::io::AsRawHandle;
use std::path::Path;
use std::ptr;
use std::thread;
use std::time::{Duration, Instant};

use windows_sys::Win32::System::Pipes::PeekNamedPipe;

use super::hybrid::{port_pipe, wait_pipe};
use crate::client::ClientError;
use crate::hybrid::{HostStream, HybridError};

/// Opening a pipe only proves the VMM serves it, not that the guest's agent listens (the VMM
/// then closes the pipe): a Hello that fails on the transport is tried again.
pub(crate) const HELLO_PROVES_READY: bool = true;

/// How long one wait for the agent's pipe lasts before the deadline is checked again.
const PIPE_POLL_MS: u32 = 20;

/// A ttrpc client for the agent's pipe, once the VMM serves it (waiting up to `wait`).
pub(crate) fn agent_client(socket: &Path, wait: Duration) -> Result<ttrpc::Client, ClientError> {
    let name = port_pipe(socket, crate::AGENT_PORT);
    let start = Instant::now();
    while !wait_pipe(&name, PIPE_POLL_MS) {
        if start.elapsed() >= wait {
            let source = io::Error::last_os_error();
            return Err(ClientError::Reach(HybridError::Timeout {
                port: crate::AGENT_PORT,
                waited: start.elapsed(),
                last: Box::new(HybridError::Connect { path: name, source }),
            }));
        }
        // A pipe that does not exist yet fails at once: do not spin.
        thread::sleep(Duration::from_millis(u64::from(PIPE_POLL_MS)));
    }
    let address = name.to_str().ok_or_else(|| {
        ClientError::Reach(HybridError::Connect {
            path: name.clone(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "the pipe name is not UTF-8"),
        })
    })?;
    ttrpc::Client::connect(address).map_err(ClientError::Ttrpc)
}

/// Reads the one-byte answer to a stream header, waiting at most `timeout`. A pipe read has
/// no timeout, so the pipe is peeked until the byte is there.
pub(crate) fn read_ack(stream: &mut HostStream, timeout: Duration) -> io::Result<u8> {
    let start = Instant::now();
    loop {
        let mut available = 0u32;
        // SAFETY: the handle is the open pipe `stream` owns; no buffer is passed (size 0) and
        // `available` outlives the call.
        let ok = unsafe {
            PeekNamedPipe(
                stream.as_raw_handle(),
                ptr::null_mut(),
                0,
                ptr::null_mut(),
                &mut available,
                ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        if available > 0 {
            let mut ack = [0u8; 1];
            stream.read_exact(&mut ack)?;
            return Ok(ack[0]);
        }
        if start.elapsed() >= timeout {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no answer to the stream header",
            ));
        }
        thread::sleep(Duration::from_millis(2));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write;

    use super::super::hybrid::testing::{accept, listen, unique_base};
    use super::*;
    use crate::hybrid::connect;

    #[test]
    fn test_read_ack_gets_the_byte_then_the_stream_goes_on() {
        let base = unique_base("ack");
        let pipe = listen(&port_pipe(&base, crate::STDIO_PORT));
        let server = thread::spawn(move || {
            let mut s = accept(pipe);
            thread::sleep(Duration::from_millis(30));
            s.write_all(&[0, b'x']).unwrap();
            s
        });
        let mut client = connect(&base, crate::STDIO_PORT).unwrap();
        assert_eq!(read_ack(&mut client, Duration::from_secs(5)).unwrap(), 0);
        let mut rest = [0u8; 1];
        client.read_exact(&mut rest).unwrap();
        assert_eq!(&rest, b"x");
        drop(server.join().unwrap());
    }

    #[test]
    fn test_read_ack_silent_server_times_out() {
        let base = unique_base("silent");
        let pipe = listen(&port_pipe(&base, crate::STDIO_PORT));
        let server = thread::spawn(move || accept(pipe));
        let mut client = connect(&base, crate::STDIO_PORT).unwrap();
        let server = server.join().unwrap();
        let err = read_ack(&mut client, Duration::from_millis(50)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        drop(server);
    }

    #[test]
    fn test_read_ack_closed_pipe_is_an_error() {
        let base = unique_base("closed");
        let pipe = listen(&port_pipe(&base, crate::STDIO_PORT));
        let server = thread::spawn(move || drop(accept(pipe)));
        let mut client = connect(&base, crate::STDIO_PORT).unwrap();
        server.join().unwrap();
        assert!(read_ack(&mut client, Duration::from_secs(5)).is_err());
    }

    #[test]
    fn test_agent_client_without_pipe_times_out_naming_the_port() {
        let Err(err) = agent_client(&unique_base("no-agent"), Duration::from_millis(60)) else {
            panic!("a client without a pipe");
        };
        assert!(
            matches!(
                err,
                ClientError::Reach(HybridError::Timeout {
                    port: crate::AGENT_PORT,
                    ..
                })
            ),
            "{err:?}"
        );
    }
}
