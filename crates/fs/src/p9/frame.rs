//! Framed messages: `size[4] type[1] tag[2] body`, where `size` counts the whole message
//! including itself. Decoding takes exactly one message and insists on consuming it exactly;
//! encoding appends one message to a buffer and, on error, leaves the buffer as it was.

use super::consts::HEADER_SIZE;
use super::rmessage::Rmessage;
use super::tmessage::Tmessage;
use super::wire::{Reader, WireError, WireFormat, MAX_MSIZE};

/// Reads the size field at the start of a message and checks it against `msize` (itself
/// capped at [`MAX_MSIZE`]): for a stream transport, how many bytes make up the message
/// whose first four bytes are `prefix`.
pub fn frame_size(prefix: &[u8], msize: u32) -> Result<usize, WireError> {
    let size = u32::decode(&mut Reader::new(prefix))?;
    check_size(size, msize)?;
    usize::try_from(size).map_err(|_| WireError::MessageTooLarge {
        size: u64::from(size),
        msize,
    })
}

fn check_size(size: u32, msize: u32) -> Result<(), WireError> {
    let msize = msize.min(MAX_MSIZE);
    if usize::try_from(size).is_ok_and(|s| s < HEADER_SIZE) {
        return Err(WireError::MessageTooSmall(size));
    }
    if size > msize {
        return Err(WireError::MessageTooLarge {
            size: u64::from(size),
            msize,
        });
    }
    Ok(())
}

/// Splits a framed message into type, tag and a reader over the body.
fn split_frame(buf: &[u8], msize: u32) -> Result<(u8, u16, Reader<'_>), WireError> {
    let mut r = Reader::new(buf);
    let size = u32::decode(&mut r)?;
    check_size(size, msize)?;
    if usize::try_from(size).ok() != Some(buf.len()) {
        return Err(WireError::SizeMismatch {
            declared: size,
            actual: buf.len(),
        });
    }
    let ty = u8::decode(&mut r)?;
    let tag = u16::decode(&mut r)?;
    Ok((ty, tag, r))
}

/// Decodes one request, `buf` being exactly the message (size field included), under the
/// largest msize ([`MAX_MSIZE`]). Returns the tag and the request.
pub fn decode_tmessage(buf: &[u8]) -> Result<(u16, Tmessage), WireError> {
    decode_tmessage_with_msize(buf, MAX_MSIZE)
}

/// As [`decode_tmessage`], under a negotiated `msize`.
pub fn decode_tmessage_with_msize(buf: &[u8], msize: u32) -> Result<(u16, Tmessage), WireError> {
    let (ty, tag, mut r) = split_frame(buf, msize)?;
    let msg = Tmessage::decode_body(ty, &mut r)?;
    r.finish()?;
    Ok((tag, msg))
}

/// Decodes one reply, `buf` being exactly the message, under [`MAX_MSIZE`].
pub fn decode_rmessage(buf: &[u8]) -> Result<(u16, Rmessage), WireError> {
    decode_rmessage_with_msize(buf, MAX_MSIZE)
}

/// As [`decode_rmessage`], under a negotiated `msize`.
pub fn decode_rmessage_with_msize(buf: &[u8], msize: u32) -> Result<(u16, Rmessage), WireError> {
    let (ty, tag, mut r) = split_frame(buf, msize)?;
    let msg = Rmessage::decode_body(ty, &mut r)?;
    r.finish()?;
    Ok((tag, msg))
}

/// Appends one framed message to `out`; on error `out` is left as it was.
fn encode_frame(
    ty: u8,
    tag: u16,
    out: &mut Vec<u8>,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let start = out.len();
    let result = (|| {
        out.extend_from_slice(&[0; 4]);
        ty.encode(out)?;
        tag.encode(out)?;
        body(out)?;
        let len = out.len().saturating_sub(start);
        let size = u32::try_from(len)
            .ok()
            .filter(|size| *size <= MAX_MSIZE)
            .ok_or(WireError::MessageTooLarge {
                size: u64::try_from(len).unwrap_or(u64::MAX),
                msize: MAX_MSIZE,
            })?;
        if let Some(field) = out.get_mut(start..start.saturating_add(4)) {
            field.copy_from_slice(&size.to_le_bytes());
        }
        Ok(())
    })();
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Appends the framed reply `msg` with `tag` to `out`. Fails, leaving `out` unchanged, if a
/// field does not fit its count or the message would exceed [`MAX_MSIZE`]; keeping replies
/// within the negotiated msize (Rread and Rreaddir counts) is the server's part.
pub fn encode_rmessage(tag: u16, msg: &Rmessage, out: &mut Vec<u8>) -> Result<(), WireError> {
    encode_frame(msg.msg_type(), tag, out, |out| msg.encode_body(out))
}

/// Appends the framed request `msg` with `tag` to `out`, as [`encode_rmessage`] does replies.
pub fn encode_tmessage(tag: u16, msg: &Tmessage, out: &mut Vec<u8>) -> Result<(), WireError> {
    encode_frame(msg.msg_type(), tag, out, |out| msg.encode_body(out))
}
