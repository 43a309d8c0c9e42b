//! Where the runtime's files are on Windows: the VMM, kernel and initramfs next to the shim's
//! own `.exe` (the package's layout: unzip it anywhere), configuration and state under
//! `%ProgramData%\lcow`.

use std::path::PathBuf;

/// `%ProgramData%`, or its usual place when the variable is missing.
fn program_data() -> PathBuf {
    std::env::var_os("ProgramData")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(r"C:\ProgramData"), PathBuf::from)
}

/// The directory of this program, or the working directory when it cannot be found.
fn exe_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(PathBuf::from))
        .unwrap_or_default()
}

/// The configuration file read when nothing names another.
pub fn default_config_path() -> PathBuf {
    program_data().join(r"lcow\lcow.toml")
}

/// The default `vmm`, `kernel` and `initramfs`: beside this program.
pub fn default_files() -> (PathBuf, PathBuf, PathBuf) {
    let dir = exe_dir();
    (
        dir.join("lcow-vmm.exe"),
        dir.join("vmlinux"),
        dir.join("initramfs.cpio"),
    )
}

/// The default `state_dir`.
pub fn default_state_dir() -> PathBuf {
    program_data().join(r"lcow\state")
}

/// How to get containerd, for `check`.
pub const CONTAINERD_HINT: &str =
    "containerd.exe not found on PATH (install containerd for Windows and add it to PATH)";

/// How to put the runtime's files in place, for errors that find one missing.
pub const INSTALL_HINT: &str =
    "unzip the lcow package and run its containerd-shim-lcow-v1.exe from there";

/// The VMM's hybrid-vsock endpoint for the VM whose state directory is `state`: the named
/// pipe prefix `\\.\pipe\lcow-<state directory's name>` (the VMM serves guest port P as
/// `<prefix>-P`); the state directory's name is already unique per namespace and id.
pub fn vsock_endpoint(state: &std::path::Path) -> PathBuf {
    let name = state
        .file_name()
        .map_or_else(|| "vm".into(), |n| n.to_string_lossy().into_owned());
    PathBuf::from(format!(r"\\.\pipe\lcow-{name}"))
}

/// How the VM's share keeps files: NTFS the WSL way (owners and modes in EAs), the only
/// backend `lcow-vmm.exe` serves.
pub const SHARE_BACKEND: lcow_protocol::vm::ShareBackend = lcow_protocol::vm::ShareBackend::Mapped;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_vsock_endpoint_is_a_pipe_named_after_the_state_dir() {
        let p = vsock_endpoint(std::path::Path::new(r"C:\ProgramData\lcow\state\0123abcd"));
        assert_eq!(p, PathBuf::from(r"\\.\pipe\lcow-0123abcd"));
    }
}
