//! What a VM is made of ([`VmConfig`]) and the parsing of its command-line values.

use std::collections::HashSet;
use std::io;
use std::path::PathBuf;
use std::str::FromStr;

/// The most vCPUs a VM may have (the MP table's room below 640 KiB bounds it).
pub const MAX_VCPUS: u32 = 32;

/// Where the serial console's output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Console {
    /// The VMM's standard output.
    Stdout,
    /// A file, created or truncated.
    File(PathBuf),
    /// Nowhere: the UART exists but its output is discarded.
    Off,
}

impl FromStr for Console {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "stdout" | "-" => Console::Stdout,
            "off" | "none" => Console::Off,
            path => Console::File(PathBuf::from(path)),
        })
    }
}

/// Everything needed to boot one VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmConfig {
    /// The guest kernel: an uncompressed `vmlinux` with a PVH note, or a bzImage.
    pub kernel: PathBuf,
    /// The initramfs, if any.
    pub initrd: Option<PathBuf>,
    /// The user's part of the kernel command line.
    pub cmdline: String,
    /// Guest RAM in bytes.
    pub memory: u64,
    /// Number of vCPUs.
    pub vcpus: u32,
    /// Serial console output.
    pub console: Console,
    /// The hybrid-vsock socket: with it the VM gets a virtio-vsock device whose host side
    /// listens here (`CONNECT <port>` for host-initiated connections, `PATH_<port>` for the
    /// guest's).
    pub vsock: Option<PathBuf>,
    /// Host directories served to the guest, each by its own virtio-9p or virtio-fs device.
    pub shares: Vec<ShareConfig>,
    /// Disk images served to the guest, each by its own virtio-blk device (`/dev/vda`, ...
    /// in this order).
    pub disks: Vec<DiskConfig>,
}

/// One disk image served to the guest (`--disk PATH[,ro]`): raw, VHD or VHDX, found by its
/// contents (`lcow_disk::detect`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskConfig {
    /// The image file.
    pub path: PathBuf,
    /// The guest cannot write it.
    pub read_only: bool,
}

/// Errors of parsing a disk.
#[derive(Debug, thiserror::Error)]
pub enum DiskArgError {
    /// An option other than `ro` or `rw`.
    #[error("unknown option '{option}' in disk '{disk}' (expected PATH[,ro|rw])")]
    UnknownOption {
        /// The whole argument.
        disk: String,
        /// The option.
        option: String,
    },
    /// The path is not a readable regular file.
    #[error("cannot use disk image {path}")]
    Path {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl FromStr for DiskConfig {
    type Err = DiskArgError;

    /// Parses `PATH[,ro|rw]` and checks that PATH is a regular file. PATH cannot hold a comma.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut parts = text.split(',');
        let path = PathBuf::from(parts.next().unwrap_or_default());
        let mut read_only = false;
        for option in parts {
            match option {
                "ro" => read_only = true,
                "rw" => read_only = false,
                _ => {
                    return Err(DiskArgError::UnknownOption {
                        disk: text.to_owned(),
                        option: option.to_owned(),
                    })
                }
            }
        }
        Self::checked(path, read_only)
    }
}

impl DiskConfig {
    /// A disk of `path`, which must be a regular file.
    pub fn checked(path: PathBuf, read_only: bool) -> Result<Self, DiskArgError> {
        let path_error = |source| DiskArgError::Path {
            path: path.display().to_string(),
            source,
        };
        let meta = std::fs::metadata(&path).map_err(path_error)?;
        if !meta.is_file() {
            return Err(path_error(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file",
            )));
        }
        Ok(DiskConfig { path, read_only })
    }
}

impl TryFrom<lcow_protocol::vm::DiskSpec> for DiskConfig {
    type Error = DiskArgError;

    /// A launch file's disk, checked as `--disk` is.
    fn try_from(spec: lcow_protocol::vm::DiskSpec) -> Result<Self, Self::Error> {
        Self::checked(spec.path, spec.read_only)
    }
}

pub use lcow_protocol::share::{ShareProtocol, MAX_9P_TAG_LEN, MAX_VIRTIOFS_TAG_LEN};
pub use lcow_protocol::vm::ShareBackend;

/// One host directory served to the guest (`--share TAG=PATH[,ro][,backend=..][,proto=..]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareConfig {
    /// The tag the guest mounts it by.
    pub tag: String,
    /// The host directory.
    pub path: PathBuf,
    /// Refuse every change with `EROFS`.
    pub read_only: bool,
    /// How files are stored on the host.
    pub backend: ShareBackend,
    /// Which device serves it.
    pub protocol: ShareProtocol,
}

/// Errors of parsing or checking a share.
#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    /// Not `TAG=PATH` followed by options.
    #[error(
        "invalid share '{0}': expected TAG=PATH[,ro][,backend=passthrough|mapped][,proto=9p|virtiofs]"
    )]
    Syntax(String),
    /// The tag is empty.
    #[error("invalid share '{0}': the tag is empty")]
    EmptyTag(String),
    /// The tag holds a NUL byte.
    #[error("invalid share tag {0:?}: it holds a NUL byte")]
    TagHasNul(String),
    /// The tag is longer than the protocol allows.
    #[error("invalid share tag '{tag}': {len} bytes, but {protocol} tags are at most {max} bytes")]
    TagTooLong {
        /// The tag.
        tag: String,
        /// Its length.
        len: usize,
        /// The protocol's limit.
        max: usize,
        /// The protocol.
        protocol: &'static str,
    },
    /// An option is not known.
    #[error("invalid share option '{option}' in '{share}': expected ro, rw, backend=passthrough|mapped or proto=9p|virtiofs")]
    UnknownOption {
        /// The whole share argument.
        share: String,
        /// The option.
        option: String,
    },
    /// An option is given twice.
    #[error("share option '{option}' given twice in '{share}'")]
    RepeatedOption {
        /// The whole share argument.
        share: String,
        /// The option's name.
        option: String,
    },
    /// The share path cannot be inspected (missing, no permission).
    #[error("cannot use share path {}", path.display())]
    Path {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The share path is not a directory.
    #[error("share path {} is not a directory", path.display())]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// Two shares have the same tag.
    #[error("share tag '{0}' is used twice; every share needs its own tag")]
    DuplicateTag(String),
}

impl FromStr for ShareConfig {
    type Err = ShareError;

    /// Parses `TAG=PATH[,ro|rw][,backend=passthrough|mapped][,proto=9p|virtiofs]` and checks
    /// that the tag suits the protocol and that PATH is a directory. PATH cannot hold a comma.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (tag, rest) = text
            .split_once('=')
            .ok_or_else(|| ShareError::Syntax(text.to_owned()))?;
        let mut parts = rest.split(',');
        let path = parts.next().unwrap_or_default();
        if path.is_empty() {
            return Err(ShareError::Syntax(text.to_owned()));
        }
        if tag.is_empty() {
            return Err(ShareError::EmptyTag(text.to_owned()));
        }
        let mut seen = HashSet::new();
        let mut share = ShareConfig {
            tag: tag.to_owned(),
            path: PathBuf::from(path),
            read_only: false,
            backend: ShareBackend::default(),
            protocol: ShareProtocol::default(),
        };
        for option in parts {
            let unknown = || ShareError::UnknownOption {
                share: text.to_owned(),
                option: option.to_owned(),
            };
            let (key, value) = option.split_once('=').unwrap_or((option, ""));
            let key = if key == "rw" { "ro" } else { key };
            if !seen.insert(key.to_owned()) {
                return Err(ShareError::RepeatedOption {
                    share: text.to_owned(),
                    option: key.to_owned(),
                });
            }
            match (key, value) {
                ("ro", "") => share.read_only = option == "ro",
                ("backend", "passthrough") => share.backend = ShareBackend::Passthrough,
                ("backend", "mapped") => share.backend = ShareBackend::Mapped,
                ("proto", "9p") => share.protocol = ShareProtocol::P9,
                ("proto", "virtiofs" | "virtio-fs") => share.protocol = ShareProtocol::VirtioFs,
                _ => return Err(unknown()),
            }
        }
        share.checked()
    }
}

impl ShareConfig {
    /// The share, once its tag suits its protocol and its path is a directory.
    fn checked(self) -> Result<Self, ShareError> {
        let share = self;
        let max = share.protocol.max_tag_len();
        if share.tag.contains('\0') {
            return Err(ShareError::TagHasNul(share.tag));
        }
        if share.tag.len() > max {
            return Err(ShareError::TagTooLong {
                len: share.tag.len(),
                tag: share.tag,
                max,
                protocol: share.protocol.name(),
            });
        }
        let meta = std::fs::metadata(&share.path).map_err(|source| ShareError::Path {
            path: share.path.clone(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(ShareError::NotADirectory { path: share.path });
        }
        Ok(share)
    }
}

impl TryFrom<lcow_protocol::vm::ShareSpec> for ShareConfig {
    type Error = ShareError;

    /// A share of a launch file, checked as `--share` is.
    fn try_from(s: lcow_protocol::vm::ShareSpec) -> Result<Self, Self::Error> {
        if s.tag.is_empty() {
            return Err(ShareError::EmptyTag(format!(
                "{}={}",
                s.tag,
                s.path.display()
            )));
        }
        ShareConfig {
            tag: s.tag,
            path: s.path,
            read_only: s.read_only,
            backend: s.backend,
            protocol: s.protocol,
        }
        .checked()
    }
}

/// Checks what no single share can: every tag is used once.
pub fn check_shares(shares: &[ShareConfig]) -> Result<(), ShareError> {
    let mut tags = HashSet::new();
    for share in shares {
        if !tags.insert(share.tag.as_str()) {
            return Err(ShareError::DuplicateTag(share.tag.clone()));
        }
    }
    Ok(())
}

/// Errors of parsing a size.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SizeError {
    /// Not a number with an optional unit.
    #[error("invalid size '{0}': expected a number with an optional K, M or G suffix (e.g. 256M)")]
    Syntax(String),
    /// The size does not fit 64 bits.
    #[error("size '{0}' is too large")]
    Overflow(String),
}

/// Parses a size: a decimal number with an optional suffix `K`, `M`, `G` or `T` (binary units,
/// case-insensitive, optionally followed by `iB` or `B`); a bare number is in MiB, so
/// `--memory 256` means 256 MiB.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let s = text.trim();
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(digits_end);
    if digits.is_empty() {
        return Err(SizeError::Syntax(text.to_owned()));
    }
    let unit = unit.to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b').filter(|u| !u.is_empty()))
        .unwrap_or(&unit);
    let shift = match unit {
        "" | "m" => 20,
        "k" => 10,
        "g" => 30,
        "t" => 40,
        _ => return Err(SizeError::Syntax(text.to_owned())),
    };
    let value: u64 = digits
        .parse()
        .map_err(|_| SizeError::Overflow(text.to_owned()))?;
    value
        .checked_mul(1 << shift)
        .ok_or_else(|| SizeError::Overflow(text.to_owned()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_size_suffixes_binary_units() {
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("64MB"), Ok(64 << 20));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
    }

    #[test]
    fn test_parse_size_bare_number_mib() {
        assert_eq!(parse_size("256"), Ok(256 << 20));
        assert_eq!(parse_size(" 128 "), Ok(128 << 20));
    }

    #[test]
    fn test_parse_size_garbage_rejected() {
        for bad in ["", "M", "12X", "1.5G", "-1M", "0x100", "1 G", "B"] {
            assert!(
                matches!(parse_size(bad), Err(SizeError::Syntax(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn test_parse_size_overflow_rejected() {
        assert!(matches!(
            parse_size("99999999999999999999"),
            Err(SizeError::Overflow(_))
        ));
        assert!(matches!(
            parse_size("20000000T"),
            Err(SizeError::Overflow(_))
        ));
    }

    fn share(text: &str) -> Result<ShareConfig, ShareError> {
        text.parse()
    }

    #[test]
    fn test_share_defaults_virtiofs_passthrough_read_write() {
        let dir = tempfile::tempdir().unwrap();

        let got = share(&format!("data={}", dir.path().display())).unwrap();

        assert_eq!(
            got,
            ShareConfig {
                tag: "data".into(),
                path: dir.path().to_path_buf(),
                read_only: false,
                backend: ShareBackend::Passthrough,
                protocol: ShareProtocol::VirtioFs,
            }
        );
    }

    #[test]
    fn test_share_options_parsed_in_any_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().display();

        let a = share(&format!("a={path},ro,backend=mapped,proto=virtiofs")).unwrap();
        let b = share(&format!("b={path},proto=9p,rw,backend=passthrough")).unwrap();

        assert!(a.read_only);
        assert_eq!(
            (a.backend, a.protocol),
            (ShareBackend::Mapped, ShareProtocol::VirtioFs)
        );
        assert!(!b.read_only);
        assert_eq!(
            (b.backend, b.protocol),
            (ShareBackend::Passthrough, ShareProtocol::P9)
        );
    }

    #[test]
    fn test_share_syntax_errors_name_bad_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().display();
        let cases = [
            ("nopath".to_owned(), "expected TAG=PATH"),
            ("t=".to_owned(), "expected TAG=PATH"),
            (format!("={path}"), "the tag is empty"),
            (format!("t={path},backend=zfs"), "option 'backend=zfs'"),
            (format!("t={path},proto=nfs"), "option 'proto=nfs'"),
            (format!("t={path},rx"), "option 'rx'"),
            (format!("t={path},ro=1"), "option 'ro=1'"),
            (format!("t={path},ro,rw"), "'ro' given twice"),
            (format!("t={path},proto=9p,proto=9p"), "'proto' given twice"),
        ];

        for (text, expected) in cases {
            let err = share(&text).unwrap_err().to_string();

            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn test_share_tag_length_limited_by_protocol() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().display();
        let t36 = "t".repeat(36);
        let t37 = "t".repeat(37);

        let fs36 = share(&format!("{t36}={path},proto=virtiofs"));
        let fs37 = share(&format!("{t37}={path},proto=virtiofs"));
        let p9_37 = share(&format!("{t37}={path},proto=9p"));
        let p9_256 = share(&format!("{}={path},proto=9p", "t".repeat(256)));
        let nul = share(&format!("a\0b={path}"));

        assert!(fs36.is_ok());
        let err = fs37.unwrap_err().to_string();
        assert!(
            err.contains(&t37) && err.contains("virtiofs tags are at most 36"),
            "{err}"
        );
        assert!(p9_37.is_ok());
        assert!(matches!(
            p9_256,
            Err(ShareError::TagTooLong { max: 255, .. })
        ));
        assert!(matches!(nul, Err(ShareError::TagHasNul(_))));
    }

    #[test]
    fn test_share_path_must_be_existing_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let missing = dir.path().join("missing");

        let not_dir = share(&format!("t={}", file.display())).unwrap_err();
        let gone = share(&format!("t={}", missing.display())).unwrap_err();

        assert!(
            not_dir.to_string().contains("is not a directory"),
            "{not_dir}"
        );
        assert!(
            gone.to_string()
                .starts_with(&format!("cannot use share path {}", missing.display())),
            "{gone}"
        );
        assert!(matches!(gone, ShareError::Path { .. }));
    }

    #[test]
    fn test_check_shares_duplicate_tag_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().display();
        let a = share(&format!("a={path}")).unwrap();
        let b = share(&format!("b={path},proto=virtiofs")).unwrap();
        let a2 = share(&format!("a={path},proto=virtiofs")).unwrap();

        assert!(check_shares(&[a.clone(), b.clone()]).is_ok());
        let err = check_shares(&[a, b, a2]).unwrap_err();
        assert!(
            err.to_string().contains("share tag 'a' is used twice"),
            "{err}"
        );
    }

    #[test]
    fn test_console_from_str_words_and_paths() {
        assert_eq!("stdout".parse(), Ok(Console::Stdout));
        assert_eq!("off".parse(), Ok(Console::Off));
        assert_eq!(
            "/tmp/console.log".parse(),
            Ok(Console::File(PathBuf::from("/tmp/console.log")))
        );
    }
}
