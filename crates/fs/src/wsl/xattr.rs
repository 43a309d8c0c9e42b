//! Linux extended attributes as NTFS EAs, the WSL way: xattr `name` is EA `LX.` + `name`
//! (namespace kept: `user.foo` is `LX.user.foo`), whose value is the 4 bytes `lxea` and then
//! the xattr's bytes (so an empty xattr, 4 bytes, differs from a removed one, 0 bytes).
//!
//! NTFS stores EA names upper-case and compares them without case, so xattr names are too:
//! `user.Foo` and `user.foo` are one xattr, and a listing gives names in ASCII lower case (as
//! WSL lists them). Names are at most 252 bytes (an EA name is at most 255) and values at
//! most 65531 bytes (an EA value at most 65535), and one file's EAs hold 64 KiB in all.
//! Listing shows the `security.`, `trusted.` and `user.` namespaces; WSL's metadata EAs
//! (`$LX*`) and other tools' EAs are never shown.

/// The prefix of every xattr's EA name.
pub const PREFIX: &[u8] = b"LX.";
/// The header of every xattr's EA value. (OpenVMM's lxutil port writes these four bytes in the
/// opposite order, "aexl", and skips them unread; WSL writes "lxea". Reading accepts both.)
pub const HEADER: &[u8; 4] = b"lxea";
/// The longest xattr name.
pub const MAX_NAME: usize = 255 - PREFIX.len();
/// The longest xattr value.
pub const MAX_VALUE: usize = 65535 - HEADER.len();

/// The namespaces a listing shows.
const LISTED: [&[u8]; 3] = [b"SECURITY.", b"TRUSTED.", b"USER."];

/// The EA name of xattr `name`, or `None` if it is too long (`ERANGE`).
pub fn ea_name(name: &[u8]) -> Option<Vec<u8>> {
    if name.is_empty() || name.len() > MAX_NAME || name.contains(&0) {
        return None;
    }
    let mut out = PREFIX.to_vec();
    out.extend_from_slice(name);
    Some(out)
}

/// The EA value of an xattr value, or `None` if it is too long (`E2BIG`).
pub fn ea_value(value: &[u8]) -> Option<Vec<u8>> {
    if value.len() > MAX_VALUE {
        return None;
    }
    let mut out = HEADER.to_vec();
    out.extend_from_slice(value);
    Some(out)
}

/// The xattr value of an EA value; `None` for one shorter than its header (as absent).
pub fn value_of(ea_value: &[u8]) -> Option<&[u8]> {
    ea_value.get(HEADER.len()..)
}

/// The xattr name a listing shows for EA `ea_name`, or `None` if it shows none.
pub fn listed_name(ea_name: &[u8]) -> Option<Vec<u8>> {
    let upper = ea_name.to_ascii_uppercase();
    let rest = upper.strip_prefix(PREFIX.to_ascii_uppercase().as_slice())?;
    if !LISTED
        .iter()
        .any(|ns| rest.starts_with(ns) && rest.len() > ns.len())
    {
        return None;
    }
    Some(ea_name[PREFIX.len()..].to_ascii_lowercase())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::wsl::ea::{self, Ea};

    #[test]
    fn test_known_answer_user_xattr_entry() {
        // setfattr -n user.test -v foo, as WSL stores it.
        let ea = Ea::new(&ea_name(b"user.test").unwrap(), &ea_value(b"foo").unwrap());
        let chain = ea::encode(&[ea]).unwrap();
        #[rustfmt::skip]
        let want: Vec<u8> = [
            &[0, 0, 0, 0, 0, 12, 7, 0][..], b"LX.user.test\0", b"lxea", b"foo",
        ]
        .concat();
        assert_eq!(chain, want);
    }

    #[test]
    fn test_values_keep_empty_apart_from_absent() {
        assert_eq!(ea_value(b"").unwrap(), b"lxea");
        assert_eq!(value_of(b"lxea"), Some(&b""[..]));
        assert_eq!(value_of(b"aexlxyz"), Some(&b"xyz"[..]));
        assert_eq!(value_of(b"lxe"), None);
        assert!(ea_value(&vec![0; MAX_VALUE]).is_some());
        assert!(ea_value(&vec![0; MAX_VALUE + 1]).is_none());
    }

    #[test]
    fn test_names_bounded_and_listing_lowercase_of_known_namespaces() {
        assert_eq!(ea_name(b"user.a").unwrap(), b"LX.user.a");
        assert!(ea_name(&[b'a'; MAX_NAME]).is_some());
        assert!(ea_name(&[b'a'; MAX_NAME + 1]).is_none());
        assert!(ea_name(b"").is_none());
        assert_eq!(
            listed_name(b"LX.USER.MIME_TYPE").unwrap(),
            b"user.mime_type"
        );
        assert_eq!(
            listed_name(b"LX.SECURITY.SELINUX").unwrap(),
            b"security.selinux"
        );
        assert_eq!(listed_name(b"lx.trusted.x").unwrap(), b"trusted.x");
        for hidden in [
            &b"$LXUID"[..],
            b"LX.SYSTEM.X",
            b"LX.USER.",
            b"USER.X",
            b"LXUSER.X",
        ] {
            assert_eq!(
                listed_name(hidden),
                None,
                "{}",
                String::from_utf8_lossy(hidden)
            );
        }
    }
}
