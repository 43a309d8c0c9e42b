//! Names: a guest name component (bytes) to the UTF-16 name NTFS stores, and back, with
//! WSL's DrvFs escaping.
//!
//! - A guest name must be UTF-8 (`EINVAL` otherwise: NTFS names are UTF-16).
//! - The characters NTFS cannot hold in a name — `0x01..=0x1F`, `"`, `*`, `:`, `<`, `>`, `?`,
//!   `\`, `|` — are stored as the private-use code point U+F000 + the byte, so `a:b` names a
//!   file and never opens alternate data stream `b` of `a`. Trailing dots and spaces need
//!   nothing: NT-relative opens take them as they are.
//! - Reading back, U+F000 + one of those bytes becomes the byte again; other U+F0xx stay. As in
//!   WSL, a guest name that itself holds U+F03A is stored unchanged and reads back as `:`.
//! - DOS device names (`CON`, `PRN`, `AUX`, `NUL`, `COM0`-`COM9`, `LPT0`-`LPT9`, `CONIN$`,
//!   `CONOUT$`, in any case, with any extension or trailing spaces) are refused for new names
//!   ([`is_dos_device`]): NTFS stores them, but Windows programs on the host cannot open them.
//! - A name NTFS returns that is not valid UTF-16 (an unpaired surrogate) has no UTF-8 form;
//!   [`from_nt`] reports it so a listing can leave it out.

use thiserror::Error;

/// The first code point of the escape range.
const ESCAPE_BASE: u32 = 0xF000;

/// Why a name cannot cross between the guest and NTFS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum NameError {
    /// The guest's name is not UTF-8.
    #[error("name is not UTF-8")]
    NotUtf8,
    /// NTFS's name is not valid UTF-16.
    #[error("host name is not valid UTF-16")]
    NotUtf16,
}

/// Whether byte `b` is stored escaped.
fn escaped(b: u32) -> bool {
    matches!(b, 0x01..=0x1F)
        || matches!(
            char::from_u32(b),
            Some('"' | '*' | ':' | '<' | '>' | '?' | '\\' | '|')
        )
}

/// The NTFS name of guest name `name` (one component: the caller has refused `/`, NUL, `.`,
/// `..` and lengths past `NAME_MAX`).
pub fn to_nt(name: &[u8]) -> Result<Vec<u16>, NameError> {
    let s = std::str::from_utf8(name).map_err(|_| NameError::NotUtf8)?;
    let mut out = Vec::with_capacity(s.len());
    for c in s.chars() {
        let c = if escaped(u32::from(c)) {
            char::from_u32(ESCAPE_BASE + u32::from(c)).unwrap_or(c)
        } else {
            c
        };
        let mut buf = [0u16; 2];
        out.extend_from_slice(c.encode_utf16(&mut buf));
    }
    Ok(out)
}

/// The guest name of NTFS name `name`.
pub fn from_nt(name: &[u16]) -> Result<Vec<u8>, NameError> {
    let mut out = Vec::with_capacity(name.len());
    for c in char::decode_utf16(name.iter().copied()) {
        let c = c.map_err(|_| NameError::NotUtf16)?;
        let cp = u32::from(c);
        if (ESCAPE_BASE..ESCAPE_BASE + 0x100).contains(&cp) && escaped(cp - ESCAPE_BASE) {
            // An escaped ASCII byte.
            out.push((cp - ESCAPE_BASE) as u8);
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    Ok(out)
}

/// Whether guest name `name` is one Windows reserves for a device.
pub fn is_dos_device(name: &[u8]) -> bool {
    let base = name
        .split(|&b| b == b'.' || b == b':')
        .next()
        .unwrap_or(name);
    let mut end = base.len();
    while end > 0 && base[end - 1] == b' ' {
        end -= 1;
    }
    let base = &base[..end];
    let upper = base.to_ascii_uppercase();
    match upper.as_slice() {
        b"CON" | b"PRN" | b"AUX" | b"NUL" | b"CONIN$" | b"CONOUT$" => true,
        [b'C', b'O', b'M', d] | [b'L', b'P', b'T', d] => d.is_ascii_digit(),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn nt(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn test_known_answers_as_drvfs_escapes() {
        assert_eq!(to_nt(b"foo:bar").unwrap(), nt("foo\u{f03a}bar"));
        assert_eq!(
            to_nt(b"a\\b*c?d\"e<f>g|h\x01").unwrap(),
            nt("a\u{f05c}b\u{f02a}c\u{f03f}d\u{f022}e\u{f03c}f\u{f03e}g\u{f07c}h\u{f001}")
        );
        // Not escaped: space, dots (trailing ones too), DEL, and everything non-ASCII.
        assert_eq!(
            to_nt("a b. ..\x7fé€😀".as_bytes()).unwrap(),
            nt("a b. ..\x7fé€😀")
        );
    }

    #[test]
    fn test_roundtrip_of_every_ascii_byte_and_non_ascii() {
        for b in 1u8..0x80 {
            if b == b'/' {
                continue;
            }
            let name = [b'x', b, b'y'];
            assert_eq!(
                from_nt(&to_nt(&name).unwrap()).unwrap(),
                name,
                "byte {b:#x}"
            );
        }
        let s = "ünïcødé 名前 😀".as_bytes();
        assert_eq!(from_nt(&to_nt(s).unwrap()).unwrap(), s);
    }

    #[test]
    fn test_private_use_outside_the_set_stays_and_inside_reads_as_the_byte() {
        // U+F041 would be 'A', which is never escaped: it stays U+F041.
        assert_eq!(from_nt(&nt("\u{f041}")).unwrap(), "\u{f041}".as_bytes());
        // The guest's own U+F03A is stored as it is and reads back as ':' (as in WSL).
        assert_eq!(to_nt("\u{f03a}".as_bytes()).unwrap(), nt("\u{f03a}"));
        assert_eq!(from_nt(&nt("\u{f03a}")).unwrap(), b":");
    }

    #[test]
    fn test_non_utf8_and_non_utf16_names_are_errors() {
        assert_eq!(to_nt(b"\xff\xfe"), Err(NameError::NotUtf8));
        assert_eq!(from_nt(&[0xd800, 0x41]), Err(NameError::NotUtf16));
    }

    #[test]
    fn test_dos_device_names() {
        for n in [
            "CON",
            "con",
            "Nul.txt",
            "aux.tar.gz",
            "COM1",
            "lpt9.log",
            "PRN ",
            "CONIN$",
            "con:x",
        ] {
            assert!(is_dos_device(n.as_bytes()), "{n}");
        }
        for n in [
            "CONSOLE", "xcon", "COM", "COM10", "LPTX", "nul_", ".con", "c o n",
        ] {
            assert!(!is_dos_device(n.as_bytes()), "{n}");
        }
    }
}
