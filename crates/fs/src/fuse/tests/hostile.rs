//! Hostile input: every malformed request is an error, never a panic and never a partial
//! success.

use super::known_answer::LINUX_INIT;
use super::*;

const HEADER: usize = 40;

/// A request of `opcode` whose body is `body`, with a consistent len.
fn raw(opcode: u32, body: &[u8]) -> Vec<u8> {
    let mut buf = Vec::new();
    InHeader {
        len: u32::try_from(HEADER + body.len()).unwrap(),
        opcode,
        unique: 3,
        ..InHeader::default()
    }
    .encode(&mut buf);
    buf.extend_from_slice(body);
    buf
}

#[test]
fn test_request_truncated_at_every_byte_is_error() {
    for op in sample_ops() {
        let buf = encode(op.clone());
        for cut in 0..buf.len() {
            // As cut, with len still claiming the whole request.
            assert!(decode_request(&buf[..cut]).is_err(), "{op:?} cut at {cut}");
            // As cut, with len rewritten to agree: the arguments themselves are short.
            // (INIT cut to its first 16 bytes is the pre-7.36 layout, and valid.)
            let compat_init = matches!(op, Operation::Init(_)) && cut == HEADER + 16;
            if cut >= HEADER && !matches!(op, Operation::Unknown(_)) && !compat_init {
                let mut short = buf[..cut].to_vec();
                set_len(&mut short, u32::try_from(cut).unwrap());
                let res = decode_request(&short);
                assert!(res.is_err(), "{op:?} cut at {cut}: {res:?}");
            }
        }
    }
}

#[test]
fn test_request_len_lying_is_length_mismatch() {
    for op in sample_ops() {
        let buf = encode(op);
        let len = u32::try_from(buf.len()).unwrap();
        for lie in [0, 1, 39, 40, len - 1, len + 1, u32::MAX] {
            if lie == len {
                continue;
            }
            let mut bad = buf.clone();
            set_len(&mut bad, lie);
            assert!(
                matches!(
                    decode_request(&bad),
                    Err(FuseWireError::LengthMismatch { .. })
                ),
                "len {lie}"
            );
        }
    }
}

#[test]
fn test_request_trailing_bytes_is_error() {
    for op in sample_ops() {
        if matches!(op, Operation::Unknown(_)) {
            continue;
        }
        let mut buf = encode(op.clone());
        buf.push(0);
        let len = u32::try_from(buf.len()).unwrap();
        set_len(&mut buf, len);
        assert!(decode_request(&buf).is_err(), "{op:?}");
    }
}

#[test]
fn test_name_without_nul_is_missing_nul() {
    for opcode in [1, 10, 11, 24] {
        assert_eq!(
            decode_request(&raw(opcode, b"name")).unwrap_err(),
            FuseWireError::MissingNul
        );
    }
    // MKDIR: fuse_mkdir_in then an unterminated name.
    let mut body = vec![0u8; 8];
    body.extend_from_slice(b"dir");
    assert_eq!(
        decode_request(&raw(9, &body)).unwrap_err(),
        FuseWireError::MissingNul
    );
    // SYMLINK: the second string unterminated.
    assert_eq!(
        decode_request(&raw(6, b"link\0target")).unwrap_err(),
        FuseWireError::MissingNul
    );
    // An empty body.
    assert_eq!(
        decode_request(&raw(1, b"")).unwrap_err(),
        FuseWireError::MissingNul
    );
}

#[test]
fn test_name_with_embedded_nul_is_embedded_nul() {
    assert_eq!(
        decode_request(&raw(1, b"na\0me\0")).unwrap_err(),
        FuseWireError::EmbeddedNul
    );
    assert_eq!(
        decode_request(&raw(1, b"name\0\0")).unwrap_err(),
        FuseWireError::EmbeddedNul
    );
    let mut body = vec![0u8; 8];
    body.extend_from_slice(b"a\0b\0c\0");
    assert_eq!(
        decode_request(&raw(12, &body)).unwrap_err(),
        FuseWireError::EmbeddedNul
    );
}

#[test]
fn test_name_empty_is_empty_name() {
    assert_eq!(
        decode_request(&raw(1, b"\0")).unwrap_err(),
        FuseWireError::EmptyName
    );
    assert_eq!(
        decode_request(&raw(6, b"\0target\0")).unwrap_err(),
        FuseWireError::EmptyName
    );
}

#[test]
fn test_name_over_limits_is_name_too_long() {
    let mut ok = vec![b'a'; MAX_NAME_LEN];
    ok.push(0);
    assert!(decode_request(&raw(1, &ok)).is_ok());
    let mut long = vec![b'a'; MAX_NAME_LEN + 1];
    long.push(0);
    assert!(matches!(
        decode_request(&raw(1, &long)),
        Err(FuseWireError::NameTooLong { len: 256, max: 255 })
    ));
    // Symlink targets: 4095 bytes pass, 4096 fail.
    for (len, good) in [(MAX_SYMLINK_LEN, true), (MAX_SYMLINK_LEN + 1, false)] {
        let mut body = b"l\0".to_vec();
        body.extend(std::iter::repeat_n(b'x', len));
        body.push(0);
        assert_eq!(decode_request(&raw(6, &body)).is_ok(), good, "{len}");
    }
    // Xattr names over 255 bytes.
    let mut body = vec![0u8; 8];
    body.extend(std::iter::repeat_n(b'u', 256));
    body.push(0);
    assert!(matches!(
        decode_request(&raw(22, &body)),
        Err(FuseWireError::NameTooLong { .. })
    ));
}

fn write_body(size: u32, data: usize) -> Vec<u8> {
    let mut body = Vec::new();
    WriteIn {
        size,
        ..Default::default()
    }
    .encode(&mut body);
    body.resize(body.len() + data, 0x5a);
    body
}

#[test]
fn test_write_size_mismatch_is_error() {
    for (size, data) in [(10, 9), (10, 11), (0, 1), (u32::MAX, 3)] {
        assert!(matches!(
            decode_request(&raw(16, &write_body(size, data))),
            Err(FuseWireError::WriteSizeMismatch { .. })
        ));
    }
}

#[test]
fn test_write_oversized_is_write_too_large() {
    let max = usize::try_from(MAX_WRITE).unwrap();
    assert!(decode_request(&raw(16, &write_body(MAX_WRITE, max))).is_ok());
    assert!(matches!(
        decode_request(&raw(16, &write_body(MAX_WRITE + 1, max + 1))),
        Err(FuseWireError::WriteTooLarge { .. })
    ));
    let neg = Negotiated {
        max_write: 4096,
        ..Negotiated::default()
    };
    assert!(matches!(
        decode_request_with(&raw(16, &write_body(4097, 4097)), &neg),
        Err(FuseWireError::WriteTooLarge { max: 4096, .. })
    ));
    // A negotiated limit above the crate's ceiling is capped.
    let neg = Negotiated {
        max_write: u32::MAX,
        ..Negotiated::default()
    };
    assert!(decode_request_with(&raw(16, &write_body(MAX_WRITE + 1, max + 1)), &neg).is_err());
}

#[test]
fn test_setxattr_value_mismatch_or_oversized_is_error() {
    let body = |size: u32, value: usize| {
        let mut b = Vec::new();
        size.encode(&mut b);
        0u32.encode(&mut b);
        b.extend_from_slice(b"user.a\0");
        b.resize(b.len() + value, 1);
        b
    };
    assert!(decode_request(&raw(21, &body(3, 3))).is_ok());
    assert!(matches!(
        decode_request(&raw(21, &body(3, 4))),
        Err(FuseWireError::XattrSizeMismatch { .. })
    ));
    let big = MAX_XATTR_VALUE_LEN + 1;
    assert_eq!(
        decode_request(&raw(21, &body(u32::try_from(big).unwrap(), big))).unwrap_err(),
        FuseWireError::XattrValueTooLarge(big)
    );
}

#[test]
fn test_batch_forget_count_larger_than_data_is_error() {
    for (count, entries) in [
        (3u32, 2usize),
        (1, 0),
        (u32::MAX, 1),
        (0x1000_0000, 4),
        (1, 2),
    ] {
        let mut body = Vec::new();
        BatchForgetIn {
            count,
            ..Default::default()
        }
        .encode(&mut body);
        body.resize(body.len() + entries * 16, 7);
        assert!(
            matches!(
                decode_request(&raw(42, &body)),
                Err(FuseWireError::ForgetCountMismatch { .. })
            ),
            "count {count}, entries {entries}"
        );
    }
}

#[test]
fn test_unknown_opcode_decodes_unknown() {
    for opcode in [0, 7, 19, 37, 39, 40, 41, 48, 49, 52, 4096, u32::MAX] {
        let buf = raw(opcode, b"whatever bytes");
        let req = decode_request(&buf).unwrap();
        assert_eq!(req.op, Operation::Unknown(opcode));
        assert_eq!(req.header.unique, 3);
    }
}

#[test]
fn test_extensions_longer_than_body_is_overrun() {
    let mut buf = raw(1, b"etc\0");
    buf[36..38].copy_from_slice(&1u16.to_le_bytes()); // 8 bytes of extensions, 4 remain
    assert!(matches!(
        decode_request(&buf),
        Err(FuseWireError::ExtensionsOverrun { extlen: 8, body: 4 })
    ));
}

#[test]
fn test_init_wrong_body_size_is_error() {
    for size in [0, 8, 15, 17, 63, 65] {
        let mut body = LINUX_INIT[40..].to_vec();
        body.resize(size, 0);
        assert_eq!(
            decode_request(&raw(26, &body)).unwrap_err(),
            FuseWireError::InitBodySize(size)
        );
    }
}

#[test]
fn test_request_single_byte_flips_never_panic() {
    // Every byte of every sample replaced by a few values: decoding may fail, not panic.
    for op in sample_ops() {
        let buf = encode(op);
        for i in 0..buf.len().min(400) {
            for v in [0x00, 0x01, 0x7f, 0xff] {
                let mut bad = buf.clone();
                bad[i] = v;
                let _ = decode_request(&bad);
            }
        }
    }
}

#[test]
fn test_encode_invalid_name_is_refused() {
    for name in [&b""[..], b"a\0b", &[b'n'; 256]] {
        assert!(encode_request(&request(Operation::Lookup { name })).is_err());
    }
    let bad_write = Operation::Write {
        arg: WriteIn {
            size: 2,
            ..Default::default()
        },
        data: b"abc",
    };
    assert!(encode_request(&request(bad_write)).is_err());
    let mut req = request(Operation::Statfs);
    req.extensions = &[1, 2, 3];
    assert_eq!(
        encode_request(&req).unwrap_err(),
        FuseWireError::InvalidExtensions(3)
    );
}
