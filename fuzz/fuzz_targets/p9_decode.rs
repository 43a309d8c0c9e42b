//! Fuzzes the 9P2000.L request decoder: arbitrary bytes are one framed message. Decoding must
//! never panic; whatever decodes must re-encode to exactly the input bytes (the wire format
//! has one encoding per message) and decode again to an equal message. The reply decoder and
//! the Rreaddir entry parser get the same bytes, for the client side.

#![no_main]

use lcow_fs::p9::{
    decode_rmessage, decode_tmessage, encode_rmessage, encode_tmessage, parse_dirents,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((tag, msg)) = decode_tmessage(data) {
        let mut out = Vec::new();
        if let Err(e) = encode_tmessage(tag, &msg, &mut out) {
            panic!("decoded request fails to encode: {e}: {msg:?}");
        }
        assert_eq!(out, data, "re-encoding differs from the input");
        match decode_tmessage(&out) {
            Ok((tag2, msg2)) => assert!(tag2 == tag && msg2 == msg, "second decode differs"),
            Err(e) => panic!("re-encoded request fails to decode: {e}"),
        }
    }

    if let Ok((tag, msg)) = decode_rmessage(data) {
        let mut out = Vec::new();
        if let Err(e) = encode_rmessage(tag, &msg, &mut out) {
            panic!("decoded reply fails to encode: {e}: {msg:?}");
        }
        assert_eq!(out, data, "re-encoding differs from the input");
    }

    let _ = parse_dirents(data);
});
