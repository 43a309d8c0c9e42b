//! CRC-32C (Castagnoli), the checksum of VHDX headers, region tables and log entries.

const POLY: u32 = 0x82F6_3B78;

const TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// The CRC-32C of `bytes`, with the four bytes at `skip..skip + 4` taken as zero (where a
/// structure keeps its own checksum).
pub fn crc32c(bytes: &[u8], skip: usize) -> u32 {
    let mut c = !0u32;
    for (i, &b) in bytes.iter().enumerate() {
        let b = if (skip..skip + 4).contains(&i) { 0 } else { b };
        c = TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_known_answers() {
        // RFC 3720's check value and its 32 zero bytes.
        assert_eq!(crc32c(b"123456789", usize::MAX - 4), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32], usize::MAX - 4), 0x8A91_36AA);
        // Skipping four bytes is the same as zeroing them.
        let mut b = *b"abcdefgh";
        let with_skip = crc32c(&b, 2);
        b[2..6].fill(0);
        assert_eq!(with_skip, crc32c(&b, usize::MAX - 4));
    }
}
