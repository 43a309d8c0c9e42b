//! [`quote`]: untrusted strings (ids, paths, names the host sent) cut to a bounded length
//! before they go into an error message or a log line. Its own module: the error types and the
//! modules whose errors they wrap both use it.

/// The longest piece of an untrusted string quoted back in an error message.
pub const MAX_QUOTED: usize = 64;

/// At most [`MAX_QUOTED`] characters of an untrusted string, marked when cut.
pub fn quote(s: &str) -> String {
    if s.chars().count() <= MAX_QUOTED {
        s.to_owned()
    } else {
        let mut cut: String = s.chars().take(MAX_QUOTED).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_quote_keeps_short_cuts_long() {
        assert_eq!(quote("c1"), "c1");
        let long = "x".repeat(MAX_QUOTED + 10);
        let q = quote(&long);
        assert_eq!(q.chars().count(), MAX_QUOTED + 1);
        assert!(q.ends_with('…'));
    }
}
