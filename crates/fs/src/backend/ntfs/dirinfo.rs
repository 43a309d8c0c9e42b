//! The buffer `NtQueryDirectoryFile(FileIdFullDirectoryInformation)` fills: a chain of
//! `FILE_ID_FULL_DIR_INFORMATION` entries. Parsed by offset (checked equal to `windows-sys`'s
//! layout in `sys/windows.rs`), with every offset and length bounded by the buffer, so it is
//! tested on every host.
//!
//! | offset | size | field                                                      |
//! |--------|------|------------------------------------------------------------|
//! | 0      | 4    | `NextEntryOffset` (0 in the last entry)                     |
//! | 56     | 4    | `FileAttributes`                                           |
//! | 60     | 4    | `FileNameLength` (bytes)                                   |
//! | 64     | 4    | `EaSize`: the reparse tag when `FILE_ATTRIBUTE_REPARSE_POINT` is set |
//! | 72     | 8    | `FileId`                                                   |
//! | 80     | n    | `FileName` (UTF-16, no NUL)                                |

use super::nt::{attributes, Listed};

/// Offset of `NextEntryOffset`.
pub const NEXT: usize = 0;
/// Offset of `FileAttributes`.
pub const ATTRIBUTES: usize = 56;
/// Offset of `FileNameLength`.
pub const NAME_LENGTH: usize = 60;
/// Offset of `EaSize`.
pub const EA_SIZE: usize = 64;
/// Offset of `FileId`.
pub const FILE_ID: usize = 72;
/// Offset of `FileName`.
pub const NAME: usize = 80;

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
}

/// The entries in `buf` (the bytes the call wrote), or `None` if the chain is malformed.
pub fn parse(buf: &[u8]) -> Option<Vec<Listed>> {
    let mut out = Vec::new();
    let mut at = 0usize;
    if buf.is_empty() {
        return Some(out);
    }
    loop {
        let e = buf.get(at..)?;
        let next = u32_at(e, NEXT)? as usize;
        let attrs = u32_at(e, ATTRIBUTES)?;
        let name_len = u32_at(e, NAME_LENGTH)? as usize;
        let ea_size = u32_at(e, EA_SIZE)?;
        let file_id = u64_at(e, FILE_ID)?;
        if name_len % 2 != 0 {
            return None;
        }
        let name = e.get(NAME..NAME.checked_add(name_len)?)?;
        out.push(Listed {
            name: name
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect(),
            file_id,
            attributes: attrs,
            reparse_tag: if attrs & attributes::REPARSE_POINT != 0 {
                ea_size
            } else {
                0
            },
        });
        if next == 0 {
            return Some(out);
        }
        if next < NAME + name_len {
            return None;
        }
        at = at.checked_add(next)?;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn entry(name: &str, id: u64, attrs: u32, ea: u32, last: bool) -> Vec<u8> {
        let n: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let len = (NAME + n.len() + 7) & !7;
        let mut e = vec![0u8; len];
        if !last {
            e[NEXT..NEXT + 4].copy_from_slice(&(len as u32).to_le_bytes());
        }
        e[ATTRIBUTES..ATTRIBUTES + 4].copy_from_slice(&attrs.to_le_bytes());
        e[NAME_LENGTH..NAME_LENGTH + 4].copy_from_slice(&(n.len() as u32).to_le_bytes());
        e[EA_SIZE..EA_SIZE + 4].copy_from_slice(&ea.to_le_bytes());
        e[FILE_ID..FILE_ID + 8].copy_from_slice(&id.to_le_bytes());
        e[NAME..NAME + n.len()].copy_from_slice(&n);
        e
    }

    #[test]
    fn test_parse_entries_and_reparse_tags() {
        let mut buf = entry(".", 5, attributes::DIRECTORY, 0, false);
        buf.extend(entry(
            "l\u{f03a}x",
            9,
            attributes::REPARSE_POINT,
            0xA000_001D,
            false,
        ));
        buf.extend(entry("plain", 10, attributes::ARCHIVE, 77, true));
        let got = parse(&buf).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[1].name, "l\u{f03a}x".encode_utf16().collect::<Vec<_>>());
        assert_eq!((got[1].file_id, got[1].reparse_tag), (9, 0xA000_001D));
        assert_eq!(
            got[2].reparse_tag, 0,
            "EaSize is a tag only for reparse points"
        );
        assert!(parse(&[]).unwrap().is_empty());
    }

    #[test]
    fn test_hostile_buffers_are_refused() {
        let mut buf = entry("a", 1, 0, 0, false);
        buf.extend(entry("b", 2, 0, 0, true));
        for cut in 1..buf.len() {
            let r = parse(&buf[..cut]);
            assert!(
                r.is_none() || r.as_ref().is_some_and(|v| v.len() == 2),
                "cut {cut}"
            );
        }
        let mut back = buf.clone();
        back[0] = 8; // the next entry inside this one
        assert!(parse(&back).is_none());
        let mut odd = buf.clone();
        odd[NAME_LENGTH] = 3;
        assert!(parse(&odd).is_none());
        let mut huge = buf;
        huge[NAME_LENGTH..NAME_LENGTH + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse(&huge).is_none());
    }
}
