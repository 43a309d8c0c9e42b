//! The guest metadata WSL keeps per file, one codec for both hosts: on Linux the mapped
//! backend's `user.LXUID`, `user.LXGID`, `user.LXMOD` and `user.LXDEV` xattrs, on NTFS the EAs
//! `$LXUID`, `$LXGID`, `$LXMOD` and `$LXDEV` that WSL writes (and NTFS parses itself for
//! `FileStatLxInformation`). The values are byte-identical:
//!
//! | name    | value                                                                   |
//! |---------|-------------------------------------------------------------------------|
//! | `LXUID` | `u32` little-endian: `st_uid`                                           |
//! | `LXGID` | `u32` little-endian: `st_gid`                                           |
//! | `LXMOD` | `u32` little-endian: `st_mode`, file type (`S_IFMT`) included           |
//! | `LXDEV` | two `u32` little-endian, major then minor: `st_rdev` of a device        |
//!
//! A value of another length is ignored, as if absent.

use super::ea::{self, Ea};
use crate::backend::dtype;
use crate::linux::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK};

/// The NTFS EA holding `st_uid`.
pub const EA_UID: &[u8] = b"$LXUID";
/// The NTFS EA holding `st_gid`.
pub const EA_GID: &[u8] = b"$LXGID";
/// The NTFS EA holding `st_mode`.
pub const EA_MODE: &[u8] = b"$LXMOD";
/// The NTFS EA holding a device's major and minor.
pub const EA_DEV: &[u8] = b"$LXDEV";

/// The guest metadata of one file; `None` fields fall back to what the host says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Meta {
    /// `LXUID`.
    pub uid: Option<u32>,
    /// `LXGID`.
    pub gid: Option<u32>,
    /// `LXMOD` (`S_IFMT | 0o7777`).
    pub mode: Option<u32>,
    /// `LXDEV` (major, minor).
    pub dev: Option<(u32, u32)>,
}

impl Meta {
    /// The EAs that carry the `Some` fields, in the order WSL writes them (`$LXMOD` after the
    /// owner, so a reader never sees a type without its owner).
    pub fn to_eas(&self) -> Vec<Ea> {
        let mut out = Vec::new();
        if let Some(uid) = self.uid {
            out.push(Ea::new(EA_UID, &uid.to_le_bytes()));
        }
        if let Some(gid) = self.gid {
            out.push(Ea::new(EA_GID, &gid.to_le_bytes()));
        }
        if let Some((major, minor)) = self.dev {
            out.push(Ea::new(EA_DEV, &encode_dev(major, minor)));
        }
        if let Some(mode) = self.mode {
            out.push(Ea::new(EA_MODE, &mode.to_le_bytes()));
        }
        out
    }

    /// The metadata among `eas` (names compared as NTFS does, without case). `LXDEV` counts
    /// only when `LXMOD` says character or block device.
    pub fn from_eas(eas: &[Ea]) -> Meta {
        let find = |name: &[u8]| {
            eas.iter()
                .find(|e| ea::same_name(&e.name, name))
                .map(|e| e.value.as_slice())
        };
        let mode = find(EA_MODE).and_then(decode_u32);
        let kind = mode.map(|m| m & S_IFMT);
        Meta {
            uid: find(EA_UID).and_then(decode_u32),
            gid: find(EA_GID).and_then(decode_u32),
            mode,
            dev: if kind == Some(S_IFCHR) || kind == Some(S_IFBLK) {
                find(EA_DEV).and_then(decode_dev)
            } else {
                None
            },
        }
    }
}

/// The Linux (glibc `makedev`) device number of a major and minor.
pub fn makedev(major: u32, minor: u32) -> u64 {
    let (major, minor) = (u64::from(major), u64::from(minor));
    ((major & 0x0000_0fff) << 8)
        | ((major & 0xffff_f000) << 32)
        | (minor & 0x0000_00ff)
        | ((minor & 0xffff_ff00) << 12)
}

/// The major and minor of a Linux (glibc `makedev`) device number.
pub fn split_dev(dev: u64) -> (u32, u32) {
    let major = ((dev >> 8) & 0x0000_0fff) | ((dev >> 32) & 0xffff_f000);
    let minor = (dev & 0x0000_00ff) | ((dev >> 12) & 0xffff_ff00);
    // Both are masked to 32 bits above.
    (major as u32, minor as u32)
}

/// The `LXDEV` value of a device number.
pub fn encode_dev(major: u32, minor: u32) -> [u8; 8] {
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&major.to_le_bytes());
    out[4..].copy_from_slice(&minor.to_le_bytes());
    out
}

/// An `LXUID`, `LXGID` or `LXMOD` value; `None` when it is not 4 bytes.
pub fn decode_u32(raw: &[u8]) -> Option<u32> {
    let value = <[u8; 4]>::try_from(raw).ok().map(u32::from_le_bytes);
    if value.is_none() {
        tracing::debug!(len = raw.len(), "malformed LX metadata value ignored");
    }
    value
}

/// An `LXDEV` value; `None` when it is not 8 bytes.
pub fn decode_dev(raw: &[u8]) -> Option<(u32, u32)> {
    let Ok(b) = <[u8; 8]>::try_from(raw) else {
        tracing::debug!(len = raw.len(), "malformed LXDEV ignored");
        return None;
    };
    Some((
        u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
    ))
}

/// The guest's `st_mode` from the host's and an `LXMOD`. A host directory is always a
/// directory and a host regular file never is one (an `LXMOD` that says otherwise keeps only
/// its permission bits); other host types (symlinks, special files) keep the host's mode.
pub fn guest_mode(host_mode: u32, lxmod: Option<u32>) -> u32 {
    let Some(lx) = lxmod else {
        return host_mode;
    };
    let kind = match host_mode & S_IFMT {
        S_IFREG => match lx & S_IFMT {
            k @ (S_IFREG | S_IFLNK | S_IFIFO | S_IFSOCK | S_IFCHR | S_IFBLK) => k,
            _ => S_IFREG,
        },
        S_IFDIR => S_IFDIR,
        _ => return host_mode,
    };
    kind | (lx & 0o7777)
}

/// The `d_type` of a file type (`S_IFMT` bits).
pub fn dtype_of(kind: u32) -> u8 {
    match kind {
        S_IFREG => dtype::REG,
        S_IFDIR => dtype::DIR,
        S_IFLNK => dtype::LNK,
        S_IFIFO => dtype::FIFO,
        S_IFSOCK => dtype::SOCK,
        S_IFCHR => dtype::CHR,
        S_IFBLK => dtype::BLK,
        _ => dtype::UNKNOWN,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_makedev_roundtrip() {
        for (major, minor) in [
            (0, 0),
            (1, 3),
            (8, 17),
            (4095, 255),
            (4096, 256),
            (u32::MAX, 1),
        ] {
            assert_eq!(split_dev(makedev(major, minor)), (major, minor));
        }
        // /dev/null and /dev/sda1 as Linux numbers them.
        assert_eq!(makedev(1, 3), 0x103);
        assert_eq!(makedev(8, 1), 0x801);
        assert_eq!(makedev(0x1234, 0x56789), 0x0000_1000_5672_3489);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn test_makedev_matches_libc() {
        for (major, minor) in [(1, 3), (4096, 256), (u32::MAX, u32::MAX)] {
            assert_eq!(makedev(major, minor), libc::makedev(major, minor) as u64);
        }
    }

    #[test]
    fn test_values_known_answers() {
        assert_eq!(encode_dev(0x0102, 0x0304), [2, 1, 0, 0, 4, 3, 0, 0]);
        assert_eq!(decode_dev(&encode_dev(7, 9)), Some((7, 9)));
        assert_eq!(decode_dev(&[1, 2, 3]), None);
        assert_eq!(decode_u32(&[0xe8, 3, 0, 0]), Some(1000));
        assert_eq!(decode_u32(&[0xe8, 3, 0]), None);
    }

    #[test]
    fn test_eas_roundtrip_in_wsl_order_and_case_insensitive() {
        let meta = Meta {
            uid: Some(1000),
            gid: Some(100),
            mode: Some(S_IFCHR | 0o620),
            dev: Some((4, 1)),
        };
        let eas = meta.to_eas();
        let names: Vec<&[u8]> = eas.iter().map(|e| e.name.as_slice()).collect();
        assert_eq!(names, [EA_UID, EA_GID, EA_DEV, EA_MODE]);
        assert_eq!(Meta::from_eas(&eas), meta);
        // The chain WSL would store for a chardev 4:1 owned by 1000:100, mode 0620.
        let chain = ea::encode(&eas).unwrap();
        assert_eq!(Meta::from_eas(&ea::decode(&chain).unwrap()), meta);
        // Names as NTFS hands them back (upper case, but compare without case anyway).
        let lower: Vec<Ea> = eas
            .iter()
            .map(|e| Ea::new(&e.name.to_ascii_lowercase(), &e.value))
            .collect();
        assert_eq!(Meta::from_eas(&lower), meta);
    }

    #[test]
    fn test_dev_only_for_devices_and_bad_lengths_ignored() {
        let eas = vec![
            Ea::new(EA_MODE, &(S_IFREG | 0o644).to_le_bytes()),
            Ea::new(EA_DEV, &encode_dev(1, 2)),
            Ea::new(EA_UID, &[1, 2]),
        ];
        let meta = Meta::from_eas(&eas);
        assert_eq!(meta.dev, None);
        assert_eq!(meta.uid, None);
        assert_eq!(meta.mode, Some(S_IFREG | 0o644));
        assert_eq!(Meta::from_eas(&[]), Meta::default());
        assert!(Meta::default().to_eas().is_empty());
    }

    #[test]
    fn test_guest_mode_type_rules() {
        let reg = S_IFREG | 0o600;
        let dir = S_IFDIR | 0o700;
        assert_eq!(guest_mode(reg, None), reg);
        assert_eq!(guest_mode(reg, Some(S_IFIFO | 0o644)), S_IFIFO | 0o644);
        assert_eq!(guest_mode(reg, Some(S_IFDIR | 0o755)), S_IFREG | 0o755);
        assert_eq!(guest_mode(reg, Some(0o4755)), S_IFREG | 0o4755);
        assert_eq!(guest_mode(dir, Some(S_IFREG | 0o1777)), S_IFDIR | 0o1777);
        let lnk = S_IFLNK | 0o777;
        assert_eq!(guest_mode(lnk, Some(S_IFREG | 0o600)), lnk);
        assert_eq!(dtype_of(S_IFSOCK), dtype::SOCK);
        assert_eq!(dtype_of(0), dtype::UNKNOWN);
    }
}
