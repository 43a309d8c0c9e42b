//! FUSE replies: `fuse_out_header` and a body. The encoders fill in the header's length;
//! [`decode_reply`] and [`Reply::parse`] are the reverse, for tests and clients.
//!
//! An error reply is the header alone with `error` set to the negated errno. Only errnos in
//! `1..=511` are sent: the kernel treats anything else (0, positive values, its internal
//! codes from 512 up such as ERESTARTSYS) as a protocol error or worse, so
//! [`reply_error`] replaces them with EIO.

use super::abi::OutHeader;
use super::wire::{FuseWireError, Reader, Wire};

/// Largest errno [`reply_error`] sends as given.
pub const MAX_ERRNO: i32 = 511;

/// The errno sent for an out-of-range one.
const EIO: i32 = 5;

fn header(unique: u64, error: i32, body_len: usize) -> Result<Vec<u8>, FuseWireError> {
    let total = body_len
        .checked_add(OutHeader::SIZE)
        .ok_or(FuseWireError::MessageTooLarge(body_len))?;
    let len = u32::try_from(total).map_err(|_| FuseWireError::MessageTooLarge(total))?;
    let mut out = Vec::with_capacity(total);
    OutHeader { len, error, unique }.encode(&mut out);
    Ok(out)
}

/// An error reply for request `unique`: the header alone, `error = -errno`. An errno outside
/// `1..=511` is sent as EIO.
pub fn reply_error(unique: u64, errno: i32) -> Vec<u8> {
    let errno = if (1..=MAX_ERRNO).contains(&errno) {
        errno
    } else {
        EIO
    };
    let mut out = Vec::with_capacity(OutHeader::SIZE);
    OutHeader {
        len: OutHeader::SIZE as u32,
        error: -errno,
        unique,
    }
    .encode(&mut out);
    out
}

/// A success reply whose body is one fixed-layout struct (`fuse_entry_out`,
/// `fuse_attr_out`, [`CreateOut`](super::abi::CreateOut), ...).
pub fn reply_ok<T: Wire>(unique: u64, body: &T) -> Vec<u8> {
    let len = OutHeader::SIZE + T::SIZE;
    let mut out = Vec::with_capacity(len);
    OutHeader {
        // Every reply struct is at most a few hundred bytes.
        len: u32::try_from(len).unwrap_or(u32::MAX),
        error: 0,
        unique,
    }
    .encode(&mut out);
    body.encode(&mut out);
    out
}

/// A success reply whose body is raw bytes (READ, READLINK, GETXATTR and LISTXATTR values,
/// READDIR buffers) or nothing. Fails only if the reply would not fit the 32-bit length.
pub fn reply_data(unique: u64, data: &[u8]) -> Result<Vec<u8>, FuseWireError> {
    let mut out = header(unique, 0, data.len())?;
    out.extend_from_slice(data);
    Ok(out)
}

/// A success reply with no body (UNLINK, RMDIR, RENAME, SETXATTR, RELEASE, FSYNC, ...).
pub fn reply_empty(unique: u64) -> Vec<u8> {
    reply_ok(unique, &super::wire::Pad::<0>)
}

/// One decoded reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply<'a> {
    /// The header as sent.
    pub header: OutHeader,
    /// Everything after the header; empty for an error.
    pub body: &'a [u8],
}

impl Reply<'_> {
    /// The errno of an error reply, or `None` for success.
    pub fn errno(&self) -> Option<i32> {
        (self.header.error != 0).then(|| -self.header.error)
    }

    /// The body as one fixed-layout struct, which must fill it exactly.
    pub fn parse<T: Wire>(&self) -> Result<T, FuseWireError> {
        T::from_bytes(self.body)
    }
}

/// Decodes one reply, `buf` being exactly the reply. The header's length must be the
/// buffer's; an error must be a negated errno in `1..=511` and carry no body.
pub fn decode_reply(buf: &[u8]) -> Result<Reply<'_>, FuseWireError> {
    let mut r = Reader::new(buf);
    let header = OutHeader::decode(&mut r)?;
    if usize::try_from(header.len).ok() != Some(buf.len()) {
        return Err(FuseWireError::LengthMismatch {
            declared: header.len,
            actual: buf.len(),
        });
    }
    let body = r.rest();
    if header.error != 0 {
        if !(-MAX_ERRNO..=-1).contains(&header.error) {
            return Err(FuseWireError::InvalidReplyError(header.error));
        }
        if !body.is_empty() {
            return Err(FuseWireError::ErrorWithBody(body.len()));
        }
    }
    Ok(Reply { header, body })
}
