//! Where the runtime's files are on Linux: `make install`'s prefix and `/run/lcow`.

use std::path::PathBuf;

/// Where `make install` puts the VMM, kernel and initramfs.
const PREFIX: &str = "/usr/local";

/// The configuration file read when nothing names another.
pub fn default_config_path() -> PathBuf {
    PathBuf::from("/etc/lcow/lcow.toml")
}

/// The default `vmm`, `kernel` and `initramfs`.
pub fn default_files() -> (PathBuf, PathBuf, PathBuf) {
    let prefix = PathBuf::from(PREFIX);
    (
        prefix.join("bin/lcow-vmm"),
        prefix.join("share/lcow/vmlinux"),
        prefix.join("share/lcow/initramfs.cpio"),
    )
}

/// The default `state_dir` (short: unix socket paths are limited to 107 bytes).
pub fn default_state_dir() -> PathBuf {
    PathBuf::from("/run/lcow")
}

/// How to get containerd, for `check`.
pub const CONTAINERD_HINT: &str = "not found on PATH (Debian: apt-get install containerd)";

/// How to put the runtime's files in place, for errors that find one missing.
pub const INSTALL_HINT: &str = "run `make install`";

/// The VMM's hybrid-vsock endpoint for the VM whose state directory is `state`: a unix socket
/// in it.
pub fn vsock_endpoint(state: &std::path::Path) -> PathBuf {
    state.join("v.sock")
}

/// How the VM's share keeps files: the host's own owners and modes (the shim runs as root).
pub const SHARE_BACKEND: lcow_protocol::vm::ShareBackend =
    lcow_protocol::vm::ShareBackend::Passthrough;
