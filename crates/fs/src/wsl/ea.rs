//! NTFS extended attributes as the NT calls carry them: a chain of `FILE_FULL_EA_INFORMATION`
//! entries (`NtCreateFile`'s EA buffer, `NtQueryEaFile`, `NtSetEaFile`).
//!
//! One entry, little-endian:
//!
//! | offset | size | field                                                        |
//! |--------|------|--------------------------------------------------------------|
//! | 0      | 4    | `NextEntryOffset`: bytes to the next entry, 0 in the last    |
//! | 4      | 1    | `Flags` (`FILE_NEED_EA` 0x80, which we never set)            |
//! | 5      | 1    | `EaNameLength`: the name's length, NUL not counted           |
//! | 6      | 2    | `EaValueLength`                                              |
//! | 8      | n+1  | the name (ASCII) and a NUL                                   |
//! | 9+n    | v    | the value                                                    |
//!
//! Every entry but the last is padded so the next starts 4-byte aligned. NTFS stores EA names
//! upper-cased and compares them without case. A value of length 0 in `NtSetEaFile` removes
//! that EA. The decoder takes the bytes as hostile (another tool may have written the EAs, and
//! the fake and the real calls hand back whatever is there): every offset and length is checked
//! against the buffer, and a bad chain is an error, never a panic.

use thiserror::Error;

/// `FILE_NEED_EA`: the file cannot be understood without this EA.
pub const FILE_NEED_EA: u8 = 0x80;
/// The longest EA name (`EaNameLength` is one byte).
pub const MAX_NAME: usize = 255;
/// The longest EA value (`EaValueLength` is two bytes; NTFS allows at most 64 KiB of EAs per
/// file in all).
pub const MAX_VALUE: usize = 65535;
/// The fixed part of an entry before its name.
const HEADER: usize = 8;

/// One extended attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ea {
    /// The name as stored (NTFS upper-cases it).
    pub name: Vec<u8>,
    /// The `Flags` byte.
    pub flags: u8,
    /// The value (empty in a set: remove it).
    pub value: Vec<u8>,
}

impl Ea {
    /// An EA with no flags.
    pub fn new(name: &[u8], value: &[u8]) -> Self {
        Ea {
            name: name.to_vec(),
            flags: 0,
            value: value.to_vec(),
        }
    }
}

/// Why an EA chain could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EaError {
    /// A name longer than 255 bytes, empty, or with a NUL.
    #[error("EA name of {0} bytes is empty, too long or holds a NUL")]
    BadName(usize),
    /// A value longer than 65535 bytes.
    #[error("EA value of {0} bytes is too long")]
    ValueTooLong(usize),
    /// The chain ends inside an entry, or an offset points outside it or backwards.
    #[error("EA chain malformed at byte {0}")]
    Malformed(usize),
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The size of `ea` as an entry, padding not counted.
fn entry_len(ea: &Ea) -> usize {
    HEADER + ea.name.len() + 1 + ea.value.len()
}

/// Encodes `eas` as one chain (empty for none).
pub fn encode(eas: &[Ea]) -> Result<Vec<u8>, EaError> {
    let mut out = Vec::new();
    for (i, ea) in eas.iter().enumerate() {
        if ea.name.is_empty() || ea.name.len() > MAX_NAME || ea.name.contains(&0) {
            return Err(EaError::BadName(ea.name.len()));
        }
        if ea.value.len() > MAX_VALUE {
            return Err(EaError::ValueTooLong(ea.value.len()));
        }
        let last = i + 1 == eas.len();
        let len = entry_len(ea);
        let next = if last { 0 } else { align4(len) };
        // Both lengths were bounded above.
        out.extend_from_slice(&(next as u32).to_le_bytes());
        out.push(ea.flags);
        out.push(ea.name.len() as u8);
        out.extend_from_slice(&(ea.value.len() as u16).to_le_bytes());
        out.extend_from_slice(&ea.name);
        out.push(0);
        out.extend_from_slice(&ea.value);
        if !last {
            out.resize(out.len() + (next - len), 0);
        }
    }
    Ok(out)
}

/// Decodes a chain (an empty buffer is no EAs).
pub fn decode(buf: &[u8]) -> Result<Vec<Ea>, EaError> {
    let mut eas = Vec::new();
    let mut at = 0usize;
    if buf.is_empty() {
        return Ok(eas);
    }
    loop {
        let entry = buf.get(at..).ok_or(EaError::Malformed(at))?;
        let head = entry.get(..HEADER).ok_or(EaError::Malformed(at))?;
        let next = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let flags = head[4];
        let name_len = usize::from(head[5]);
        let value_len = usize::from(u16::from_le_bytes([head[6], head[7]]));
        let name = entry
            .get(HEADER..HEADER + name_len)
            .ok_or(EaError::Malformed(at))?;
        if entry.get(HEADER + name_len) != Some(&0) || name.contains(&0) {
            return Err(EaError::Malformed(at));
        }
        let value_at = HEADER + name_len + 1;
        let value = entry
            .get(value_at..value_at + value_len)
            .ok_or(EaError::Malformed(at))?;
        eas.push(Ea {
            name: name.to_vec(),
            flags,
            value: value.to_vec(),
        });
        if next == 0 {
            return Ok(eas);
        }
        // The next entry starts after this one's bytes and moves forward.
        if next < value_at + value_len {
            return Err(EaError::Malformed(at));
        }
        at = at.checked_add(next).ok_or(EaError::Malformed(at))?;
    }
}

/// Whether two EA names are the same to NTFS (ASCII case-insensitive).
pub fn same_name(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_known_answer_two_entries_aligned() {
        // $LXUID = 1000 then $LXGID = 1000, as WSL writes them at creation.
        let eas = [
            Ea::new(b"$LXUID", &1000u32.to_le_bytes()),
            Ea::new(b"$LXGID", &1000u32.to_le_bytes()),
        ];
        let bytes = encode(&eas).unwrap();
        #[rustfmt::skip]
        let want: Vec<u8> = [
            &[20, 0, 0, 0, 0, 6, 4, 0][..], b"$LXUID\0", &[0xe8, 0x03, 0, 0], &[0],
            &[0, 0, 0, 0, 0, 6, 4, 0][..], b"$LXGID\0", &[0xe8, 0x03, 0, 0],
        ]
        .concat();
        assert_eq!(bytes, want);
        assert_eq!(decode(&bytes).unwrap(), eas);
    }

    #[test]
    fn test_roundtrip_flags_empty_values_and_long_names() {
        let long = vec![b'N'; MAX_NAME];
        let eas = vec![
            Ea {
                name: b"A".to_vec(),
                flags: FILE_NEED_EA,
                value: vec![],
            },
            Ea::new(&long, &[1, 2, 3]),
            Ea::new(b"LX.USER.X", &vec![7; 1000]),
        ];
        let bytes = encode(&eas).unwrap();
        assert_eq!(decode(&bytes).unwrap(), eas);
        assert!(decode(&[]).unwrap().is_empty());
        assert!(encode(&[]).unwrap().is_empty());
    }

    #[test]
    fn test_encode_refuses_bad_names_and_values() {
        assert_eq!(encode(&[Ea::new(b"", b"")]), Err(EaError::BadName(0)));
        assert_eq!(encode(&[Ea::new(b"A\0B", b"")]), Err(EaError::BadName(3)));
        assert_eq!(
            encode(&[Ea::new(&[b'N'; 256], b"")]),
            Err(EaError::BadName(256))
        );
        assert_eq!(
            encode(&[Ea::new(b"A", &vec![0; 65536])]),
            Err(EaError::ValueTooLong(65536))
        );
    }

    #[test]
    fn test_decode_hostile_chains_are_errors() {
        let good = encode(&[Ea::new(b"AB", b"xy"), Ea::new(b"CD", b"z")]).unwrap();
        // Every truncation of a valid chain fails cleanly.
        for cut in 1..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        // A next offset pointing backwards (into its own entry) or past the end.
        let mut back = good.clone();
        back[0] = 4;
        assert_eq!(decode(&back), Err(EaError::Malformed(0)));
        let mut far = good.clone();
        far[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&far).is_err());
        // A name without its NUL, a value running past the end.
        let mut nonul = good.clone();
        nonul[HEADER + 2] = b'!';
        assert_eq!(decode(&nonul), Err(EaError::Malformed(0)));
        let mut long_value = good;
        long_value[6] = 0xff;
        assert!(decode(&long_value).is_err());
    }

    #[test]
    fn test_decode_never_panics_on_random_bytes() {
        let mut x: u32 = 0x1234_5678;
        for len in 0..200usize {
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    (x % 23) as u8
                })
                .collect();
            let _ = decode(&buf);
        }
    }

    #[test]
    fn test_same_name_ignores_ascii_case() {
        assert!(same_name(b"$LXUID", b"$lxuid"));
        assert!(!same_name(b"$LXUID", b"$LXGID"));
    }
}
