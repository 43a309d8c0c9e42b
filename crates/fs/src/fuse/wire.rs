//! The FUSE wire primitives: little-endian integers, zero-filled padding, fixed-layout
//! structs behind one [`Wire`] trait, a bounded [`Reader`], and the module's error type.
//!
//! Every FUSE struct is a sequence of little-endian integers in the order the uapi header
//! declares them, with explicit padding so each struct is a multiple of 8 bytes; there is no
//! implicit C padding to reproduce. Structs are therefore encoded and decoded field by field
//! with `to_le_bytes`/`from_le_bytes`: no `unsafe`, no transmutes, no alignment
//! assumptions about the buffer. Padding is written as zeros and ignored when read.

use thiserror::Error;

/// A malformed FUSE message, or a value that cannot be put on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FuseWireError {
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
    /// the header's length field disagrees with the length of the buffer
    #[error("header says {declared} bytes, buffer holds {actual}")]
    LengthMismatch {
        /// Length the header declares.
        declared: u32,
        /// Length of the buffer handed in.
        actual: usize,
    },
    /// the header's extension length runs past the message
    #[error("extensions of {extlen} bytes exceed the {body} bytes after the header")]
    ExtensionsOverrun {
        /// Extension bytes the header declares (total_extlen * 8).
        extlen: usize,
        /// Bytes after the header.
        body: usize,
    },
    /// a name or path that lacks its terminating NUL
    #[error("string without a terminating NUL")]
    MissingNul,
    /// a NUL byte inside a name or path
    #[error("NUL byte inside a string")]
    EmbeddedNul,
    /// an empty name or path
    #[error("empty name")]
    EmptyName,
    /// a name or path longer than its limit
    #[error("string of {len} bytes exceeds the limit of {max}")]
    NameTooLong {
        /// Length of the string, without its NUL.
        len: usize,
        /// Largest length allowed.
        max: usize,
    },
    /// WRITE data whose length is not the size field of fuse_write_in
    #[error("write declares {declared} bytes, carries {actual}")]
    WriteSizeMismatch {
        /// Size field of fuse_write_in.
        declared: u32,
        /// Data bytes in the message.
        actual: usize,
    },
    /// WRITE larger than the negotiated max_write
    #[error("write of {size} bytes exceeds max_write {max}")]
    WriteTooLarge {
        /// Size of the write.
        size: usize,
        /// Largest write allowed.
        max: u32,
    },
    /// SETXATTR value whose length is not the size field of fuse_setxattr_in
    #[error("setxattr declares {declared} bytes, carries {actual}")]
    XattrSizeMismatch {
        /// Size field of fuse_setxattr_in.
        declared: u32,
        /// Value bytes in the message.
        actual: usize,
    },
    /// an extended-attribute value larger than XATTR_SIZE_MAX
    #[error("xattr value of {0} bytes exceeds 65536")]
    XattrValueTooLarge(usize),
    /// BATCH_FORGET whose count disagrees with the entries the message holds
    #[error("batch forget of {count} entries, message holds {remaining} bytes of entries")]
    ForgetCountMismatch {
        /// Count field of fuse_batch_forget_in.
        count: u32,
        /// Bytes after fuse_batch_forget_in.
        remaining: usize,
    },
    /// INIT whose body is neither the 16-byte (before 7.36) nor the 64-byte fuse_init_in
    #[error("init body of {0} bytes is neither 16 nor 64")]
    InitBodySize(usize),
    /// a reply or message too large for the 32-bit length field
    #[error("message of {0} bytes does not fit the length field")]
    MessageTooLarge(usize),
    /// extension bytes that are not a whole number of 8-byte units, or too many of them
    #[error("extensions of {0} bytes are not a multiple of 8 below 512 KiB")]
    InvalidExtensions(usize),
    /// a reply whose error field is positive or beyond the errno range
    #[error("reply error field {0} is not a negative errno")]
    InvalidReplyError(i32),
    /// an error reply that carries a body
    #[error("error reply carries {0} bytes of body")]
    ErrorWithBody(usize),
    /// a directory entry that the parser or writer cannot accept
    #[error("invalid directory entry")]
    InvalidDirent,
}

/// A fixed-size value in FUSE wire format.
pub trait Wire: Sized {
    /// Encoded size in bytes.
    const SIZE: usize;
    /// Appends the encoding to `out`.
    fn encode(&self, out: &mut Vec<u8>);
    /// Reads one value from `r`.
    fn decode(r: &mut Reader<'_>) -> Result<Self, FuseWireError>;

    /// Decodes a value that must fill `buf` exactly.
    fn from_bytes(buf: &[u8]) -> Result<Self, FuseWireError> {
        let mut r = Reader::new(buf);
        let v = Self::decode(&mut r)?;
        r.finish()?;
        Ok(v)
    }

    /// The encoding as a new vector.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::SIZE);
        self.encode(&mut out);
        out
    }
}

/// A cursor over one message (or one part of it) that never reads past its end.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], FuseWireError> {
        let (head, tail) = self
            .buf
            .split_at_checked(n)
            .ok_or(FuseWireError::Truncated {
                needed: n,
                remaining: self.buf.len(),
            })?;
        self.buf = tail;
        Ok(head)
    }

    /// Takes the next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], FuseWireError> {
        let remaining = self.buf.len();
        self.take(N)?
            .try_into()
            .map_err(|_| FuseWireError::Truncated {
                needed: N,
                remaining,
            })
    }

    /// Takes everything that remains.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// Takes a NUL-terminated string ending at the first NUL: non-empty, at most `max` bytes
    /// before the NUL. The NUL is consumed and not returned.
    pub fn cstr(&mut self, max: usize) -> Result<&'a [u8], FuseWireError> {
        let nul = self
            .buf
            .iter()
            .position(|&b| b == 0)
            .ok_or(FuseWireError::MissingNul)?;
        let s = self.take(nul)?;
        self.take(1)?;
        check_str(s, max)?;
        Ok(s)
    }

    /// Takes everything that remains as one NUL-terminated string: exactly one NUL, the last
    /// byte; non-empty; at most `max` bytes before the NUL.
    pub fn last_cstr(&mut self, max: usize) -> Result<&'a [u8], FuseWireError> {
        let all = self.rest();
        let (last, s) = all.split_last().ok_or(FuseWireError::MissingNul)?;
        if *last != 0 {
            return Err(FuseWireError::MissingNul);
        }
        check_str(s, max)?;
        Ok(s)
    }

    /// Fails unless every byte has been read.
    pub fn finish(&self) -> Result<(), FuseWireError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(FuseWireError::TrailingBytes(n)),
        }
    }
}

/// Checks a string without its NUL: non-empty, no NUL, at most `max` bytes.
pub(crate) fn check_str(s: &[u8], max: usize) -> Result<(), FuseWireError> {
    if s.is_empty() {
        return Err(FuseWireError::EmptyName);
    }
    if s.contains(&0) {
        return Err(FuseWireError::EmbeddedNul);
    }
    if s.len() > max {
        return Err(FuseWireError::NameTooLong { len: s.len(), max });
    }
    Ok(())
}

/// Appends a string and its NUL after checking it as the decoder would.
pub(crate) fn put_cstr(out: &mut Vec<u8>, s: &[u8], max: usize) -> Result<(), FuseWireError> {
    check_str(s, max)?;
    out.extend_from_slice(s);
    out.push(0);
    Ok(())
}

macro_rules! wire_int {
    ($($ty:ty),*) => {$(
        impl Wire for $ty {
            const SIZE: usize = std::mem::size_of::<$ty>();
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn decode(r: &mut Reader<'_>) -> Result<Self, FuseWireError> {
                Ok(<$ty>::from_le_bytes(r.array()?))
            }
        }
    )*};
}

wire_int!(u16, u32, u64, i32, i64);

/// `N` bytes of padding: written as zeros, ignored when read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pad<const N: usize>;

impl<const N: usize> Wire for Pad<N> {
    const SIZE: usize = N;
    fn encode(&self, out: &mut Vec<u8>) {
        out.resize(out.len() + N, 0);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, FuseWireError> {
        r.take(N)?;
        Ok(Pad)
    }
}

/// Defines a public struct of wire fields, in declaration order, with its [`Wire`] impl.
macro_rules! wire_struct {
    ($(#[$meta:meta])* $name:ident {
        $( $(#[$fmeta:meta])* $field:ident : $ty:ty ),* $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl $crate::fuse::wire::Wire for $name {
            const SIZE: usize = 0 $( + <$ty as $crate::fuse::wire::Wire>::SIZE )*;

            fn encode(&self, out: &mut Vec<u8>) {
                $( $crate::fuse::wire::Wire::encode(&self.$field, out); )*
            }

            fn decode(
                r: &mut $crate::fuse::wire::Reader<'_>,
            ) -> Result<Self, $crate::fuse::wire::FuseWireError> {
                // Struct expression fields are evaluated in the order written.
                Ok(Self { $( $field: <$ty as $crate::fuse::wire::Wire>::decode(r)?, )* })
            }
        }
    };
}

pub(crate) use wire_struct;
