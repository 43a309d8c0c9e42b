//! FUSE as virtio-fs speaks it: the wire format and the server.
//!
//! The wire format is transport-free and knows nothing of backends: [`decode_request`] turns
//! one whole request (as the guest kernel put it in a virtio-fs descriptor chain) into a
//! [`Request`], whose [`Operation`] has a variant per opcode of the virtio-fs op set and
//! [`Operation::Unknown`] for the rest, so the server can answer ENOSYS. [`reply_error`],
//! [`reply_ok`], [`reply_data`] and [`reply_empty`] build replies; [`DirentWriter`] packs
//! READDIR and READDIRPLUS bodies. The reverse directions ([`encode_request`],
//! [`decode_reply`], [`parse_dirents`]) serve tests and clients. [`server::Server`] answers
//! requests over a [`Backend`](crate::backend::Backend).
//!
//! Layouts follow the Linux uapi `include/uapi/linux/fuse.h` (protocol 7.38; the 6.1 guest
//! kernel speaks 7.37), field by field in little-endian, without `unsafe`. Every length and
//! count is bounded by the message and by explicit limits ([`MAX_NAME_LEN`],
//! [`MAX_SYMLINK_LEN`], [`MAX_XATTR_NAME_LEN`], [`MAX_XATTR_VALUE_LEN`], [`MAX_WRITE`]); a
//! request must be consumed exactly, and nothing in it can cause a panic.

pub mod abi;
pub mod consts;
pub mod dirent;
pub mod reply;
pub mod request;
pub mod server;
pub mod wire;

#[cfg(test)]
mod tests;

pub use abi::*;
pub use dirent::{parse_direntplus, parse_dirents, DirEntry, DirentWriter};
pub use reply::{decode_reply, reply_data, reply_empty, reply_error, reply_ok, Reply};
pub use request::{
    decode_request, decode_request_with, encode_request, encode_request_with, Negotiated,
    Operation, Request,
};
pub use wire::{FuseWireError, Pad, Reader, Wire};
