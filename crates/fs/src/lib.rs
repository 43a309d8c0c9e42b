//! The lcow file server (docs/architecture.md, "Crates": `crates/fs`): how the guest
//! sees the host's files. Two transport-free protocol servers — 9P2000.L ([`p9`]) and FUSE as
//! virtio-fs speaks it ([`fuse`]) — run over one [`backend::Backend`] trait, whose
//! implementations resolve every path beneath the share root from file descriptors, so no
//! request from the guest reaches outside its share. Every byte of a request is hostile: the
//! decoders bound every length and count, and nothing a guest sends can cause a panic.

#![deny(missing_docs)]

/// Runs each named case, a `fn(Config)` taking the passthrough backend's configuration, twice:
/// in module `host_locks` with the host's own locks, in `server_locks` with the server's lock
/// table ([`backend::server_locks`]), so one suite proves both keep the same semantics.
#[cfg(all(test, target_os = "linux"))]
macro_rules! both_lock_keepings {
    ($($name:ident),* $(,)?) => {
        mod host_locks {
            $(#[test]
            fn $name() {
                super::$name($crate::backend::passthrough::Config::default())
            })*
        }
        mod server_locks {
            $(#[test]
            fn $name() {
                super::$name($crate::backend::passthrough::Config {
                    locks: $crate::backend::server_locks::LockKeeping::Server,
                    ..$crate::backend::passthrough::Config::default()
                })
            })*
        }
    };
}

pub mod backend;
pub mod fuse;
pub mod linux;
pub mod locks;
pub mod p9;
pub mod wsl;
