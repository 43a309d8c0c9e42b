//! The kernel command line: the user's part plus the VMM's own tokens (virtio-mmio device
//! declarations), checked against the kernel's limit.

use linux_loader::cmdline::{Cmdline, Error as LoaderCmdlineError};

use crate::layout::CMDLINE_MAX_SIZE;

/// Errors of building the command line.
#[derive(Debug, thiserror::Error)]
pub enum CmdlineError {
    /// The assembled command line does not fit the kernel's buffer.
    #[error(
        "kernel command line is too long: {len} bytes, the limit is {max} (including our own \
         tokens)"
    )]
    TooLong {
        /// The assembled length in bytes.
        len: usize,
        /// The most bytes allowed, without the final NUL.
        max: usize,
    },
    /// The command line has a character that is not printable ASCII.
    #[error("the kernel command line has a non-printable character at byte {offset}")]
    NonPrintable {
        /// Where, in the user's part.
        offset: usize,
    },
    /// The command line is malformed (misplaced quotes, only init arguments).
    #[error("invalid kernel command line")]
    Invalid(#[source] LoaderCmdlineError),
}

/// Builds the command line from the user's `user` string (which may contain `-- init args`)
/// and the VMM's `tokens`, which go before any init arguments.
pub fn build_cmdline(user: &str, tokens: &[String]) -> Result<Cmdline, CmdlineError> {
    let len = user.trim().len() + tokens.iter().map(|t| t.len() + 1).sum::<usize>();
    let max = CMDLINE_MAX_SIZE - 1;
    if let Some(offset) = user
        .bytes()
        .position(|b| !(b == b' ' || b.is_ascii_graphic()))
    {
        return Err(CmdlineError::NonPrintable { offset });
    }
    let map = |e| match e {
        // `try_from` reports an over-long line as a capacity error.
        LoaderCmdlineError::TooLarge | LoaderCmdlineError::InvalidCapacity => {
            CmdlineError::TooLong { len, max }
        }
        other => CmdlineError::Invalid(other),
    };
    let mut cmdline = if user.trim().is_empty() {
        Cmdline::new(CMDLINE_MAX_SIZE)
    } else {
        Cmdline::try_from(user, CMDLINE_MAX_SIZE)
    }
    .map_err(map)?;
    for token in tokens {
        cmdline.insert_str(token).map_err(map)?;
    }
    // An init-args-only line ("-- x") has no boot arguments and cannot be rendered.
    cmdline.as_cstring().map_err(map)?;
    Ok(cmdline)
}

/// The bytes to write into guest memory, NUL included.
pub fn cmdline_bytes(cmdline: &Cmdline) -> Result<Vec<u8>, CmdlineError> {
    cmdline
        .as_cstring()
        .map(|c| c.into_bytes_with_nul())
        .map_err(CmdlineError::Invalid)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rendered(cmdline: &Cmdline) -> String {
        cmdline.as_cstring().unwrap().into_string().unwrap()
    }

    #[test]
    fn test_build_cmdline_tokens_after_user_part() {
        let tokens = vec!["virtio_mmio.device=4K@0xd0000000:5".to_owned()];

        let cmdline = build_cmdline("console=ttyS0 reboot=t", &tokens).unwrap();

        assert_eq!(
            rendered(&cmdline),
            "console=ttyS0 reboot=t virtio_mmio.device=4K@0xd0000000:5"
        );
    }

    #[test]
    fn test_build_cmdline_tokens_before_init_args() {
        let tokens = vec!["quiet".to_owned()];

        let cmdline = build_cmdline("console=ttyS0 -- --verbose", &tokens).unwrap();

        assert_eq!(rendered(&cmdline), "console=ttyS0 quiet -- --verbose");
    }

    #[test]
    fn test_build_cmdline_empty_user_part_only_tokens() {
        assert_eq!(rendered(&build_cmdline("  ", &[]).unwrap()), "");
        let tokens = vec!["a=1".to_owned()];
        assert_eq!(rendered(&build_cmdline("", &tokens).unwrap()), "a=1");
    }

    #[test]
    fn test_build_cmdline_at_limit_accepted_one_more_rejected() {
        let fits = "x".repeat(CMDLINE_MAX_SIZE - 1);
        let too_long = "x".repeat(CMDLINE_MAX_SIZE);

        let ok = build_cmdline(&fits, &[]).unwrap();
        let err = build_cmdline(&too_long, &[]).unwrap_err();

        assert_eq!(cmdline_bytes(&ok).unwrap().len(), CMDLINE_MAX_SIZE);
        assert!(
            matches!(err, CmdlineError::TooLong { max: 2047, .. }),
            "{err}"
        );
    }

    #[test]
    fn test_build_cmdline_tokens_push_past_limit_rejected() {
        let user = "x".repeat(CMDLINE_MAX_SIZE - 10);
        let tokens = vec!["virtio_mmio.device=4K@0xd0000000:5".to_owned()];

        let err = build_cmdline(&user, &tokens).unwrap_err();

        assert!(err.to_string().contains("too long"), "{err}");
    }

    #[test]
    fn test_build_cmdline_control_character_rejected() {
        let err = build_cmdline("console=ttyS0\u{7}", &[]).unwrap_err();
        assert!(
            matches!(err, CmdlineError::NonPrintable { offset: 13 }),
            "{err}"
        );
    }
}
