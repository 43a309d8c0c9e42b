//! The VMM's process on Linux.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, ExitStatus};

/// Creates `dir` and its parents, the last ones `rwx--x--x` (the VMM, the shim's child, reads
/// beneath it; nobody else lists it).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(dir)
}

/// Creates (or truncates) `path` for writing, readable by its owner only.
pub fn create_private_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// The signal that ended a process, if one did.
pub fn exit_signal(status: &ExitStatus) -> Option<i32> {
    status.signal()
}

/// Makes a started VMM end with the shim. On Linux the VMM stays its own process (the shim's
/// cleanup and `delete` find it by its pid file); nothing to do.
pub fn contain(_child: &Child) -> io::Result<()> {
    Ok(())
}

/// SIGKILL to `pid`, ignoring a process that is already gone.
pub fn kill_pid(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Whether `pid` is an lcow-vmm process (so a recycled pid is never killed).
pub fn is_vmm(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|c| c.trim_end().starts_with("lcow-vmm"))
}
