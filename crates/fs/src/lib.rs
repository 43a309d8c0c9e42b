//! The lcow file server (docs/architecture.md, "Crates": `crates/fs`): how the guest
//! sees the host's files. Two transport-free protocol servers — 9P2000.L ([`p9`]) and FUSE as
//! virtio-fs speaks it ([`fuse`]) — run over one [`backend::Backend`] trait, whose
//! implementations resolve every path beneath the share root from file descriptors, so no
//! request from the guest reaches outside its share. Every byte of a request is hostile: the
//! decoders bound every length and count, and nothing a guest sends can cause a panic.

#![deny(missing_docs)]

pub mod backend;
pub mod fuse;
pub mod linux;
pub mod locks;
pub mod p9;
