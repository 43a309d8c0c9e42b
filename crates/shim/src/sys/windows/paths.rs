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
