//! The host side of hybrid vsock per host: unix sockets on Linux (`linux.rs`), named pipes on
//! Windows (`windows/`). Each gives the muxer the same things: `HostListener` (bind, register,
//! accept), `HostStream` (non-blocking reads and writes), `connect_host` for guest-initiated
//! connections, `watch` (a stream's wait registration) and `readiness` (what a wake-up means),
//! and `HANDSHAKE` (whether host clients send `CONNECT` and read `OK`).

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;
