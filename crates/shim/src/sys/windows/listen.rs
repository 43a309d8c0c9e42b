//! The shim server's address on Windows: a named pipe (`\\.\pipe\containerd-shim-<hash>-pipe`,
//! the address containerd computes), and the two-process start's hand-over through the
//! server's stdout, as containerd-shim (and hcsshim) do it.

use std::fs::OpenOptions;
use std::process::Command;

use anyhow::Context;
use windows_sys::Win32::Foundation::{CloseHandle, SetHandleInformation, HANDLE_FLAG_INHERIT};
use windows_sys::Win32::System::Console::{
    GetStdHandle, SetStdHandle, STD_ERROR_HANDLE, STD_INPUT_HANDLE, STD_OUTPUT_HANDLE,
};
use windows_sys::Win32::System::Threading::{CREATE_NEW_PROCESS_GROUP, CREATE_NO_WINDOW};

/// The pipe name of an address (named pipe addresses carry no scheme).
pub fn socket_path(address: &str) -> &str {
    address
}

/// Whether a server answers at `address` (opening the pipe takes one of its instances; the
/// server makes another).
pub fn server_listening(address: &str) -> bool {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(address)
        .is_ok()
}

/// Nothing to remove: a named pipe goes with its server.
pub fn remove_stale(_address: &str) {}

/// Starts the server detached from `start`: a process group of its own, no console window,
/// and none of `start`'s own standard handles (containerd waits for those to close, so a
/// server that inherited them would hold `start` open).
pub fn detach(cmd: &mut Command) {
    use std::os::windows::process::CommandExt;
    cmd.creation_flags(CREATE_NEW_PROCESS_GROUP | CREATE_NO_WINDOW);
    for which in [STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE] {
        // SAFETY: GetStdHandle has no preconditions; SetHandleInformation only changes the
        // inherit flag of a handle of this process (an invalid one is refused, not used).
        unsafe {
            let h = GetStdHandle(which);
            if !h.is_null() {
                SetHandleInformation(h, HANDLE_FLAG_INHERIT, 0);
            }
        }
    }
}

/// Creates the pipe `address` and gives it to `server`.
pub fn listen(server: ttrpc::Server, address: &str) -> anyhow::Result<ttrpc::Server> {
    server
        .bind(address)
        .with_context(|| format!("cannot listen on {address}"))
}

/// Releases `start`, which reads the server's stdout until it closes: stdout becomes stderr
/// and the pipe to `start` is closed.
pub fn release_start() {
    // SAFETY: standard handles of this process: stdout is replaced by stderr before its old
    // handle is closed, so nothing later writes to a closed handle.
    unsafe {
        let out = GetStdHandle(STD_OUTPUT_HANDLE);
        let err = GetStdHandle(STD_ERROR_HANDLE);
        SetStdHandle(STD_OUTPUT_HANDLE, err);
        if !out.is_null() && out != err {
            CloseHandle(out);
        }
    }
}

/// Nothing to remove: the pipe went with the server.
pub fn remove_listener(_address: &str) {}
