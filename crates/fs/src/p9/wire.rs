//! The 9P2000.L wire primitives: little-endian integers, counted strings, counted data blobs,
//! qids and `u16`-counted vectors, behind one [`WireFormat`] trait.
//!
//! Decoding reads from a [`Reader`] over exactly one message body, so no length can run past
//! the message: every count is checked against the bytes that remain before anything is
//! allocated, and against the field's own limit ([`MAX_NAME_LEN`] for names, [`MAXWELEM`] for
//! walks). Encoding refuses values whose length does not fit their count field instead of
//! truncating them.
//!
//! Strings are byte strings. A 9P string is a `u16` length and that many bytes, and the Linux
//! client sends file names as the kernel holds them: arbitrary bytes other than `/` and NUL,
//! not necessarily UTF-8. The wire layer therefore keeps strings as bytes ([`P9String`],
//! [`Name`]) and never validates UTF-8; a backend that needs text (Windows paths) converts with
//! [`P9String::to_str`] / [`Name::to_str`], which fail with [`WireError::InvalidUtf8`]
//! (EINVAL). Which bytes a name may contain (`/`, NUL, `.`, `..`) is the server's decision, not
//! the decoder's.

use std::fmt;

use thiserror::Error;

/// Largest message size this crate accepts or produces: 1 MiB, the ceiling for a negotiated
/// msize.
pub const MAX_MSIZE: u32 = 1 << 20;

/// Most names in one Twalk, and qids in one Rwalk (Plan 9's `MAXWELEM`).
pub const MAXWELEM: usize = 16;

/// Longest file or extended-attribute name, in bytes (Linux `NAME_MAX`, `XATTR_NAME_MAX`).
pub const MAX_NAME_LEN: usize = 255;

/// Linux errno numbers, as 9P2000.L carries them in Rlerror whatever the host is.
pub mod errno {
    /// Invalid argument.
    pub const EINVAL: u32 = 22;
    /// File name too long.
    pub const ENAMETOOLONG: u32 = 36;
    /// Message too long.
    pub const EMSGSIZE: u32 = 90;
}

/// A malformed message, or a value that cannot be put on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    /// message truncated: a field needs more bytes than remain
    #[error("message truncated: {needed} bytes needed, {remaining} remain")]
    Truncated {
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left in the message.
        remaining: usize,
    },
    /// bytes left over after the message's last field
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    /// the size field disagrees with the length of the buffer
    #[error("size field says {declared} bytes, buffer holds {actual}")]
    SizeMismatch {
        /// Size the header declares.
        declared: u32,
        /// Length of the buffer handed in.
        actual: usize,
    },
    /// the message is larger than msize
    #[error("message of {size} bytes exceeds msize {msize}")]
    MessageTooLarge {
        /// Size of the message.
        size: u64,
        /// Largest size allowed.
        msize: u32,
    },
    /// the size field is smaller than a message header
    #[error("size field {0} is smaller than the 7-byte header")]
    MessageTooSmall(u32),
    /// a type byte that names no 9P2000.L message of the expected direction
    #[error("unknown message type {0}")]
    UnknownType(u8),
    /// a walk with more than MAXWELEM names or qids
    #[error("walk of {0} elements exceeds the limit of 16")]
    TooManyWalkElements(usize),
    /// a name longer than NAME_MAX
    #[error("name of {0} bytes exceeds the limit of 255")]
    NameTooLong(usize),
    /// a value too long for its count field
    #[error("length {len} does not fit a {bits}-bit count")]
    LengthOverflow {
        /// Length of the value.
        len: usize,
        /// Width of the count field.
        bits: u32,
    },
    /// a string that had to be UTF-8 is not
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
}

impl WireError {
    /// The Linux errno a server answers with (in Rlerror) when a request fails to decode.
    pub fn errno(&self) -> u32 {
        match self {
            WireError::MessageTooLarge { .. } | WireError::LengthOverflow { .. } => errno::EMSGSIZE,
            WireError::NameTooLong(_) => errno::ENAMETOOLONG,
            _ => errno::EINVAL,
        }
    }
}

/// A cursor over the bytes of one message body; reads never go past its end.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, which bounds every read.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Takes the next `n` bytes, or fails without consuming anything if fewer remain.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.buf.len() {
            return Err(WireError::Truncated {
                needed: n,
                remaining: self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Takes exactly `N` bytes as an array.
    pub fn take_array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// Fails with [`WireError::TrailingBytes`] unless every byte has been read.
    pub fn finish(&self) -> Result<(), WireError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(WireError::TrailingBytes(self.buf.len()))
        }
    }
}

/// A value with a 9P wire representation.
pub trait WireFormat: Sized {
    /// Appends the value's wire bytes to `out`. On error `out` may hold a partial encoding;
    /// the framing functions roll it back.
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError>;

    /// Reads one value from `r`, bounded by the bytes that remain.
    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError>;
}

macro_rules! wire_int {
    ($($ty:ty),*) => {$(
        impl WireFormat for $ty {
            fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
                out.extend_from_slice(&self.to_le_bytes());
                Ok(())
            }

            fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
                Ok(<$ty>::from_le_bytes(r.take_array()?))
            }
        }
    )*};
}

wire_int!(u8, u16, u32, u64);

/// Writes a `u16` count, failing if `len` does not fit.
fn encode_u16_len(len: usize, out: &mut Vec<u8>) -> Result<(), WireError> {
    let n = u16::try_from(len).map_err(|_| WireError::LengthOverflow { len, bits: 16 })?;
    n.encode(out)
}

/// Writes a `u32` count, failing if `len` does not fit.
fn encode_u32_len(len: usize, out: &mut Vec<u8>) -> Result<(), WireError> {
    let n = u32::try_from(len).map_err(|_| WireError::LengthOverflow { len, bits: 32 })?;
    n.encode(out)
}

/// A 9P string: a `u16` byte count and that many bytes, not necessarily UTF-8.
#[derive(Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct P9String(Vec<u8>);

impl P9String {
    /// The string's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The string's bytes, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// The string as UTF-8, or [`WireError::InvalidUtf8`].
    pub fn to_str(&self) -> Result<&str, WireError> {
        std::str::from_utf8(&self.0).map_err(|_| WireError::InvalidUtf8)
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the string is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for P9String {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

impl From<&str> for P9String {
    fn from(s: &str) -> Self {
        Self(s.as_bytes().to_vec())
    }
}

impl From<&[u8]> for P9String {
    fn from(b: &[u8]) -> Self {
        Self(b.to_vec())
    }
}

impl From<Vec<u8>> for P9String {
    fn from(b: Vec<u8>) -> Self {
        Self(b)
    }
}

impl WireFormat for P9String {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        encode_u16_len(self.0.len(), out)?;
        out.extend_from_slice(&self.0);
        Ok(())
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let len = usize::from(u16::decode(r)?);
        Ok(Self(r.take(len)?.to_vec()))
    }
}

/// A file or extended-attribute name: a 9P string of at most [`MAX_NAME_LEN`] bytes.
#[derive(Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Name(Vec<u8>);

impl Name {
    /// A name from bytes, or [`WireError::NameTooLong`].
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, WireError> {
        let bytes = bytes.into();
        if bytes.len() > MAX_NAME_LEN {
            return Err(WireError::NameTooLong(bytes.len()));
        }
        Ok(Self(bytes))
    }

    /// The name's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The name's bytes, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// The name as UTF-8, or [`WireError::InvalidUtf8`].
    pub fn to_str(&self) -> Result<&str, WireError> {
        std::str::from_utf8(&self.0).map_err(|_| WireError::InvalidUtf8)
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the name is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

impl TryFrom<&str> for Name {
    type Error = WireError;

    fn try_from(s: &str) -> Result<Self, WireError> {
        Self::new(s.as_bytes())
    }
}

impl TryFrom<&[u8]> for Name {
    type Error = WireError;

    fn try_from(b: &[u8]) -> Result<Self, WireError> {
        Self::new(b)
    }
}

impl TryFrom<Vec<u8>> for Name {
    type Error = WireError;

    fn try_from(b: Vec<u8>) -> Result<Self, WireError> {
        Self::new(b)
    }
}

impl WireFormat for Name {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        // The constructor bounds the length; check again so encoding can never emit an
        // over-long name whatever the invariant.
        if self.0.len() > MAX_NAME_LEN {
            return Err(WireError::NameTooLong(self.0.len()));
        }
        encode_u16_len(self.0.len(), out)?;
        out.extend_from_slice(&self.0);
        Ok(())
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let len = usize::from(u16::decode(r)?);
        if len > MAX_NAME_LEN {
            return Err(WireError::NameTooLong(len));
        }
        Ok(Self(r.take(len)?.to_vec()))
    }
}

/// A data blob: a `u32` byte count and that many bytes (Rread, Twrite, Rreaddir).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Data(pub Vec<u8>);

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print a whole guest-controlled buffer.
        write!(f, "Data({} bytes)", self.0.len())
    }
}

impl WireFormat for Data {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        encode_u32_len(self.0.len(), out)?;
        out.extend_from_slice(&self.0);
        Ok(())
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let len = u32::decode(r)?;
        let len = usize::try_from(len).map_err(|_| WireError::Truncated {
            needed: usize::MAX,
            remaining: r.remaining(),
        })?;
        Ok(Self(r.take(len)?.to_vec()))
    }
}

/// A qid: the server's identity for a file (type, version, path), 13 bytes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Qid {
    /// File type bits (`QTDIR`, `QTSYMLINK`, …; see [`super::consts::qid_type`]).
    pub ty: u8,
    /// Version, typically changed when the file is modified.
    pub version: u32,
    /// Unique identity of the file on the server (an inode number, for example).
    pub path: u64,
}

impl Qid {
    /// Bytes a qid takes on the wire.
    pub const WIRE_SIZE: usize = 13;
}

impl WireFormat for Qid {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        self.ty.encode(out)?;
        self.version.encode(out)?;
        self.path.encode(out)
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self {
            ty: u8::decode(r)?,
            version: u32::decode(r)?,
            path: u64::decode(r)?,
        })
    }
}

/// A `u16` count followed by that many elements. The count is checked against the bytes
/// that remain before anything is allocated.
impl<T: WireFormat> WireFormat for Vec<T> {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        encode_u16_len(self.len(), out)?;
        self.iter().try_for_each(|v| v.encode(out))
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let count = usize::from(u16::decode(r)?);
        decode_elements(r, count)
    }
}

/// Decodes `count` elements, allocating no more slots than bytes remain.
pub(crate) fn decode_elements<T: WireFormat>(
    r: &mut Reader<'_>,
    count: usize,
) -> Result<Vec<T>, WireError> {
    let mut v = Vec::with_capacity(count.min(r.remaining()));
    for _ in 0..count {
        v.push(T::decode(r)?);
    }
    Ok(v)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn roundtrip<T: WireFormat + PartialEq + fmt::Debug>(v: &T) -> Vec<u8> {
        let mut out = Vec::new();
        v.encode(&mut out).unwrap();
        let mut r = Reader::new(&out);
        assert_eq!(&T::decode(&mut r).unwrap(), v);
        r.finish().unwrap();
        out
    }

    #[test]
    fn test_integers_roundtrip_little_endian() {
        assert_eq!(roundtrip(&0x12u8), [0x12]);
        assert_eq!(roundtrip(&0x1234u16), [0x34, 0x12]);
        assert_eq!(roundtrip(&0x1234_5678u32), [0x78, 0x56, 0x34, 0x12]);
        assert_eq!(
            roundtrip(&0x0102_0304_0506_0708u64),
            [8, 7, 6, 5, 4, 3, 2, 1]
        );
    }

    #[test]
    fn test_string_non_utf8_roundtrips_as_bytes() {
        let s = P9String::from(&[0xff, 0xfe, b'a'][..]);
        assert_eq!(roundtrip(&s), [3, 0, 0xff, 0xfe, b'a']);
        assert_eq!(s.to_str(), Err(WireError::InvalidUtf8));
    }

    #[test]
    fn test_string_length_past_end_is_truncated() {
        let mut r = Reader::new(&[5, 0, b'a', b'b']);
        assert!(matches!(
            P9String::decode(&mut r),
            Err(WireError::Truncated {
                needed: 5,
                remaining: 2
            })
        ));
    }

    #[test]
    fn test_name_over_255_bytes_is_rejected() {
        assert_eq!(Name::new(vec![b'a'; 256]), Err(WireError::NameTooLong(256)));
        let name = Name::new(vec![b'a'; 255]).unwrap();
        roundtrip(&name);
        let mut bytes = vec![0x00, 0x01];
        bytes.extend(vec![b'a'; 256]);
        let mut r = Reader::new(&bytes);
        assert_eq!(Name::decode(&mut r), Err(WireError::NameTooLong(256)));
    }

    #[test]
    fn test_data_count_past_end_is_truncated() {
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 1, 2]);
        assert!(matches!(
            Data::decode(&mut r),
            Err(WireError::Truncated { .. })
        ));
    }

    #[test]
    fn test_vec_huge_count_fails_without_allocating() {
        let mut r = Reader::new(&[0xff, 0xff, 0]);
        assert!(matches!(
            Vec::<Qid>::decode(&mut r),
            Err(WireError::Truncated { .. })
        ));
    }

    #[test]
    fn test_string_too_long_for_u16_fails_to_encode() {
        let s = P9String::from(vec![0u8; 65536]);
        let mut out = Vec::new();
        assert_eq!(
            s.encode(&mut out),
            Err(WireError::LengthOverflow {
                len: 65536,
                bits: 16
            })
        );
    }

    #[test]
    fn test_qid_is_13_bytes() {
        let q = Qid {
            ty: 0x80,
            version: 1,
            path: 2,
        };
        assert_eq!(roundtrip(&q).len(), Qid::WIRE_SIZE);
    }

    #[test]
    fn test_errno_maps_decode_errors() {
        assert_eq!(WireError::UnknownType(0).errno(), errno::EINVAL);
        assert_eq!(WireError::NameTooLong(300).errno(), errno::ENAMETOOLONG);
    }
}
