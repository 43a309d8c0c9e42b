//! The operator's terminal during `run --tty`: raw mode for the duration of the run, its size,
//! and its size changes (SIGWINCH on Linux; a console polled on Windows). Platform code is in
//! `sys/linux.rs` and `sys/windows.rs`.

pub use crate::sys::{block_winch, close_write, raw_stdin, stdin_is_tty, stdin_size, wait_winch};

/// Parses `ROWSxCOLS`.
pub fn parse_size(text: &str) -> Result<(u16, u16), String> {
    let (rows, cols) = text
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{text:?} is not ROWSxCOLS"))?;
    let parse = |s: &str| {
        s.parse::<u16>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{s:?} is not a size between 1 and 65535"))
    };
    Ok((parse(rows)?, parse(cols)?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_size_rows_by_cols() {
        assert_eq!(parse_size("40x120").unwrap(), (40, 120));
        assert!(parse_size("40").is_err());
        assert!(parse_size("0x10").is_err());
        assert!(parse_size("ax10").is_err());
    }
}
