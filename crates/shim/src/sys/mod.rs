//! The host's half of the shim: `sys/linux` or `sys/windows`, one file per concern.
//!
//! * `mounts`: [`Mounts`], the host's [`crate::mounts::HostMounts`];
//! * `remove`: [`remove_tree`], removing a directory without following links;
//! * `process`: the VMM's process (private files, containment, kill, how it ended);
//! * `listen`: the shim server's address (unix socket or named pipe) and the two-process start.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;
