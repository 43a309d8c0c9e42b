//! Hybrid vsock on Windows: the VMM serves guest port `P` as the named pipe `<PATH>-<P>`;
//! opening it is the connect (no handshake).

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::os::windows::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use windows_sys::Win32::Foundation::ERROR_PIPE_BUSY;
use windows_sys::Win32::System::Pipes::WaitNamedPipeW;

use crate::hybrid::HybridError;

/// The host's end of a hybrid-vsock connection: a named pipe opened as a file.
pub type HostStream = File;

/// How often [`connect`] waits for a free pipe instance before it gives up (each wait at most
/// [`BUSY_WAIT_MS`]): the VMM makes the next instance as soon as one is taken.
const BUSY_WAITS: u32 = 10;
const BUSY_WAIT_MS: u32 = 100;

/// The pipe of guest `port` behind the VMM's vsock endpoint `base` (`\\.\pipe\lcow-x` →
/// `\\.\pipe\lcow-x-1024`).
pub fn port_pipe(base: &Path, port: u32) -> PathBuf {
    let mut name = OsString::from(base.as_os_str());
    name.push(format!("-{port}"));
    PathBuf::from(name)
}

/// Waits up to `millis` for an instance of pipe `name` to be free; false if none is (or the
/// pipe does not exist).
pub(crate) fn wait_pipe(name: &Path, millis: u32) -> bool {
    let wide: Vec<u16> = name.as_os_str().encode_wide().chain([0]).collect();
    // SAFETY: `wide` is a NUL-terminated UTF-16 string that lives across the call.
    unsafe { WaitNamedPipeW(wide.as_ptr(), millis) != 0 }
}

/// Connects to guest `port` through the VMM's vsock endpoint `path` (a pipe name prefix).
pub fn connect(path: &Path, port: u32) -> Result<HostStream, HybridError> {
    let name = port_pipe(path, port);
    let mut waits = 0;
    loop {
        match OpenOptions::new().read(true).write(true).open(&name) {
            Ok(file) => return Ok(file),
            Err(e) if e.raw_os_error() == Some(ERROR_PIPE_BUSY as i32) && waits < BUSY_WAITS => {
                waits += 1;
                wait_pipe(&name, BUSY_WAIT_MS);
            }
            Err(source) => return Err(HybridError::Connect { path: name, source }),
        }
    }
}

/// A named pipe server for tests: one instance, in byte mode.
#[cfg(test)]
pub(crate) mod testing {
    use std::fs::File;
    use std::os::windows::ffi::OsStrExt;
    use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
    use std::path::Path;
    use std::ptr;

    use windows_sys::Win32::Foundation::{ERROR_PIPE_CONNECTED, INVALID_HANDLE_VALUE};
    use windows_sys::Win32::Storage::FileSystem::PIPE_ACCESS_DUPLEX;
    use windows_sys::Win32::System::Pipes::{
        ConnectNamedPipe, CreateNamedPipeW, PIPE_READMODE_BYTE, PIPE_REJECT_REMOTE_CLIENTS,
        PIPE_TYPE_BYTE, PIPE_WAIT,
    };

    /// A unique pipe name for one test.
    pub(crate) fn unique_base(test: &str) -> std::path::PathBuf {
        format!(r"\\.\pipe\lcow-test-{}-{test}", std::process::id()).into()
    }

    /// Creates one instance of pipe `name`; [`accept`] waits for its client.
    pub(crate) fn listen(name: &Path) -> OwnedHandle {
        let wide: Vec<u16> = name.as_os_str().encode_wide().chain([0]).collect();
        // SAFETY: `wide` is NUL-terminated and outlives the call; the other arguments are plain
        // values and a null security descriptor.
        let handle = unsafe {
            CreateNamedPipeW(
                wide.as_ptr(),
                PIPE_ACCESS_DUPLEX,
                PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
                4,
                4096,
                4096,
                0,
                ptr::null(),
            )
        };
        assert!(
            handle != INVALID_HANDLE_VALUE,
            "{}",
            std::io::Error::last_os_error()
        );
        // SAFETY: a new pipe handle that nothing else owns.
        unsafe { OwnedHandle::from_raw_handle(handle) }
    }

    /// Waits for the client of `pipe` and returns the server's end as a file.
    pub(crate) fn accept(pipe: OwnedHandle) -> File {
        // SAFETY: `pipe` is an open pipe instance; no OVERLAPPED (a blocking wait).
        let ok = unsafe { ConnectNamedPipe(pipe.as_raw_handle(), ptr::null_mut()) } != 0;
        let err = std::io::Error::last_os_error();
        assert!(
            ok || err.raw_os_error() == Some(ERROR_PIPE_CONNECTED as i32),
            "{err}"
        );
        File::from(pipe)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::{Read, Write};
    use std::thread;
    use std::time::Duration;

    use super::testing::{accept, listen, unique_base};
    use super::*;
    use crate::hybrid::connect_wait;

    #[test]
    fn test_port_pipe_appends_the_port() {
        assert_eq!(
            port_pipe(Path::new(r"\\.\pipe\lcow-c1"), 1024),
            PathBuf::from(r"\\.\pipe\lcow-c1-1024")
        );
    }

    #[test]
    fn test_connect_opens_the_port_pipe_both_ways() {
        let base = unique_base("both-ways");
        let pipe = listen(&port_pipe(&base, 1025));
        let server = thread::spawn(move || {
            let mut s = accept(pipe);
            let mut got = [0u8; 5];
            s.read_exact(&mut got).unwrap();
            s.write_all(b"data").unwrap();
            got
        });
        let mut client = connect(&base, 1025).unwrap();
        client.write_all(b"hello").unwrap();
        let mut data = [0u8; 4];
        client.read_exact(&mut data).unwrap();
        assert_eq!(&data, b"data");
        assert_eq!(&server.join().unwrap(), b"hello");
    }

    #[test]
    fn test_connect_missing_pipe_is_a_connect_error() {
        let err = connect(&unique_base("missing"), 1024).unwrap_err();
        assert!(matches!(err, HybridError::Connect { .. }), "{err:?}");
    }

    #[test]
    fn test_connect_wait_times_out_without_pipe() {
        let err = connect_wait(&unique_base("none"), 1024, Duration::from_millis(50)).unwrap_err();
        assert!(
            matches!(err, HybridError::Timeout { port: 1024, .. }),
            "{err:?}"
        );
    }
}
