//! What a VM is made of ([`VmConfig`]) and the parsing of its command-line values.

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
