//! Reparse points: how WSL stores Linux symlinks and special files on NTFS, and how NT's own
//! symbolic links and junctions read as Linux symlinks.
//!
//! A `REPARSE_DATA_BUFFER` is `u32 ReparseTag`, `u16 ReparseDataLength` (the bytes after this
//! 8-byte header), `u16 Reserved` (0), then the data, at most 16 KiB in all. WSL's tags:
//!
//! | tag             | value        | Linux type | data                                      |
//! |-----------------|--------------|------------|-------------------------------------------|
//! | `LX_SYMLINK`    | `0xA000001D` | `S_IFLNK`  | `u32` version 2, then the target bytes (no NUL) |
//! | `AF_UNIX`       | `0x80000023` | `S_IFSOCK` | none                                      |
//! | `LX_FIFO`       | `0x80000024` | `S_IFIFO`  | none                                      |
//! | `LX_CHR`        | `0x80000025` | `S_IFCHR`  | none (the device number is in `$LXDEV`)   |
//! | `LX_BLK`        | `0x80000026` | `S_IFBLK`  | none (likewise)                           |
//!
//! NT symbolic links (`0xA000000C`) read with their substitute name: a relative one with `\`
//! as `/` and DrvFs escapes undone; an absolute one (`\??\C:\x`, and every junction,
//! `0xA0000003`) as `/mnt/c/x`, WSL's place for drive `C:` (the guest resolves symlinks itself,
//! so such a target only dangles; nothing on the host follows it). A version 1 LX symlink keeps
//! its target in the file's data ([`Reparse::LxSymlinkInData`]). Decoding takes the bytes as
//! hostile: every length is checked.

use thiserror::Error;

use super::name;
use crate::linux::{S_IFBLK, S_IFCHR, S_IFIFO, S_IFLNK, S_IFSOCK};

/// `IO_REPARSE_TAG_LX_SYMLINK`.
pub const TAG_LX_SYMLINK: u32 = 0xA000_001D;
/// `IO_REPARSE_TAG_AF_UNIX`.
pub const TAG_AF_UNIX: u32 = 0x8000_0023;
/// `IO_REPARSE_TAG_LX_FIFO`.
pub const TAG_LX_FIFO: u32 = 0x8000_0024;
/// `IO_REPARSE_TAG_LX_CHR`.
pub const TAG_LX_CHR: u32 = 0x8000_0025;
/// `IO_REPARSE_TAG_LX_BLK`.
pub const TAG_LX_BLK: u32 = 0x8000_0026;
/// `IO_REPARSE_TAG_SYMLINK` (an NT symbolic link).
pub const TAG_SYMLINK: u32 = 0xA000_000C;
/// `IO_REPARSE_TAG_MOUNT_POINT` (a junction).
pub const TAG_MOUNT_POINT: u32 = 0xA000_0003;
/// `MAXIMUM_REPARSE_DATA_BUFFER_SIZE`.
pub const MAX_BUFFER: usize = 16 * 1024;
/// The longest symlink target (Linux `PATH_MAX` less its NUL).
pub const MAX_TARGET: usize = 4095;
/// `SYMLINK_FLAG_RELATIVE`.
const SYMLINK_FLAG_RELATIVE: u32 = 1;
const HEADER: usize = 8;

/// What a reparse point makes of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reparse {
    /// A Linux symlink to these bytes (an LX symlink, or an NT link translated).
    Symlink(Vec<u8>),
    /// A version 1 LX symlink: the target is the file's data.
    LxSymlinkInData,
    /// A FIFO, socket, character or block device (`S_IFMT` bits).
    Special(u32),
    /// A tag we do not interpret: the file reads as what its attributes say.
    Other(u32),
}

/// Why a reparse buffer could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReparseError {
    /// The buffer is shorter than its header or its lengths say.
    #[error("reparse buffer malformed")]
    Malformed,
    /// A symlink target that is empty or longer than 4095 bytes.
    #[error("symlink target of {0} bytes is empty or too long")]
    BadTarget(usize),
    /// An LX symlink of a version other than 1 or 2.
    #[error("LX symlink version {0} unknown")]
    Version(u32),
    /// An absolute NT link whose target is not on a drive letter (`\??\X:\`).
    #[error("NT link target is not on a drive letter")]
    NotOnDrive,
}

/// The tag of a special file type (`S_IFMT` bits), or `None` for other types.
pub fn tag_of_kind(kind: u32) -> Option<u32> {
    match kind {
        S_IFIFO => Some(TAG_LX_FIFO),
        S_IFSOCK => Some(TAG_AF_UNIX),
        S_IFCHR => Some(TAG_LX_CHR),
        S_IFBLK => Some(TAG_LX_BLK),
        S_IFLNK => Some(TAG_LX_SYMLINK),
        _ => None,
    }
}

/// The Linux file type (`S_IFMT` bits) of a reparse tag, or `None` for a tag that does not
/// change the type.
pub fn kind_of_tag(tag: u32) -> Option<u32> {
    match tag {
        TAG_LX_FIFO => Some(S_IFIFO),
        TAG_AF_UNIX => Some(S_IFSOCK),
        TAG_LX_CHR => Some(S_IFCHR),
        TAG_LX_BLK => Some(S_IFBLK),
        TAG_LX_SYMLINK | TAG_SYMLINK | TAG_MOUNT_POINT => Some(S_IFLNK),
        _ => None,
    }
}

fn buffer(tag: u32, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + data.len());
    out.extend_from_slice(&tag.to_le_bytes());
    // Callers bound `data` far below 64 KiB.
    out.extend_from_slice(&(data.len() as u16).to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(data);
    out
}

/// The buffer of a version 2 LX symlink to `target`.
pub fn lx_symlink(target: &[u8]) -> Result<Vec<u8>, ReparseError> {
    if target.is_empty() || target.len() > MAX_TARGET {
        return Err(ReparseError::BadTarget(target.len()));
    }
    let mut data = Vec::with_capacity(4 + target.len());
    data.extend_from_slice(&2u32.to_le_bytes());
    data.extend_from_slice(target);
    Ok(buffer(TAG_LX_SYMLINK, &data))
}

/// The buffer of a special file of type `kind` (FIFO, socket, character or block device).
pub fn special(kind: u32) -> Option<Vec<u8>> {
    match tag_of_kind(kind)? {
        TAG_LX_SYMLINK => None,
        tag => Some(buffer(tag, &[])),
    }
}

fn u16_at(b: &[u8], at: usize) -> Result<usize, ReparseError> {
    let s = b.get(at..at + 2).ok_or(ReparseError::Malformed)?;
    Ok(usize::from(u16::from_le_bytes([s[0], s[1]])))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, ReparseError> {
    let s = b.get(at..at + 4).ok_or(ReparseError::Malformed)?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn utf16(b: &[u8]) -> Result<Vec<u16>, ReparseError> {
    if b.len() % 2 != 0 {
        return Err(ReparseError::Malformed);
    }
    Ok(b.chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect())
}

/// An NT link's substitute name as a Linux symlink target.
fn nt_target(sub: &[u16], relative: bool) -> Result<Vec<u8>, ReparseError> {
    let sub = sub.strip_suffix(&[0]).unwrap_or(sub);
    if relative {
        let parts = sub
            .split(|&c| c == u16::from(b'\\'))
            .map(name::from_nt)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ReparseError::Malformed)?;
        return Ok(parts.join(&b'/'));
    }
    // `\??\X:\rest`.
    let prefix: Vec<u16> = r"\??\".encode_utf16().collect();
    let rest = sub
        .strip_prefix(prefix.as_slice())
        .ok_or(ReparseError::NotOnDrive)?;
    let (drive, rest) = match rest {
        [d, colon, tail @ ..] if *colon == u16::from(b':') => (*d, tail),
        _ => return Err(ReparseError::NotOnDrive),
    };
    let drive = u8::try_from(drive)
        .ok()
        .filter(u8::is_ascii_alphabetic)
        .ok_or(ReparseError::NotOnDrive)?;
    let mut out = b"/mnt/".to_vec();
    out.push(drive.to_ascii_lowercase());
    let rest = String::from_utf16(rest).map_err(|_| ReparseError::Malformed)?;
    out.extend(rest.replace('\\', "/").into_bytes());
    Ok(out)
}

/// Reads a whole `REPARSE_DATA_BUFFER`.
pub fn decode(buf: &[u8]) -> Result<Reparse, ReparseError> {
    if buf.len() > MAX_BUFFER {
        return Err(ReparseError::Malformed);
    }
    let tag = u32_at(buf, 0)?;
    let len = u16_at(buf, 4)?;
    let data = buf
        .get(HEADER..HEADER + len)
        .ok_or(ReparseError::Malformed)?;
    match tag {
        TAG_LX_SYMLINK => match u32_at(data, 0)? {
            2 => {
                let target = &data[4..];
                if target.is_empty() || target.len() > MAX_TARGET {
                    return Err(ReparseError::BadTarget(target.len()));
                }
                Ok(Reparse::Symlink(target.to_vec()))
            }
            1 if data.len() == 4 => Ok(Reparse::LxSymlinkInData),
            v => Err(ReparseError::Version(v)),
        },
        TAG_SYMLINK | TAG_MOUNT_POINT => {
            // SubstituteNameOffset, SubstituteNameLength, PrintNameOffset, PrintNameLength,
            // then (symlinks only) Flags, then the path buffer.
            let sub_off = u16_at(data, 0)?;
            let sub_len = u16_at(data, 2)?;
            let (flags, path_at) = if tag == TAG_SYMLINK {
                (u32_at(data, 8)?, 12)
            } else {
                (0, 8)
            };
            let path = data.get(path_at..).ok_or(ReparseError::Malformed)?;
            let sub = path
                .get(sub_off..sub_off + sub_len)
                .ok_or(ReparseError::Malformed)?;
            let target = nt_target(&utf16(sub)?, flags & SYMLINK_FLAG_RELATIVE != 0)?;
            if target.is_empty() || target.len() > MAX_TARGET {
                return Err(ReparseError::BadTarget(target.len()));
            }
            Ok(Reparse::Symlink(target))
        }
        tag => match kind_of_tag(tag) {
            Some(kind) => Ok(Reparse::Special(kind)),
            None => Ok(Reparse::Other(tag)),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// An NT symbolic link buffer as Windows writes one (print name, then substitute name).
    fn nt_link(tag: u32, target: &str, relative: bool) -> Vec<u8> {
        let t: Vec<u8> = target.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let l = t.len() as u16;
        let mut data = Vec::new();
        data.extend_from_slice(&l.to_le_bytes()); // SubstituteNameOffset
        data.extend_from_slice(&l.to_le_bytes()); // SubstituteNameLength
        data.extend_from_slice(&0u16.to_le_bytes()); // PrintNameOffset
        data.extend_from_slice(&l.to_le_bytes()); // PrintNameLength
        if tag == TAG_SYMLINK {
            data.extend_from_slice(&u32::from(relative).to_le_bytes());
        }
        data.extend_from_slice(&t);
        data.extend_from_slice(&t);
        buffer(tag, &data)
    }

    #[test]
    fn test_lx_symlink_known_answer() {
        // A link to "x", as WSL writes it.
        assert_eq!(
            lx_symlink(b"x").unwrap(),
            [0x1d, 0, 0, 0xa0, 5, 0, 0, 0, 2, 0, 0, 0, b'x']
        );
        assert_eq!(
            decode(&lx_symlink(b"../a b/c").unwrap()).unwrap(),
            Reparse::Symlink(b"../a b/c".to_vec())
        );
        assert_eq!(lx_symlink(b""), Err(ReparseError::BadTarget(0)));
        assert_eq!(
            lx_symlink(&[b'a'; 4096]),
            Err(ReparseError::BadTarget(4096))
        );
        assert!(lx_symlink(&[b'a'; 4095]).is_ok());
    }

    #[test]
    fn test_special_files_are_header_only() {
        assert_eq!(special(S_IFIFO).unwrap(), [0x24, 0, 0, 0x80, 0, 0, 0, 0]);
        assert_eq!(special(S_IFSOCK).unwrap(), [0x23, 0, 0, 0x80, 0, 0, 0, 0]);
        assert_eq!(special(S_IFCHR).unwrap(), [0x25, 0, 0, 0x80, 0, 0, 0, 0]);
        assert_eq!(special(S_IFBLK).unwrap(), [0x26, 0, 0, 0x80, 0, 0, 0, 0]);
        assert_eq!(special(S_IFLNK), None);
        for kind in [S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK] {
            assert_eq!(
                decode(&special(kind).unwrap()).unwrap(),
                Reparse::Special(kind)
            );
        }
    }

    #[test]
    fn test_version_one_and_unknown_versions() {
        let v1 = buffer(TAG_LX_SYMLINK, &1u32.to_le_bytes());
        assert_eq!(decode(&v1).unwrap(), Reparse::LxSymlinkInData);
        let v3 = buffer(TAG_LX_SYMLINK, &[3, 0, 0, 0, b'x']);
        assert_eq!(decode(&v3), Err(ReparseError::Version(3)));
    }

    #[test]
    fn test_nt_links_read_as_linux_symlinks() {
        let rel = nt_link(TAG_SYMLINK, "..\\dir\\f\u{f03a}x", true);
        assert_eq!(
            decode(&rel).unwrap(),
            Reparse::Symlink(b"../dir/f:x".to_vec())
        );
        let abs = nt_link(TAG_SYMLINK, r"\??\C:\Users\x", false);
        assert_eq!(
            decode(&abs).unwrap(),
            Reparse::Symlink(b"/mnt/c/Users/x".to_vec())
        );
        let junction = nt_link(TAG_MOUNT_POINT, "\\??\\D:\\data\0", false);
        assert_eq!(
            decode(&junction).unwrap(),
            Reparse::Symlink(b"/mnt/d/data".to_vec())
        );
        let guid = nt_link(TAG_MOUNT_POINT, r"\??\Volume{0000}\", false);
        assert_eq!(decode(&guid), Err(ReparseError::NotOnDrive));
    }

    #[test]
    fn test_other_tags_and_hostile_buffers() {
        assert_eq!(
            decode(&buffer(0x8000_001B, b"xx")).unwrap(),
            Reparse::Other(0x8000_001B)
        );
        let good = lx_symlink(b"target").unwrap();
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = good.clone();
        long[4] = 0xff;
        assert_eq!(decode(&long), Err(ReparseError::Malformed));
        let mut offs = nt_link(TAG_SYMLINK, "a", true);
        offs[8] = 0xf0; // SubstituteNameOffset far past the buffer
        assert_eq!(decode(&offs), Err(ReparseError::Malformed));
        let mut x: u32 = 0x9e37_79b9;
        for len in 0..300usize {
            let buf: Vec<u8> = (0..len)
                .map(|i| {
                    x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    if i < 4 {
                        [0x0c, 0, 0, 0xa0][i]
                    } else {
                        (x >> 24) as u8
                    }
                })
                .collect();
            let _ = decode(&buf);
        }
    }

    #[test]
    fn test_tags_and_kinds_agree() {
        for kind in [S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK, S_IFLNK] {
            assert_eq!(kind_of_tag(tag_of_kind(kind).unwrap()), Some(kind));
        }
        assert_eq!(kind_of_tag(TAG_MOUNT_POINT), Some(S_IFLNK));
        assert_eq!(kind_of_tag(0x8000_001B), None);
    }
}
