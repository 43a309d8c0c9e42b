//! The host side of the NTFS backend: the real NT calls on Windows ([`windows::WinNt`]).

#[cfg(windows)]
pub mod windows;
