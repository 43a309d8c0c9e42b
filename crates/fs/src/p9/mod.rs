//! 9P2000.L: the wire format and the server ([`server::Server`]).
//!
//! The wire format is transport-free and knows nothing of backends: [`decode_tmessage`]
//! turns one framed request into a tag and a [`Tmessage`], [`encode_rmessage`] appends a
//! framed [`Rmessage`] to a buffer, and the reverse directions ([`encode_tmessage`],
//! [`decode_rmessage`]) serve tests and clients. Field layouts follow the Linux kernel's
//! `net/9p` client and QEMU's `hw/9pfs` server. Every length and count is bounded by the
//! message and by explicit limits ([`MAX_MSIZE`], [`MAXWELEM`], [`MAX_NAME_LEN`]); a message
//! must be consumed exactly. Strings are byte strings (see [`wire`]).

#[macro_use]
mod macros;

pub mod consts;
pub mod dirent;
pub mod frame;
pub mod rmessage;
pub mod server;
pub mod tmessage;
pub mod wire;

#[cfg(test)]
mod tests;

pub use dirent::{parse_dirents, DirEntry, DirentWriter};
pub use frame::{
    decode_rmessage, decode_rmessage_with_msize, decode_tmessage, decode_tmessage_with_msize,
    encode_rmessage, encode_tmessage, frame_size,
};
pub use rmessage::*;
pub use server::Server;
pub use tmessage::*;
pub use wire::{
    Data, Name, P9String, Qid, Reader, WireError, WireFormat, MAXWELEM, MAX_MSIZE, MAX_NAME_LEN,
};
