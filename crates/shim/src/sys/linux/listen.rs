//! The shim server's address on Linux: a unix socket (`unix://PATH`, the address containerd
//! computes), and the two-process start's hand-over through the server's stdout.

use std::os::fd::IntoRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use anyhow::Context;

/// The socket path of a `unix://` address.
pub fn socket_path(address: &str) -> &str {
    address.strip_prefix("unix://").unwrap_or(address)
}

/// Whether a server answers at `address`.
pub fn server_listening(address: &str) -> bool {
    UnixStream::connect(socket_path(address)).is_ok()
}

/// Removes a dead server's socket before a new one binds it.
pub fn remove_stale(address: &str) {
    let _ = std::fs::remove_file(socket_path(address));
}

/// Starts the server in a process group of its own, so containerd's signals to `start` do
/// not reach it.
pub fn detach(cmd: &mut Command) {
    cmd.process_group(0);
}

/// Binds `address` and gives it to `server`.
pub fn listen(server: ttrpc::Server, address: &str) -> anyhow::Result<ttrpc::Server> {
    let path = socket_path(address);
    if let Some(dir) = Path::new(path).parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let listener = UnixListener::bind(path).with_context(|| format!("cannot listen on {path}"))?;
    server
        .add_listener(listener.into_raw_fd())
        .context("cannot start the ttrpc server")
}

/// Releases `start`, which reads the server's stdout until it closes: stdout becomes stderr.
pub fn release_start() {
    // SAFETY: dup2 on the process's own standard descriptors; no memory is involved.
    unsafe {
        libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO);
    }
}

/// Removes the server's socket once it stopped.
pub fn remove_listener(address: &str) {
    let _ = std::fs::remove_file(socket_path(address));
}
