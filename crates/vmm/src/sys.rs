//! Picks the host's half of the VMM: `sys/linux.rs` (KVM, the unix-socket vsock, the Linux
//! share backends) or `sys/windows.rs` (WHP, being written: docs/windows.md).

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;
