//! Hostile input: every malformed message is an error, never a panic and never a partial
//! success.

use super::known_answer::LINUX_TVERSION_8192 as LINUX_TVERSION;
use super::*;

#[test]
fn test_tmessage_truncated_at_every_byte_is_error() {
    for msg in sample_tmessages() {
        let buf = frame_t(7, &msg);
        for cut in 0..buf.len() {
            // As cut, with the size field still claiming the whole message.
            assert!(
                decode_tmessage(&buf[..cut]).is_err(),
                "{msg:?} cut at {cut}"
            );
            // As cut, with the size field rewritten to agree: the body itself is short.
            if cut >= 7 {
                let mut short = buf[..cut].to_vec();
                set_size(&mut short, u32::try_from(cut).unwrap());
                assert!(decode_tmessage(&short).is_err(), "{msg:?} cut at {cut}");
            }
        }
    }
}

#[test]
fn test_rmessage_truncated_at_every_byte_is_error() {
    for msg in sample_rmessages() {
        let mut buf = Vec::new();
        encode_rmessage(7, &msg, &mut buf).unwrap();
        for cut in 0..buf.len() {
            assert!(
                decode_rmessage(&buf[..cut]).is_err(),
                "{msg:?} cut at {cut}"
            );
            if cut >= 7 {
                let mut short = buf[..cut].to_vec();
                set_size(&mut short, u32::try_from(cut).unwrap());
                // A reply with an empty body is complete at 7 bytes.
                if cut < buf.len() {
                    assert!(decode_rmessage(&short).is_err(), "{msg:?} cut at {cut}");
                }
            }
        }
    }
}

#[test]
fn test_size_field_smaller_than_buffer_is_mismatch() {
    let mut buf = frame_t(1, &Tclunk { fid: 1 }.into());
    set_size(&mut buf, 10);
    assert_eq!(
        decode_tmessage(&buf),
        Err(WireError::SizeMismatch {
            declared: 10,
            actual: 11
        })
    );
}

#[test]
fn test_size_field_larger_than_buffer_is_mismatch() {
    let mut buf = frame_t(1, &Tclunk { fid: 1 }.into());
    set_size(&mut buf, 12);
    assert_eq!(
        decode_tmessage(&buf),
        Err(WireError::SizeMismatch {
            declared: 12,
            actual: 11
        })
    );
}

#[test]
fn test_size_field_below_header_is_too_small() {
    for size in 0..7 {
        let mut buf = frame_t(1, &Tclunk { fid: 1 }.into());
        set_size(&mut buf, size);
        assert_eq!(decode_tmessage(&buf), Err(WireError::MessageTooSmall(size)));
    }
}

#[test]
fn test_size_field_over_max_msize_is_too_large() {
    let mut buf = frame_t(1, &Tclunk { fid: 1 }.into());
    set_size(&mut buf, u32::MAX);
    assert_eq!(
        decode_tmessage(&buf),
        Err(WireError::MessageTooLarge {
            size: u64::from(u32::MAX),
            msize: MAX_MSIZE
        })
    );
}

#[test]
fn test_message_over_negotiated_msize_is_too_large() {
    let msg: Tmessage = Twrite {
        fid: 1,
        offset: 0,
        data: Data(vec![0; 9000]),
    }
    .into();
    let buf = frame_t(1, &msg);
    assert!(decode_tmessage(&buf).is_ok());
    assert!(matches!(
        decode_tmessage_with_msize(&buf, 8192),
        Err(WireError::MessageTooLarge { msize: 8192, .. })
    ));
}

#[test]
fn test_negotiated_msize_above_max_is_capped() {
    let mut buf = vec![0u8; usize::try_from(MAX_MSIZE).unwrap() + 1];
    set_size(&mut buf, MAX_MSIZE + 1);
    assert!(matches!(
        decode_tmessage_with_msize(&buf, u32::MAX),
        Err(WireError::MessageTooLarge {
            msize: MAX_MSIZE,
            ..
        })
    ));
}

#[test]
fn test_string_length_past_end_is_truncated() {
    let mut buf = LINUX_TVERSION.to_vec();
    // version length 0xffff with 8 bytes behind it.
    buf[11] = 0xff;
    buf[12] = 0xff;
    assert!(matches!(
        decode_tmessage(&buf),
        Err(WireError::Truncated { needed: 0xffff, .. })
    ));
}

#[test]
fn test_data_count_past_end_is_truncated() {
    let mut buf = frame_t(
        1,
        &Twrite {
            fid: 1,
            offset: 0,
            data: Data(vec![1, 2, 3]),
        }
        .into(),
    );
    // count at 7 + 4 + 8.
    buf[19..23].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    assert!(matches!(
        decode_tmessage(&buf),
        Err(WireError::Truncated { .. })
    ));
}

#[test]
fn test_twalk_17_names_is_rejected() {
    let mut buf = frame_t(
        1,
        &Twalk {
            fid: 1,
            newfid: 2,
            wnames: (0..16).map(|_| name("x")).collect(),
        }
        .into(),
    );
    // Append a 17th name and bump both counts.
    buf.extend_from_slice(&[1, 0, b'y']);
    let size = u32::try_from(buf.len()).unwrap();
    set_size(&mut buf, size);
    buf[15..17].copy_from_slice(&17u16.to_le_bytes());
    assert_eq!(
        decode_tmessage(&buf),
        Err(WireError::TooManyWalkElements(17))
    );
}

#[test]
fn test_twalk_huge_count_is_rejected_before_reading_names() {
    #[rustfmt::skip]
    let buf = [17, 0, 0, 0, 110, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0xff, 0xff];
    assert_eq!(
        decode_tmessage(&buf),
        Err(WireError::TooManyWalkElements(0xffff))
    );
}

#[test]
fn test_twalk_17_names_fails_to_encode() {
    let msg: Tmessage = Twalk {
        fid: 1,
        newfid: 2,
        wnames: (0..17).map(|_| name("x")).collect(),
    }
    .into();
    let mut out = vec![1, 2, 3];
    assert_eq!(
        encode_tmessage(0, &msg, &mut out),
        Err(WireError::TooManyWalkElements(17))
    );
    assert_eq!(
        out,
        [1, 2, 3],
        "a failed encode leaves the buffer as it was"
    );
}

#[test]
fn test_rwalk_17_qids_is_rejected() {
    let msg: Rmessage = Rwalk {
        wqids: vec![qid(1); 17],
    }
    .into();
    let mut out = Vec::new();
    assert_eq!(
        encode_rmessage(0, &msg, &mut out),
        Err(WireError::TooManyWalkElements(17))
    );
    let mut buf = vec![0, 0, 0, 0, consts::msg::RWALK, 0, 0, 17, 0];
    for _ in 0..17 {
        qid(1).encode(&mut buf).unwrap();
    }
    let size = u32::try_from(buf.len()).unwrap();
    set_size(&mut buf, size);
    assert_eq!(
        decode_rmessage(&buf),
        Err(WireError::TooManyWalkElements(17))
    );
}

#[test]
fn test_name_over_255_bytes_in_request_is_rejected() {
    let mut body = Vec::new();
    5u32.encode(&mut body).unwrap();
    P9String::from(vec![b'n'; 256]).encode(&mut body).unwrap();
    body.extend_from_slice(&[0; 12]);
    let mut buf = vec![0, 0, 0, 0, consts::msg::TLCREATE, 0, 0];
    buf.extend_from_slice(&body);
    let size = u32::try_from(buf.len()).unwrap();
    set_size(&mut buf, size);
    assert_eq!(decode_tmessage(&buf), Err(WireError::NameTooLong(256)));
}

#[test]
fn test_unknown_type_byte_is_rejected() {
    let known: Vec<u8> = sample_tmessages().iter().map(Tmessage::msg_type).collect();
    for ty in 0..=u8::MAX {
        if known.contains(&ty) {
            continue;
        }
        let buf = [7, 0, 0, 0, ty, 0, 0];
        assert_eq!(decode_tmessage(&buf), Err(WireError::UnknownType(ty)));
    }
}

#[test]
fn test_reply_sent_as_request_is_unknown_type() {
    let mut buf = Vec::new();
    encode_rmessage(0, &Rclunk.into(), &mut buf).unwrap();
    assert_eq!(
        decode_tmessage(&buf),
        Err(WireError::UnknownType(consts::msg::RCLUNK))
    );
    let tlerror = [11, 0, 0, 0, consts::msg::TLERROR, 0, 0, 2, 0, 0, 0];
    assert_eq!(
        decode_tmessage(&tlerror),
        Err(WireError::UnknownType(consts::msg::TLERROR))
    );
}

#[test]
fn test_trailing_garbage_is_rejected() {
    for msg in sample_tmessages() {
        let mut buf = frame_t(1, &msg);
        buf.push(0xee);
        let size = u32::try_from(buf.len()).unwrap();
        set_size(&mut buf, size);
        assert_eq!(
            decode_tmessage(&buf),
            Err(WireError::TrailingBytes(1)),
            "{msg:?}"
        );
    }
}

#[test]
fn test_encode_over_max_msize_fails_and_leaves_buffer() {
    let msg: Rmessage = Rread {
        data: Data(vec![0; usize::try_from(MAX_MSIZE).unwrap()]),
    }
    .into();
    let mut out = vec![9];
    assert!(matches!(
        encode_rmessage(0, &msg, &mut out),
        Err(WireError::MessageTooLarge { .. })
    ));
    assert_eq!(out, [9]);
}

/// A small deterministic mutation fuzzer: flips, inserts and deletes bytes of valid messages.
/// Whatever decodes must re-encode to the same bytes.
#[test]
fn test_mutated_messages_never_panic_and_reencode_identically() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let samples: Vec<Vec<u8>> = sample_tmessages().iter().map(|m| frame_t(3, m)).collect();
    let mut decoded = 0;
    for round in 0..20_000 {
        let mut buf = samples[round % samples.len()].clone();
        for _ in 0..=(next() % 4) {
            let len = buf.len();
            let pos = usize::try_from(next()).unwrap() % len.max(1);
            let byte = u8::try_from(next() & 0xff).unwrap();
            match next() % 4 {
                0 if len > 0 => buf[pos] = byte,
                1 => buf.insert(pos.min(len), byte),
                2 if len > 0 => {
                    buf.remove(pos);
                }
                _ if len > 4 => {
                    let size = u32::try_from(len).unwrap();
                    set_size(&mut buf, size);
                }
                _ => {}
            }
        }
        if let Ok((tag, msg)) = decode_tmessage(&buf) {
            decoded += 1;
            let mut again = Vec::new();
            encode_tmessage(tag, &msg, &mut again).unwrap();
            assert_eq!(again, buf, "{msg:?}");
        }
    }
    assert!(decoded > 0, "the mutator never produced a valid message");
}
