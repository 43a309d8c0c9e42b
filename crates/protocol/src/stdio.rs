//! The header that opens a stdio stream.
//!
//! The host connects to the agent's [`crate::STDIO_PORT`] once per stream, writes a header
//! naming the container, the exec (empty for the container's init) and the stream, and waits
//! for the agent's one-byte acknowledgement ([`ACK_OK`]). Then the connection carries the raw
//! bytes of that stream. The host opens every stream a process declares *before* the call that
//! starts the process.
//!
//! Wire format, all integers big-endian:
//!
//! ```text
//! "LCIO"  version:u8  kind:u8  container_len:u16 container  exec_len:u16 exec
//! ```

use std::io::{self, Read, Write};

use crate::{valid_id, MAX_ID_LEN};

/// The first four bytes of every header.
pub const MAGIC: [u8; 4] = *b"LCIO";
/// The header version this crate writes and reads.
pub const VERSION: u8 = 1;
/// The agent's acknowledgement: the stream is registered.
pub const ACK_OK: u8 = 0;
/// The agent's refusal: the header was malformed, a duplicate, or over a limit.
pub const ACK_REFUSED: u8 = 1;

/// Which stream of a process a connection carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// Host to guest.
    Stdin,
    /// Guest to host; with a terminal, everything the pty prints.
    Stdout,
    /// Guest to host.
    Stderr,
}

impl StreamKind {
    fn to_byte(self) -> u8 {
        match self {
            Self::Stdin => 0,
            Self::Stdout => 1,
            Self::Stderr => 2,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Self::Stdin),
            1 => Some(Self::Stdout),
            2 => Some(Self::Stderr),
            _ => None,
        }
    }
}

/// Errors of reading a header.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    /// The stream failed or ended early.
    #[error("failed to read the stdio header")]
    Io(#[source] io::Error),
    /// The magic bytes are wrong: this is not a stdio stream.
    #[error("not a stdio stream (bad magic)")]
    BadMagic,
    /// A header version this side does not know.
    #[error("unsupported stdio header version {0}")]
    Version(u8),
    /// An unknown stream kind.
    #[error("unknown stdio stream kind {0}")]
    Kind(u8),
    /// A container or exec id that is too long or has characters ids may not have.
    #[error("invalid {what} id in the stdio header")]
    Id {
        /// "container" or "exec".
        what: &'static str,
    },
}

/// The header of one stdio stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StdioHeader {
    /// The container.
    pub container_id: String,
    /// The exec, or empty for the container's init process.
    pub exec_id: String,
    /// Which stream.
    pub kind: StreamKind,
}

impl StdioHeader {
    /// The header's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(10 + self.container_id.len() + self.exec_id.len());
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(self.kind.to_byte());
        for id in [&self.container_id, &self.exec_id] {
            // Ids are bounded by MAX_ID_LEN when read; longer ones are truncated here and
            // then refused by the reader.
            let len = u16::try_from(id.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&id.as_bytes()[..usize::from(len)]);
        }
        out
    }

    /// Writes the header.
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        w.write_all(&self.encode())
    }

    /// Reads and checks a header. Reads at most `10 + 2 * MAX_ID_LEN` bytes, and never past
    /// the header.
    pub fn read_from(r: &mut impl Read) -> Result<Self, HeaderError> {
        let mut fixed = [0u8; 6];
        r.read_exact(&mut fixed).map_err(HeaderError::Io)?;
        if fixed[..4] != MAGIC {
            return Err(HeaderError::BadMagic);
        }
        if fixed[4] != VERSION {
            return Err(HeaderError::Version(fixed[4]));
        }
        let kind = StreamKind::from_byte(fixed[5]).ok_or(HeaderError::Kind(fixed[5]))?;
        let container_id = read_id(r, "container", false)?;
        let exec_id = read_id(r, "exec", true)?;
        Ok(Self {
            container_id,
            exec_id,
            kind,
        })
    }
}

fn read_id(
    r: &mut impl Read,
    what: &'static str,
    may_be_empty: bool,
) -> Result<String, HeaderError> {
    let mut len = [0u8; 2];
    r.read_exact(&mut len).map_err(HeaderError::Io)?;
    let len = usize::from(u16::from_be_bytes(len));
    if len > MAX_ID_LEN {
        return Err(HeaderError::Id { what });
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).map_err(HeaderError::Io)?;
    let id = String::from_utf8(buf).map_err(|_| HeaderError::Id { what })?;
    if (id.is_empty() && may_be_empty) || valid_id(&id) {
        Ok(id)
    } else {
        Err(HeaderError::Id { what })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn header(kind: StreamKind, exec: &str) -> StdioHeader {
        StdioHeader {
            container_id: "c1".to_owned(),
            exec_id: exec.to_owned(),
            kind,
        }
    }

    #[test]
    fn test_header_round_trip_every_kind() {
        for kind in [StreamKind::Stdin, StreamKind::Stdout, StreamKind::Stderr] {
            for exec in ["", "e1"] {
                let h = header(kind, exec);
                let bytes = h.encode();
                let mut r = &bytes[..];
                assert_eq!(StdioHeader::read_from(&mut r).unwrap(), h);
                assert!(r.is_empty(), "reader consumed past the header");
            }
        }
    }

    #[test]
    fn test_header_leaves_stream_bytes_unread() {
        let mut bytes = header(StreamKind::Stdout, "").encode();
        bytes.extend_from_slice(b"payload");
        let mut r = &bytes[..];
        StdioHeader::read_from(&mut r).unwrap();
        assert_eq!(r, b"payload");
    }

    #[test]
    fn test_header_bad_input_is_refused() {
        let good = header(StreamKind::Stderr, "e").encode();
        let mut bad_magic = good.clone();
        bad_magic[0] = b'X';
        assert!(matches!(
            StdioHeader::read_from(&mut &bad_magic[..]),
            Err(HeaderError::BadMagic)
        ));
        let mut bad_version = good.clone();
        bad_version[4] = 9;
        assert!(matches!(
            StdioHeader::read_from(&mut &bad_version[..]),
            Err(HeaderError::Version(9))
        ));
        let mut bad_kind = good.clone();
        bad_kind[5] = 7;
        assert!(matches!(
            StdioHeader::read_from(&mut &bad_kind[..]),
            Err(HeaderError::Kind(7))
        ));
        for cut in 0..good.len() {
            assert!(matches!(
                StdioHeader::read_from(&mut &good[..cut]),
                Err(HeaderError::Io(_))
            ));
        }
    }

    #[test]
    fn test_header_ids_are_bounded_and_checked() {
        let long = StdioHeader {
            container_id: "x".repeat(MAX_ID_LEN + 1),
            exec_id: String::new(),
            kind: StreamKind::Stdin,
        };
        assert!(matches!(
            StdioHeader::read_from(&mut &long.encode()[..]),
            Err(HeaderError::Id { what: "container" })
        ));
        let slash = header(StreamKind::Stdin, "../x");
        assert!(matches!(
            StdioHeader::read_from(&mut &slash.encode()[..]),
            Err(HeaderError::Id { what: "exec" })
        ));
        let empty = StdioHeader {
            container_id: String::new(),
            exec_id: String::new(),
            kind: StreamKind::Stdin,
        };
        assert!(matches!(
            StdioHeader::read_from(&mut &empty.encode()[..]),
            Err(HeaderError::Id { what: "container" })
        ));
    }
}
